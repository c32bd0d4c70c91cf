package relay

import (
	"strings"
	"testing"
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
	toks := []Token{{Secret: "one"}, {Secret: "two"}}
	for secret, want := range map[string]identity{"one": 0, "two": 1} {
		if id, ok := authenticate(toks, secret); !ok || id != want {
			t.Errorf("authenticate(%q) = %v, %v", secret, id, ok)
		}
	}
	for _, bad := range []string{"", "on", "one ", "three"} {
		if _, ok := authenticate(toks, bad); ok {
			t.Errorf("authenticate(%q) accepted", bad)
		}
	}
	if id, ok := authenticate(nil, "anything"); !ok || id != anonymous {
		t.Errorf("open relay: %v %v", id, ok)
	}
}

func TestValidateRejects(t *testing.T) {
	for _, mut := range []func(*Config){
		func(c *Config) { c.AgentAddr = "" },
		func(c *Config) { c.HTTPAddr = "nohost" },
		func(c *Config) { c.Domain = "." },
		func(c *Config) { c.TLSCertFile = "x" },
		func(c *Config) { c.StateDir = "" },
		func(c *Config) { c.Tokens = []Token{{Secret: ""}} },
		func(c *Config) { c.Tokens = []Token{{Secret: "a", Names: []string{"Bad_Name"}}} },
	} {
		c := DefaultConfig()
		c.StateDir = t.TempDir()
		mut(&c)
		if _, err := New(c); err == nil {
			t.Errorf("New accepted %+v", c)
		}
	}
}
