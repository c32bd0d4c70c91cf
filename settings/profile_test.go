package settings

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"porthole/forwarder"
	"porthole/wire"
)

func valid() Profile {
	p := Example()
	p.Name = "web"
	return p
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	// The PEM marker without a certificate: only parsing it tells.
	fakePEM := filepath.Join(dir, "fake.pem")
	os.WriteFile(fakePEM, []byte("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n"), 0o600)
	cases := []struct {
		name  string
		edit  func(*Profile)
		field Field // "" means valid
		says  string
	}{
		{"example is valid", func(p *Profile) {}, "", ""},
		{"empty name", func(p *Profile) { p.Name = "  " }, FieldName, "name"},
		{"remote relay needs an address", func(p *Profile) { p.BuiltinRelay = false }, FieldRelayAddr, "host:port"},
		{"bad relay address", func(p *Profile) { p.BuiltinRelay, p.RelayAddr = false, "relay.example/agents" }, FieldRelayAddr, `"relay.example/agents"`},
		{"bad relay port", func(p *Profile) { p.BuiltinRelay, p.RelayAddr = false, "relay:99999" }, FieldRelayAddr, "host:port"},
		{"good remote relay", func(p *Profile) { p.BuiltinRelay, p.RelayAddr = false, "relay.example:7835" }, "", ""},
		{"bad fingerprint", func(p *Profile) {
			p.BuiltinRelay, p.RelayAddr, p.RelayFingerprint = false, "r:1", "abc"
		}, FieldFingerprint, "64 hex"},
		{"CA file and fingerprint", func(p *Profile) {
			p.BuiltinRelay, p.RelayAddr, p.RelayCAFile, p.RelayFingerprint = false, "r:1", notPEM, strings.Repeat("a", 64)
		}, FieldFingerprint, "mutually exclusive"},
		{"missing relay CA", func(p *Profile) {
			p.BuiltinRelay, p.RelayAddr, p.RelayCAFile = false, "r:1", filepath.Join(dir, "nope.pem")
		}, FieldRelayCA, "no such file"},
		{"relay CA is not PEM", func(p *Profile) {
			p.BuiltinRelay, p.RelayAddr, p.RelayCAFile = false, "r:1", notPEM
		}, FieldRelayCA, "no PEM"},
		{"relay CA has the marker but no certificate", func(p *Profile) {
			p.BuiltinRelay, p.RelayAddr, p.RelayCAFile = false, "r:1", fakePEM
		}, FieldRelayCA, "no PEM"},
		{"relay fields are ignored on the built-in relay", func(p *Profile) { p.RelayCAFile = fakePEM }, "", ""},
		{"bad upstream port", func(p *Profile) { p.Upstream = "99999" }, FieldUpstream, "out of range"},
		{"bad upstream scheme", func(p *Profile) { p.Upstream = "ftp://x" }, FieldUpstream, `"ftp"`},
		{"empty upstream", func(p *Profile) { p.Upstream = "" }, FieldUpstream, "Empty"},
		{"bad subdomain", func(p *Profile) { p.Subdomain = "My_App" }, FieldSubdomain, "lowercase"},
		{"full hostname", func(p *Profile) { p.Subdomain = "app.example.com" }, "", ""},
		{"bad hostname", func(p *Profile) { p.Subdomain = "app..example.com" }, FieldSubdomain, ""},
		{"tls needs a subdomain", func(p *Profile) { p.Type, p.Subdomain, p.Upstream = wire.ProtoTLS, "", "8443" }, FieldSubdomain, "need a subdomain"},
		{"tcp port range", func(p *Profile) { p.Type, p.RemotePort, p.Upstream = wire.ProtoTCP, 70000, "22" }, FieldRemotePort, "out of range"},
		{"tcp upstream rejects http", func(p *Profile) { p.Type, p.Upstream = wire.ProtoTCP, "http://localhost:1" }, FieldUpstream, "Scheme"},
		{"no type", func(p *Profile) { p.Type = 0 }, FieldType, "HTTP, TCP or TLS"},
		{"upstream CA missing", func(p *Profile) { p.VerifyUpstreamTLS, p.UpstreamCAFile = true, filepath.Join(dir, "x") }, FieldUpstreamCA, "Cannot read"},
		{"upstream CA has the marker but no certificate", func(p *Profile) { p.VerifyUpstreamTLS, p.UpstreamCAFile = true, fakePEM }, FieldUpstreamCA, "no PEM"},
		{"basic auth user with colon", func(p *Profile) { p.BasicAuthUser = "a:b" }, FieldBasicAuth, "colon"},
		{"basic auth on tcp", func(p *Profile) { p.Type, p.Upstream, p.BasicAuthUser = wire.ProtoTCP, "22", "alice" }, FieldBasicAuth, "http tunnels only"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := valid()
			c.edit(&p)
			bad := p.Validate()
			if c.field == "" {
				if len(bad) != 0 {
					t.Fatalf("unexpected problems: %v", bad)
				}
				return
			}
			if !strings.Contains(bad[c.field], c.says) {
				t.Errorf("problem at %s = %q, want it to say %q (all: %v)", c.field, bad[c.field], c.says, bad)
			}
			if len(bad) != 1 {
				t.Errorf("want one problem, got %v", bad)
			}
		})
	}
}

