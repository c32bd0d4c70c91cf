package relay

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParsePortRange(t *testing.T) {
	for _, c := range []struct {
		in   string
		want PortRange
	}{
		{"20000-20100", PortRange{20000, 20100}},
		{"5000", PortRange{5000, 5000}},
		{"0", PortRange{}},
		{" 1 - 2 ", PortRange{1, 2}},
	} {
		got, err := ParsePortRange(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParsePortRange(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "x", "10-5", "1-70000", "0-10", "-1"} {
		if _, err := ParsePortRange(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("ParsePortRange(%q) error = %v", bad, err)
		}
	}
}

func TestParseTokens(t *testing.T) {
	toks, err := parseTokens(strings.NewReader("# team tokens\n\nalpha app,api\nbeta\n  gamma   web  docs \n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Token{{"alpha", []string{"app", "api"}}, {"beta", nil}, {"gamma", []string{"web", "docs"}}}
	if len(toks) != len(want) {
		t.Fatalf("got %d tokens", len(toks))
	}
	for i := range want {
		if toks[i].Secret != want[i].Secret || strings.Join(toks[i].Names, " ") != strings.Join(want[i].Names, " ") {
			t.Errorf("token %d = %+v, want %+v", i, toks[i], want[i])
		}
	}
	if _, err := parseTokens(strings.NewReader("# nothing\n")); err == nil {
		t.Error("an empty tokens file was accepted")
	}
}

func TestAuthenticate(t *testing.T) {
	toks, _ := newTokenSet([]Token{{Secret: "one"}, {Secret: "two"}})
	for secret, want := range map[string]identity{"one": 0, "two": 1} {
		if id, ok := toks.authenticate(secret); !ok || id != want {
			t.Errorf("authenticate(%q) = %v, %v", secret, id, ok)
		}
	}
	for _, bad := range []string{"", "on", "one ", "three"} {
		if _, ok := toks.authenticate(bad); ok {
			t.Errorf("authenticate(%q) accepted", bad)
		}
	}
	open, _ := newTokenSet(nil)
	if id, ok := open.authenticate("anything"); !ok || id != anonymous {
		t.Errorf("open relay: %v %v", id, ok)
	}
}

func TestValidateRejects(t *testing.T) {
	for _, c := range []struct {
		field string
		mut   func(*Config)
	}{
		{"AgentAddr", func(c *Config) { c.AgentAddr = "" }},
		{"HTTPAddr", func(c *Config) { c.HTTPAddr = "nohost" }},
		{"Domain", func(c *Config) { c.Domain = "." }},
		{"TLSKeyFile", func(c *Config) { c.TLSCertFile = "x" }},
		{"TLSCertFile", func(c *Config) { c.TLSKeyFile = "x" }},
		{"StateDir", func(c *Config) { c.StateDir = "" }},
		{"Tokens", func(c *Config) { c.Tokens = []Token{{Secret: ""}} }},
		{"Tokens", func(c *Config) { c.Tokens = []Token{{Secret: "a", Names: []string{"Bad_Name"}}} }},
		{"Tokens", func(c *Config) { c.Tokens = []Token{{Secret: strings.Repeat("x", 2000)}} }},
		{"Tokens", func(c *Config) { c.Tokens = nil }},
		{"Tokens", func(c *Config) {
			c.Tokens = []Token{{Secret: "a"}, {Secret: "b"}, {Secret: "a", Names: []string{"app"}}}
		}},
		{"Tokens", func(c *Config) {
			c.Tokens = []Token{{Secret: "a", Names: []string{"app"}}, {Secret: "b", Names: []string{"web", "app"}}}
		}},
		{"NoAuth", func(c *Config) { c.NoAuth = true }},
		{"NoAuth", func(c *Config) { c.Tokens, c.NoAuth, c.AgentAddr = nil, true, "0.0.0.0:7835" }},
		{"NoAuth", func(c *Config) { c.Tokens, c.NoAuth, c.HTTPSAddr = nil, true, ":443" }},
		{"StreamsPerSession", func(c *Config) { c.StreamsPerSession = 0 }},
		{"HandshakeTimeout", func(c *Config) { c.HandshakeTimeout = 0 }},
		{"ReadHeaderTimeout", func(c *Config) { c.ReadHeaderTimeout = -time.Second }},
		{"NameGrace", func(c *Config) { c.NameGrace = -time.Second }},
		{"MaxHandshakesPerIP", func(c *Config) { c.MaxHandshakesPerIP = 0 }},
		{"MaxTunnels", func(c *Config) { c.MaxTunnels = -1 }},
		{"ControlRate", func(c *Config) { c.ControlRate = 0 }},
		{"ClientConnsPerTunnel", func(c *Config) { c.ClientConnsPerTunnel = 0 }},
	} {
		cfg := DefaultConfig()
		cfg.StateDir = t.TempDir()
		cfg.Tokens = []Token{{Secret: "t"}}
		c.mut(&cfg)
		_, err := New(cfg)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != c.field {
			t.Errorf("%s: New error = %v, want a ConfigError for %s", c.field, err, c.field)
		}
		// Library errors speak of Config fields, never of command-line flags.
		if err != nil && strings.Contains(err.Error(), "--") {
			t.Errorf("%s: error names a flag: %v", c.field, err)
		}
	}
}

func TestValidateAcceptsNoAuthOnLoopback(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0", "localhost:0", "127.0.0.2:0"} {
		cfg := DefaultConfig()
		cfg.StateDir = t.TempDir()
		cfg.NoAuth = true
		cfg.AgentAddr, cfg.HTTPAddr = addr, addr
		if err := cfg.validate(); err != nil {
			t.Errorf("NoAuth on %s: %v", addr, err)
		}
	}
}
