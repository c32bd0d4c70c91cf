// Package settings holds the tunnel profiles the desktop app and the
// command line share: the profile model and its validation, the profile
// store (one versioned file, written atomically), and the secrets kept in
// the OS keyring.
package settings

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"porthole/forwarder"
	"porthole/wire"
)

// Profile is one saved tunnel. It never holds a secret: the relay token and
// the basic-auth password live in the keyring under the profile's ID.
type Profile struct {
	ID   string `json:"id"`
	Name string `json:"name"`

	// BuiltinRelay uses the relay the desktop app runs on loopback; the
	// other relay fields are then ignored.
	BuiltinRelay     bool   `json:"builtin_relay"`
	RelayAddr        string `json:"relay_addr,omitempty"`
	RelayCAFile      string `json:"relay_ca_file,omitempty"`
	RelayFingerprint string `json:"relay_fingerprint,omitempty"`
	// HasToken records that a relay token is saved in the keyring, so that
	// profiles without one never wait on the keyring.
	HasToken bool `json:"has_token,omitempty"`

	Type       wire.Proto `json:"type"`
	Subdomain  string     `json:"subdomain,omitempty"`
	RemotePort int        `json:"remote_port,omitempty"`
	Upstream   string     `json:"upstream"`

	UpstreamHTTP2     bool   `json:"upstream_http2,omitempty"`
	VerifyUpstreamTLS bool   `json:"verify_upstream_tls,omitempty"`
	UpstreamCAFile    string `json:"upstream_ca_file,omitempty"`
	RewriteHost       bool   `json:"rewrite_host,omitempty"`
	BasicAuthUser     string `json:"basic_auth_user,omitempty"`

	StartWithApp bool `json:"start_with_app,omitempty"`
}

// NewID returns a fresh profile ID.
func NewID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Example is the profile offered on first start: the built-in relay in
// front of a service on localhost:8000.
func Example() Profile {
	return Profile{
		ID:           NewID(),
		Name:         "My web app",
		BuiltinRelay: true,
		Type:         wire.ProtoHTTP,
		Subdomain:    "myapp",
		Upstream:     "localhost:8000",
	}
}

// Field names a profile field, for errors shown beside it.
type Field string

// Fields that validation reports on.
const (
	FieldName        Field = "name"
	FieldRelayAddr   Field = "relay_addr"
	FieldRelayCA     Field = "relay_ca_file"
	FieldFingerprint Field = "relay_fingerprint"
	FieldType        Field = "type"
	FieldSubdomain   Field = "subdomain"
	FieldRemotePort  Field = "remote_port"
	FieldUpstream    Field = "upstream"
	FieldUpstreamCA  Field = "upstream_ca_file"
	FieldBasicAuth   Field = "basic_auth_user"
)

// Problems maps fields to what is wrong with them. An empty Problems means
// the profile is valid.
type Problems map[Field]string

func (p Problems) Error() string {
	var parts []string
	for _, f := range []Field{FieldName, FieldRelayAddr, FieldRelayCA, FieldFingerprint, FieldType,
		FieldSubdomain, FieldRemotePort, FieldUpstream, FieldUpstreamCA, FieldBasicAuth} {
		if msg, ok := p[f]; ok {
			parts = append(parts, string(f)+": "+msg)
		}
	}
	return strings.Join(parts, "; ")
}