// TestValidateReportsEveryField checks that the forwarder's rules, which
// stop at the first problem, still show every problem at its field.
func TestValidateReportsEveryField(t *testing.T) {
	p := valid()
	p.BuiltinRelay, p.RelayAddr, p.RelayFingerprint = false, "relay:http", "xyz"
	p.Upstream, p.Subdomain = "99999", "Bad_Name"
	bad := p.Validate()
	for _, f := range []Field{FieldRelayAddr, FieldFingerprint, FieldUpstream, FieldSubdomain} {
		if bad[f] == "" {
			t.Errorf("no problem at %s: %v", f, bad)
		}
	}
	if len(bad) != 4 {
		t.Errorf("problems: %v", bad)
	}
}

// TestProblemsInPlainWords checks that a problem reaching the tray is
// worded with the form's labels, never the file's field names.
func TestProblemsInPlainWords(t *testing.T) {
	p := valid()
	p.BuiltinRelay, p.RelayAddr, p.Upstream = false, "relay:http", "99999"
	msg := p.Validate().Error()
	want := `Relay address "relay:http": want host:port, or a host alone for port 7835. Upstream: Port 99999 is out of range 1-65535.`
	if msg != want {
		t.Errorf("Problems.Error() = %q\nwant %q", msg, want)
	}
	for _, f := range fields {
		if strings.Contains(msg, string(f.field)+":") && f.label != string(f.field) {
			t.Errorf("message uses the field name %q: %q", f.field, msg)
		}
	}
}

