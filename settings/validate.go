package settings

import (
	"cmp"
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"

	"porthole/forwarder"
	"porthole/wire"
)

// Field names a profile field, for problems shown beside it.
type Field string

// Fields that validation, secrets and starting report on.
const (
	FieldName         Field = "name"
	FieldRelayAddr    Field = "relay_addr"
	FieldToken        Field = "token"
	FieldTrust        Field = "relay_trust"
	FieldRelayCA      Field = "relay_ca_file"
	FieldFingerprint  Field = "relay_fingerprint"
	FieldType         Field = "type"
	FieldSubdomain    Field = "subdomain"
	FieldRemotePort   Field = "remote_port"
	FieldUpstream     Field = "upstream"
	FieldUpstreamCA   Field = "upstream_ca_file"
	FieldBasicAuth    Field = "basic_auth_user"
	FieldBasicAuthPwd Field = "basic_auth_password"
	// FieldProfile is the profile as a whole, for a problem no single field
	// owns.
	FieldProfile Field = "profile"
)

// fields lists the fields in the order the form shows them, with their labels.
var fields = []struct {
	field Field
	label string
}{
	{FieldName, "Name"},
	{FieldRelayAddr, "Relay address"},
	{FieldToken, "Token"},
	{FieldTrust, "Trust relay by"},
	{FieldRelayCA, "Relay CA file"},
	{FieldFingerprint, "Fingerprint"},
	{FieldType, "Endpoint"},
	{FieldSubdomain, "Subdomain"},
	{FieldRemotePort, "Remote port"},
	{FieldUpstream, "Upstream"},
	{FieldUpstreamCA, "Upstream CA"},
	{FieldBasicAuth, "Basic auth user"},
	{FieldBasicAuthPwd, "Basic auth password"},
	{FieldProfile, "Profile"},
}

// Label is the field's label in the settings form, which messages about it
// use too.
func (f Field) Label() string {
	for _, x := range fields {
		if x.field == f {
			return x.label
		}
	}
	return string(f)
}

// Problems maps fields to what is wrong with them, each a sentence. An
// empty Problems means the profile is valid.
type Problems map[Field]string

// Fields lists the fields that have problems, in the order the form shows
// them.
func (p Problems) Fields() []Field {
	var out []Field
	for _, x := range fields {
		if _, ok := p[x.field]; ok {
			out = append(out, x.field)
		}
	}
	return out
}

// Error words the problems in plain words, in the order the form shows
// the fields, each after its field's label unless it names the field
// itself or is about the whole profile.
func (p Problems) Error() string {
	var parts []string
	for _, x := range fields {
		msg, ok := p[x.field]
		if !ok {
			continue
		}
		if x.field != FieldProfile && !namesField(msg, x.label) {
			msg = x.label + ": " + msg
		}
		parts = append(parts, msg)
	}
	return strings.Join(parts, " ")
}

// namesField reports whether msg starts with the field's label, give or
// take case, hyphens and a leading "the" ("The basic-auth password is…"
// names "Basic auth password").
func namesField(msg, label string) bool {
	norm := func(s string) string {
		s = strings.ToLower(strings.ReplaceAll(s, "-", " "))
		return strings.TrimPrefix(s, "the ")
	}
	return strings.HasPrefix(norm(msg), norm(label))
}

