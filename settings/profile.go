// Package settings holds the tunnel profiles the desktop app and the
// command line share: the profile model, its one mapping to a forwarder
// configuration and its validation, the profile store (one versioned file,
// written atomically), the secrets kept in the OS keyring, and the paths of
// Porthole's files.
package settings

import (
	"crypto/rand"
	"encoding/hex"
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
	// profiles without one never wait on the keyring. A profile that has
	// one never starts without it.
	HasToken bool `json:"has_token,omitempty"`

	// Subdomain is the name under the relay's domain, or a full hostname
	// (one with a dot) that the relay's tokens file gives the token.
	Type       wire.Proto `json:"type"`
	Subdomain  string     `json:"subdomain,omitempty"`
	RemotePort int        `json:"remote_port,omitempty"`
	Upstream   string     `json:"upstream"`

	UpstreamHTTP2     bool   `json:"upstream_http2,omitempty"`
	VerifyUpstreamTLS bool   `json:"verify_upstream_tls,omitempty"`
	UpstreamCAFile    string `json:"upstream_ca_file,omitempty"`
	RewriteHost       bool   `json:"rewrite_host,omitempty"`
	// BasicAuthUser, when set, makes public clients give this user and the
	// password saved in the keyring. A profile with a user never serves
	// without the password.
	BasicAuthUser string `json:"basic_auth_user,omitempty"`

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

// Secrets are a profile's secrets, read from the keyring when it starts.
type Secrets struct {
	Token             string
	BasicAuthPassword string
}

// Endpoint is where an agent reaches a relay and the certificate
// fingerprint it trusts there.
type Endpoint struct {
	Addr        string
	Fingerprint string
}

// Config is the one mapping from a profile to the forwarder's
// configuration. builtin is the built-in relay, for profiles that use it.
//
// It refuses, with *SecretError, a profile whose relay token or basic-auth
// password is empty although the profile says it has one: a profile never
// runs without a secret it asks for. Security settings are never dropped:
// a basic-auth user on a tunnel that cannot have one reaches the forwarder,
// which refuses it.
func (p Profile) Config(s Secrets, builtin Endpoint) (forwarder.Config, error) {
	cfg := forwarder.DefaultConfig()
	if p.BuiltinRelay {
		cfg.RelayAddr, cfg.RelayFingerprint = builtin.Addr, builtin.Fingerprint
	} else {
		if p.HasToken && s.Token == "" {
			return cfg, &SecretError{Kind: SecretToken, Err: ErrNoSecret}
		}
		cfg.RelayAddr, cfg.RelayCAFile, cfg.RelayFingerprint = p.RelayAddr, p.RelayCAFile, p.RelayFingerprint
		cfg.Token = s.Token
	}
	t := forwarder.Tunnel{
		Label:             p.Name,
		Proto:             p.Type,
		Upstream:          p.Upstream,
		UpstreamHTTP2:     p.UpstreamHTTP2,
		UpstreamTLSVerify: p.VerifyUpstreamTLS,
	}
	if p.Type == wire.ProtoTCP {
		t.RemotePort = p.RemotePort
	} else if strings.Contains(p.Subdomain, ".") {
		t.Hostname = p.Subdomain
	} else {
		t.Name = p.Subdomain
	}
	if p.VerifyUpstreamTLS {
		t.UpstreamCAFile = p.UpstreamCAFile
	}
	if p.RewriteHost && p.Type == wire.ProtoHTTP {
		t.HostHeader = "rewrite"
	}
	if p.BasicAuthUser != "" {
		if s.BasicAuthPassword == "" {
			return cfg, &SecretError{Kind: SecretBasicAuth, Err: ErrNoSecret}
		}
		t.BasicAuth = p.BasicAuthUser + ":" + s.BasicAuthPassword
	}
	cfg.Tunnels = []forwarder.Tunnel{t}
	return cfg, nil
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