func TestNormalizedUpstreamShownLive(t *testing.T) {
	for in, want := range map[string]string{"443": "https://localhost:443", "8000": "http://localhost:8000", "app:80": "http://app:80"} {
		p := valid()
		p.Upstream = in
		if got, err := p.NormalizedUpstream(); err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestConfigFromProfile(t *testing.T) {
	builtin := Endpoint{Addr: "127.0.0.1:5000", Fingerprint: strings.Repeat("f", 64)}
	p := valid()
	p.RewriteHost, p.UpstreamHTTP2, p.BasicAuthUser = true, true, "alice"
	cfg, err := p.Config(Secrets{BasicAuthPassword: "pw"}, builtin)
	if err != nil {
		t.Fatal(err)
	}
	tun := cfg.Tunnels[0]
	if cfg.RelayAddr != builtin.Addr || cfg.RelayFingerprint != builtin.Fingerprint || cfg.Token != "" {
		t.Errorf("built-in relay: %+v", cfg)
	}
	if tun.Name != "myapp" || tun.HostHeader != "rewrite" || !tun.UpstreamHTTP2 || tun.BasicAuth != "alice:pw" || tun.Proto != wire.ProtoHTTP {
		t.Errorf("http tunnel: %+v", tun)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("the mapped config is refused: %v", err)
	}

	// A name with a dot is a full hostname.
	p = valid()
	p.Type, p.Subdomain, p.Upstream = wire.ProtoTLS, "app.example.com", "8443"
	if cfg, err = p.Config(Secrets{}, builtin); err != nil {
		t.Fatal(err)
	}
	if tun := cfg.Tunnels[0]; tun.Hostname != "app.example.com" || tun.Name != "" {
		t.Errorf("full hostname mapped to name %q, hostname %q", tun.Name, tun.Hostname)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("the mapped config is refused: %v", err)
	}

	p = valid()
	p.BuiltinRelay, p.RelayAddr, p.HasToken = false, "relay.example:7835", true
	p.Type, p.RemotePort, p.Upstream, p.Subdomain = wire.ProtoTCP, 20001, "22", "ignored"
	cfg, err = p.Config(Secrets{Token: "tok"}, builtin)
	if err != nil {
		t.Fatal(err)
	}
	tun = cfg.Tunnels[0]
	if cfg.RelayAddr != "relay.example:7835" || cfg.Token != "tok" || tun.Name != "" || tun.RemotePort != 20001 || tun.HostHeader != "" {
		t.Errorf("tcp tunnel on a remote relay: %+v %+v", cfg, tun)
	}
}

// TestConfigNeverDropsASecret: a profile that says it has a secret never
// maps to a forwarder that runs without it.
func TestConfigNeverDropsASecret(t *testing.T) {
	p := valid()
	p.BasicAuthUser = "alice"
	_, err := p.Config(Secrets{}, standInRelay)
	var se *SecretError
	if !errors.As(err, &se) || se.Kind != SecretBasicAuth || !errors.Is(err, ErrNoSecret) {
		t.Errorf("basic auth without a password: %v", err)
	}
	if got := ProblemsOf(err); !strings.Contains(got[FieldBasicAuthPwd], "not in the keyring") {
		t.Errorf("shown at the fields as %v", got)
	}

	p = valid()
	p.BuiltinRelay, p.RelayAddr, p.HasToken = false, "relay.example:7835", true
	if _, err := p.Config(Secrets{}, standInRelay); !errors.As(err, &se) || se.Kind != SecretToken {
		t.Errorf("relay token missing: %v", err)
	}
	// On the built-in relay a saved token is not used, so not needed.
	p.BuiltinRelay = true
	if _, err := p.Config(Secrets{}, standInRelay); err != nil {
		t.Errorf("built-in relay: %v", err)
	}
}

func TestProblemsOfForwarderErrors(t *testing.T) {
	cfg := forwarder.DefaultConfig()
	cfg.RelayAddr = "relay.example:7835"
	cfg.Tunnels = []forwarder.Tunnel{{Proto: wire.ProtoHTTP, Upstream: "8000", UpstreamCAFile: "/does/not/exist.pem"}}
	got := ProblemsOf(cfg.Validate())
	if !strings.HasPrefix(got[FieldUpstreamCA], "Cannot read /does/not/exist.pem: no such file") || len(got) != 1 {
		t.Errorf("ProblemsOf = %v", got)
	}
	if got := ProblemsOf(errors.New("relay went away")); got[FieldProfile] != "Relay went away." {
		t.Errorf("an error with no field: %v", got)
	}
}

// TestProblemsOfRelayRefusals: what the relay refuses when a profile
// starts is shown at the field that holds it, in the relay's words.
func TestProblemsOfRelayRefusals(t *testing.T) {
	untrusted := fmt.Errorf("relay r:7835: %w: fingerprint mismatch: relay presented aa, pinned bb", forwarder.ErrRelayUntrusted)
	for _, c := range []struct {
		err   error
		field Field
		want  string
	}{
		{wire.Errorf(wire.CodeAuthFailed, "authentication failed"), FieldToken,
			"Authentication failed. Check the token and type it again."},
		{fmt.Errorf("bind: %w", wire.Errorf(wire.CodeNameTaken, `name "web" is in use by another agent`)), FieldSubdomain,
			`Name "web" is in use by another agent.`},
		{wire.Errorf(wire.CodeNameDenied, `name "web" is reserved for another token`), FieldSubdomain,
			`Name "web" is reserved for another token.`},
		{wire.Errorf(wire.CodePortTaken, "port 80 is outside the relay's range 20000-20100"), FieldRemotePort,
			"Port 80 is outside the relay's range 20000-20100."},
		{&wire.Error{Code: wire.CodeAuthFailed}, FieldToken, "The relay refused it: auth_failed. Check the token and type it again."},
		{untrusted, FieldTrust,
			"The relay's certificate is not trusted (fingerprint mismatch: relay presented aa, pinned bb). Choose the relay's CA file, or paste the fingerprint it printed."},
		// Refusals no field owns: the relay's words, without the code.
		{wire.Errorf(wire.CodeInternal, "the relay failed"), FieldProfile, "The relay failed."},
		{fmt.Errorf("bind: %w", wire.Errorf(wire.CodeTunnelLimit, "the session holds 16 tunnels already")), FieldProfile,
			"The session holds 16 tunnels already."},
	} {
		got := ProblemsOf(c.err)
		if len(got) != 1 || got[c.field] != c.want {
			t.Errorf("ProblemsOf(%v) = %q, want %s: %q", c.err, got, c.field, c.want)
		}
	}
}

// TestProblemsOfLostRelays: a relay that cannot be reached, or a session
// that ends under the agent, is worded for a person, not as the network
// stack's message.
func TestProblemsOfLostRelays(t *testing.T) {
	dial := func(err error) error {
		return fmt.Errorf("connect: %w", &forwarder.DialError{Addr: "relay.example:7835", Err: err})
	}
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("%w: %w", forwarder.ErrSessionLost, io.EOF), "The connection to the relay was lost."},
		{dial(&net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}),
			"Cannot reach the relay at relay.example:7835: nothing accepts connections there."},
		{dial(&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "relay.example", IsNotFound: true}}),
			"Cannot reach the relay at relay.example:7835: no such host."},
		{dial(context.DeadlineExceeded), "Cannot reach the relay at relay.example:7835: it did not answer in time."},
		{dial(&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("network is unreachable")}),
			"Cannot reach the relay at relay.example:7835: network is unreachable."},
	} {
		if got := ProblemsOf(c.err); len(got) != 1 || got[FieldProfile] != c.want {
			t.Errorf("ProblemsOf(%v) = %q, want %q", c.err, got, c.want)
		}
		// On one line, as the tray and notifications show it, nothing is
		// put before it.
		if got := ProblemsOf(c.err).Error(); got != c.want {
			t.Errorf("ProblemsOf(%v).Error() = %q", c.err, got)
		}
	}
}

// TestProblemsOnOneLine: each problem follows its field's label, unless
// it names the field itself or is about the whole profile; sentences start
// with a capital even when their first letter takes more than one byte.
func TestProblemsOnOneLine(t *testing.T) {
	for _, c := range []struct {
		p    Problems
		want string
	}{
		{Problems{FieldToken: "Authentication failed."}, "Token: Authentication failed."},
		{ProblemsOf(&SecretError{Kind: SecretBasicAuth, Err: ErrNoSecret}),
			"The basic-auth password is not in the keyring: enter it again in Settings."},
		{Problems{FieldProfile: "Relay went away.", FieldSubdomain: "Taken."}, "Subdomain: Taken. Relay went away."},
		{ProblemsOf(errors.New("état inconnu")), "État inconnu."},
	} {
		if got := c.p.Error(); got != c.want {
			t.Errorf("%v: %q, want %q", c.p, got, c.want)
		}
	}
}
