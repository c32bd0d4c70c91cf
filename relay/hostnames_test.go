package relay

import (
	"testing"

	"porthole/wire"
)

func TestReservedNames(t *testing.T) {
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"app", true},
		{"app.example.com", true},
		{"a.b.example.co.uk", true},
		{"app.tunnels.example.com", false}, // under the domain: reserve "app"
		{"deep.app.tunnels.example.com", true},
		{"App.example.com", false},
		{"app..example.com", false},
		{"-app.example.com", false},
		{"app_1", false},
	} {
		if err := checkReservedName(c.name, "tunnels.example.com"); (err == nil) != c.ok {
			t.Errorf("checkReservedName(%q) = %v, want ok %v", c.name, err, c.ok)
		}
	}
}

func TestRequestedName(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Domain, cfg.Tokens, cfg.StateDir = "tunnels.example.com", []Token{{Secret: "a", Names: []string{"app.example.com"}}, {Secret: "b"}}, t.TempDir()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		req  wire.Bind
		who  identity
		want string
		code wire.Code
	}{
		{wire.Bind{Name: "web"}, 1, "web", ""},
		{wire.Bind{}, 1, "", ""},
		{wire.Bind{Hostname: "app.example.com"}, 0, "app.example.com", ""},
		{wire.Bind{Hostname: "APP.example.com"}, 0, "app.example.com", ""},
		{wire.Bind{Hostname: "web.tunnels.example.com"}, 1, "web", ""},
		{wire.Bind{Hostname: "app.example.com"}, 1, "", wire.CodeNameDenied},
		{wire.Bind{Hostname: "other.example.com"}, 0, "", wire.CodeNameDenied},
		{wire.Bind{Hostname: "app.example.com", Name: "web"}, 0, "", wire.CodeBadRequest},
		{wire.Bind{Hostname: "nodot"}, 0, "", wire.CodeNameInvalid},
		{wire.Bind{Name: "a.b"}, 0, "", wire.CodeNameInvalid},
	} {
		got, err := s.requestedName(c.req, c.who)
		if c.code != "" {
			if !wire.IsCode(err, c.code) {
				t.Errorf("%v as %d: %v, want %s", c.req, c.who, err, c.code)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%v as %d = %q, %v; want %q", c.req, c.who, got, err, c.want)
		}
	}
}
