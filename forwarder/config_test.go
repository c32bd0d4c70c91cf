package forwarder

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"porthole/wire"
)

// TestValidateNamesTheField checks that every refusal is a *FieldError
// naming the field at fault, which forms map to their inputs.
func TestValidateNamesTheField(t *testing.T) {
	dir := t.TempDir()
	// Holds the PEM marker but no certificate: only parsing can tell.
	fakePEM := filepath.Join(dir, "fake.pem")
	os.WriteFile(fakePEM, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"), 0o600)
	missing := filepath.Join(dir, "missing.pem")

	valid := func() Config {
		c := DefaultConfig()
		c.RelayAddr = "relay.example:7835"
		c.Tunnels = []Tunnel{{Proto: wire.ProtoHTTP, Upstream: "8000"}}
		return c
	}
	cases := []struct {
		name   string
		edit   func(*Config)
		field  string
		tunnel int
	}{
		{"no relay", func(c *Config) { c.RelayAddr = "" }, "RelayAddr", -1},
		{"relay with a path", func(c *Config) { c.RelayAddr = "relay.example/agents" }, "RelayAddr", -1},
		{"relay port out of range", func(c *Config) { c.RelayAddr = "relay.example:99999" }, "RelayAddr", -1},
		{"relay without host", func(c *Config) { c.RelayAddr = ":7835" }, "RelayAddr", -1},
		{"CA and fingerprint", func(c *Config) { c.RelayCAFile, c.RelayFingerprint = fakePEM, strings.Repeat("0", 64) }, "RelayFingerprint", -1},
		{"bad fingerprint", func(c *Config) { c.RelayFingerprint = "abc" }, "RelayFingerprint", -1},
		{"relay CA with a marker but no certificate", func(c *Config) { c.RelayCAFile = fakePEM }, "RelayCAFile", -1},
		{"relay CA missing", func(c *Config) { c.RelayCAFile = missing }, "RelayCAFile", -1},
		{"no tunnels", func(c *Config) { c.Tunnels = nil }, "Tunnels", -1},
		{"zero timeout", func(c *Config) { c.DialTimeout = 0 }, "DialTimeout", -1},
		{"bad type", func(c *Config) { c.Tunnels[0].Proto = 0 }, "Proto", 0},
		{"bad upstream", func(c *Config) { c.Tunnels[0].Upstream = "99999" }, "Upstream", 0},
		{"bad name", func(c *Config) { c.Tunnels[0].Name = "No_Caps" }, "Name", 0},
		{"port on http", func(c *Config) { c.Tunnels[0].RemotePort = 20000 }, "RemotePort", 0},
		{"upstream CA with a marker but no certificate", func(c *Config) { c.Tunnels[0].UpstreamCAFile = fakePEM }, "UpstreamCAFile", 0},
		{"basic auth without password", func(c *Config) { c.Tunnels[0].BasicAuth = "alice:" }, "BasicAuth", 0},
		{"basic auth on tcp", func(c *Config) {
			c.Tunnels[0].Proto, c.Tunnels[0].Upstream, c.Tunnels[0].BasicAuth = wire.ProtoTCP, "22", "alice:pw"
		}, "BasicAuth", 0},
		{"second tunnel", func(c *Config) {
			c.Tunnels = append(c.Tunnels, Tunnel{Proto: wire.ProtoTCP, Upstream: "ftp://x"})
		}, "Upstream", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := valid()
			c.edit(&cfg)
			err := cfg.Validate()
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate = %v, want a *FieldError", err)
			}
			if fe.Field != c.field || fe.Tunnel != c.tunnel {
				t.Errorf("Validate = %q at %s (tunnel %d), want %s (tunnel %d)", err, fe.Field, fe.Tunnel, c.field, c.tunnel)
			}
		})
	}
	cfg := valid()
	if err := cfg.Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func TestValidateNeverShowsTheBasicAuthPassword(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RelayAddr = "relay.example:7835"
	cfg.Tunnels = []Tunnel{{Proto: wire.ProtoTCP, Upstream: "22", BasicAuth: "alice:do-not-show"}}
	if err := cfg.Validate(); err == nil || strings.Contains(err.Error(), "do-not-show") {
		t.Errorf("Validate = %v", err)
	}
}
