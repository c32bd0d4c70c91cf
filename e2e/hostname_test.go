package e2e

import (
	"testing"

	"porthole/forwarder"
	tt "porthole/internal/tunneltest"
	"porthole/relay"
	"porthole/wire"
)

// TestCustomHostname: a token that the tokens file gives a full hostname
// binds it and serves it over HTTP and HTTPS; another token, or a hostname
// the token was not given, is refused with name_reserved.
func TestCustomHostname(t *testing.T) {
	cfg := tt.RelayConfig(t)
	cfg.NoAuth = false
	cfg.Tokens = []relay.Token{{Secret: "owner", Names: []string{"app.example.test", "web"}}, {Secret: "other"}}
	srv := tt.StartRelay(t, cfg)
	up, _ := countingUpstream(t)

	bind := func(token, hostname string) *tt.Agent {
		acfg := tt.AgentConfig(t, srv, forwarder.Tunnel{Proto: wire.ProtoHTTP, Upstream: up.URL, Hostname: hostname})
		acfg.Token = token
		return tt.RunAgent(t, acfg)
	}
	a := bind("owner", "app.example.test")
	st := a.WaitPhase(t, forwarder.Online)
	for _, scheme := range []string{"http", "https"} {
		url := tt.URL(t, st, scheme)
		if want := scheme + "://app.example.test:" + port(map[string]string{"http": srv.HTTPAddr(), "https": srv.HTTPSAddr()}[scheme]); url != want {
			t.Errorf("URL %s, want %s", url, want)
		}
		if resp, body := get(t, tt.Client(srv), url+"/"); resp.StatusCode != 200 || body != "ok" {
			t.Errorf("%s: %d %q", url, resp.StatusCode, body)
		}
	}
	for _, c := range []struct{ token, hostname string }{
		{"other", "app.example.test"},  // another token's
		{"owner", "else.example.test"}, // not given to anyone
	} {
		err := bind(c.token, c.hostname).WaitPhase(t, forwarder.Failed).Err
		if !wire.IsCode(err, wire.CodeNameDenied) {
			t.Errorf("%s binding %s: %v, want name_reserved", c.token, c.hostname, err)
		}
	}
	// A host no tunnel holds is the relay's 404.
	if resp, _ := get(t, tt.Client(srv), "http://else.example.test:"+port(srv.HTTPAddr())+"/"); resp.StatusCode != 404 {
		t.Errorf("unknown hostname: %d", resp.StatusCode)
	}
}