// forwarderFields maps the fields of forwarder.Config and forwarder.Tunnel
// that a profile sets to the profile's fields. reset puts a valid stand-in
// in the forwarder's field, so that validation can go on to the next
// problem.
var forwarderFields = map[string]struct {
	field Field
	reset func(*forwarder.Config)
}{
	"RelayAddr":        {FieldRelayAddr, func(c *forwarder.Config) { c.RelayAddr = standInRelay.Addr }},
	"RelayCAFile":      {FieldRelayCA, func(c *forwarder.Config) { c.RelayCAFile = "" }},
	"RelayFingerprint": {FieldFingerprint, func(c *forwarder.Config) { c.RelayFingerprint, c.RelayCAFile = "", "" }},
	"Token":            {FieldToken, func(c *forwarder.Config) { c.Token = "" }},
	"Proto":            {FieldType, func(c *forwarder.Config) { c.Tunnels[0].Proto = wire.ProtoHTTP }},
	"Upstream":         {FieldUpstream, func(c *forwarder.Config) { c.Tunnels[0].Upstream = "1" }},
	"Name":             {FieldSubdomain, func(c *forwarder.Config) { c.Tunnels[0].Name = "" }},
	"Hostname":         {FieldSubdomain, func(c *forwarder.Config) { c.Tunnels[0].Hostname = "" }},
	"RemotePort":       {FieldRemotePort, func(c *forwarder.Config) { c.Tunnels[0].RemotePort = 0 }},
	"UpstreamCAFile":   {FieldUpstreamCA, func(c *forwarder.Config) { c.Tunnels[0].UpstreamCAFile = "" }},
	"BasicAuth":        {FieldBasicAuth, func(c *forwarder.Config) { c.Tunnels[0].BasicAuth = "" }},
	"HostHeader":       {FieldProfile, func(c *forwarder.Config) { c.Tunnels[0].HostHeader = "" }},
}

// standInRelay and standInSecrets let Validate check a profile with the
// forwarder's rules before the built-in relay runs and without reading the
// keyring: whether the secrets are there is checked when the profile starts.
var (
	standInRelay   = Endpoint{Addr: "127.0.0.1:1", Fingerprint: strings.Repeat("0", 64)}
	standInSecrets = Secrets{Token: "stand-in", BasicAuthPassword: "stand-in"}
)

// Validate checks a profile the way the settings form shows it: each
// problem at its field. The profile's own rules come first; the rest are
// the forwarder's, applied by forwarder.Config.Validate to the
// configuration the profile maps to (so it reads the CA files it names).
func (p Profile) Validate() Problems {
	bad := Problems{}
	if strings.TrimSpace(p.Name) == "" {
		bad[FieldName] = "Give the profile a name."
	}
	if !p.BuiltinRelay && p.RelayAddr == "" {
		bad[FieldRelayAddr] = "Enter the relay's address as host:port."
	}
	switch p.Type {
	case wire.ProtoHTTP, wire.ProtoTCP, wire.ProtoTLS:
	default:
		bad[FieldType] = "Choose HTTP, TCP or TLS."
		return bad
	}
	if p.Type == wire.ProtoTLS && p.Subdomain == "" {
		bad[FieldSubdomain] = "TLS tunnels need a subdomain: clients reach them by name."
	}
	if strings.Contains(p.BasicAuthUser, ":") {
		bad[FieldBasicAuth] = "The user name cannot contain a colon."
	}
	cfg, err := p.Config(standInSecrets, standInRelay)
	if err != nil {
		bad.add(err)
		return bad
	}
	// The forwarder reports one problem at a time: put a stand-in in each
	// field it refuses, and ask again.
	for range forwarderFields {
		err := cfg.Validate()
		var fe *forwarder.FieldError
		if err == nil || !errors.As(err, &fe) {
			if err != nil {
				bad.add(err)
			}
			break
		}
		m, ok := forwarderFields[fe.Field]
		if !ok {
			bad.add(err)
			break
		}
		bad.add(err)
		m.reset(&cfg)
	}
	return bad
}

// add records err at its field, unless that field has a problem already.
func (p Problems) add(err error) {
	for f, msg := range ProblemsOf(err) {
		if _, ok := p[f]; !ok {
			p[f] = msg
		}
	}
}