// Validate checks a profile the way the settings form shows it: each
// problem at its field. It reads the CA files it names.
func (p Profile) Validate() Problems {
	bad := Problems{}
	if strings.TrimSpace(p.Name) == "" {
		bad[FieldName] = "Give the profile a name."
	}
	if !p.BuiltinRelay {
		if p.RelayAddr == "" {
			bad[FieldRelayAddr] = "Enter the relay's address as host:port."
		} else if host, port, err := net.SplitHostPort(p.RelayAddr); err != nil || host == "" || !validPort(port) {
			bad[FieldRelayAddr] = fmt.Sprintf("%q is not host:port.", p.RelayAddr)
		}
		if p.RelayCAFile != "" && p.RelayFingerprint != "" {
			bad[FieldFingerprint] = "Use a CA file or a fingerprint, not both."
		}
		if p.RelayCAFile != "" {
			if msg := checkCAFile(p.RelayCAFile); msg != "" {
				bad[FieldRelayCA] = msg
			}
		}
		if p.RelayFingerprint != "" {
			if _, err := wire.ParseFingerprint(p.RelayFingerprint); err != nil {
				bad[FieldFingerprint] = "A fingerprint is 64 hex digits (SHA-256)."
			}
		}
	}
	switch p.Type {
	case wire.ProtoHTTP, wire.ProtoTLS:
		if p.Subdomain != "" {
			if err := wire.ValidName(p.Subdomain); err != nil {
				bad[FieldSubdomain] = "Use lowercase letters, digits and inner hyphens (at most 63)."
			}
		} else if p.Type == wire.ProtoTLS {
			bad[FieldSubdomain] = "TLS tunnels need a subdomain: clients reach them by name."
		}
	case wire.ProtoTCP:
		if p.RemotePort < 0 || p.RemotePort > 65535 {
			bad[FieldRemotePort] = "A port is 1-65535, or empty for any."
		}
	default:
		bad[FieldType] = "Choose HTTP, TCP or TLS."
	}
	if p.Type != 0 {
		if _, err := p.NormalizedUpstream(); err != nil {
			bad[FieldUpstream] = UpstreamMessage(err)
		}
	}
	if p.UpstreamCAFile != "" {
		if msg := checkCAFile(p.UpstreamCAFile); msg != "" {
			bad[FieldUpstreamCA] = msg
		}
	}
	if p.BasicAuthUser != "" && (p.Type != wire.ProtoHTTP || strings.Contains(p.BasicAuthUser, ":")) {
		bad[FieldBasicAuth] = "Basic auth is for HTTP tunnels, and the user name has no colon."
	}
	return bad
}

// NormalizedUpstream returns the upstream as the forwarder will use it, or
// an error naming what is wrong; the settings form shows it live.
func (p Profile) NormalizedUpstream() (string, error) {
	u, err := forwarder.ParseUpstream(p.Upstream, p.Type)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// UpstreamMessage words an error from NormalizedUpstream for the field it
// belongs to: the reason alone, as a sentence (the field shows the input).
func UpstreamMessage(err error) string {
	var ue *forwarder.UpstreamError
	if errors.As(err, &ue) {
		return upperFirst(ue.Reason) + "."
	}
	return err.Error()
}

// Secrets are a profile's secrets, read from the keyring when it starts.
type Secrets struct {
	Token             string
	BasicAuthPassword string
}

// Tunnel returns the forwarder tunnel for the profile.
func (p Profile) Tunnel(s Secrets) forwarder.Tunnel {
	t := forwarder.Tunnel{
		Proto:             p.Type,
		Upstream:          p.Upstream,
		Name:              p.Subdomain,
		RemotePort:        p.RemotePort,
		UpstreamHTTP2:     p.UpstreamHTTP2,
		UpstreamTLSVerify: p.VerifyUpstreamTLS,
	}
	if p.VerifyUpstreamTLS {
		t.UpstreamCAFile = p.UpstreamCAFile
	}
	if p.Type == wire.ProtoTCP {
		t.Name = ""
	} else {
		t.RemotePort = 0
	}
	if p.RewriteHost && p.Type == wire.ProtoHTTP {
		t.HostHeader = "rewrite"
	}
	if p.BasicAuthUser != "" && s.BasicAuthPassword != "" {
		t.BasicAuth = p.BasicAuthUser + ":" + s.BasicAuthPassword
	}
	return t
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n <= 65535
}

func checkCAFile(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "Cannot read the CA file: " + pathError(err)
	}
	if !strings.Contains(string(data), "-----BEGIN CERTIFICATE-----") {
		return "The CA file holds no PEM certificate."
	}
	return ""
}

func pathError(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err.Error() + "."
	}
	return err.Error()
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