// ProblemsOf places an error from validating, starting or running a
// profile at the fields it is about, in plain words: Problems as they are,
// a *SecretError at its secret's field, a *forwarder.FieldError at the
// profile field it maps to, a relay that refused the token, a name or a
// port at that field, and a relay certificate that is not trusted at the
// trust setting. Any other error is about the whole profile (FieldProfile):
// another refusal in the relay's words without its code, a relay that
// cannot be reached or a session lost in words of its own, and the rest
// as they are.
//
// It is the one mapping from such errors to words: the form shows them at
// its fields, the tray and notifications as one line (Problems.Error).
func ProblemsOf(err error) Problems {
	var (
		bad Problems
		se  *SecretError
		fe  *forwarder.FieldError
		we  *wire.Error
		de  *forwarder.DialError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &bad):
		return bad
	case errors.As(err, &se):
		return Problems{se.Field(): sentence(se.Error())}
	case errors.As(err, &fe):
		field := FieldProfile
		if m, ok := forwarderFields[fe.Field]; ok {
			field = m.field
		}
		return Problems{field: fieldMessage(fe.Err)}
	case errors.As(err, &we):
		// The relay's own words, without the code that follows them.
		msg := sentence(cmp.Or(we.Message, "the relay refused it: "+string(we.Code)))
		if we.Code == wire.CodeAuthFailed {
			msg += " Check the token and type it again."
		}
		return Problems{cmp.Or(relayFields[we.Code], FieldProfile): msg}
	case errors.Is(err, forwarder.ErrRelayUntrusted):
		why := err.Error()
		if _, after, ok := strings.Cut(why, forwarder.ErrRelayUntrusted.Error()+": "); ok {
			why = after
		}
		return Problems{FieldTrust: "The relay's certificate is not trusted (" + why + "). Choose the relay's CA file, or paste the fingerprint it printed."}
	case errors.Is(err, forwarder.ErrSessionLost):
		return Problems{FieldProfile: "The connection to the relay was lost."}
	case errors.As(err, &de):
		return Problems{FieldProfile: "Cannot reach the relay at " + de.Addr + ": " + unreachable(de.Err) + "."}
	}
	return Problems{FieldProfile: sentence(err.Error())}
}

// unreachable words why a relay could not be reached.
func unreachable(err error) string {
	var dns *net.DNSError
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "nothing accepts connections there"
	case errors.As(err, &dns) && dns.IsNotFound:
		return "no such host"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "it did not answer in time"
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		err = op.Err // without the addresses, which the message names already
	}
	return err.Error()
}

// relayFields maps the relay's refusals to the field that holds what it
// refused.
var relayFields = map[wire.Code]Field{
	wire.CodeAuthFailed:  FieldToken,
	wire.CodeNameTaken:   FieldSubdomain,
	wire.CodeNameInvalid: FieldSubdomain,
	wire.CodeNameDenied:  FieldSubdomain,
	wire.CodePortTaken:   FieldRemotePort,
}

// fieldMessage words a forwarder's refusal for the field it belongs to.
func fieldMessage(err error) string {
	var ue *forwarder.UpstreamError
	var fe *forwarder.FileError
	switch {
	case errors.As(err, &ue):
		return UpstreamMessage(err)
	case errors.As(err, &fe) && errors.Is(err, forwarder.ErrNoCertificates):
		return "The file " + fe.Path + " holds no PEM certificate."
	case errors.As(err, &fe):
		return "Cannot read " + fe.Path + ": " + fe.Err.Error() + "."
	}
	return sentence(err.Error())
}

// UpstreamMessage words an error from NormalizedUpstream for the field it
// belongs to: the reason alone, as a sentence (the field shows the input).
func UpstreamMessage(err error) string {
	var ue *forwarder.UpstreamError
	if errors.As(err, &ue) {
		return sentence(ue.Reason)
	}
	return sentence(err.Error())
}

// sentence starts s with a capital letter and ends it with a full stop.
func sentence(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	s = string(unicode.ToUpper(r)) + s[n:]
	if !strings.HasSuffix(s, ".") && !strings.HasSuffix(s, ")") {
		s += "."
	}
	return s
}
