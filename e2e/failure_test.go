package e2e

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"porthole/forwarder"
	tt "porthole/internal/tunneltest"
	"porthole/relay"
	"porthole/wire"
)

func TestUpstreamFailuresAreCodedPages(t *testing.T) {
	// A port with nothing listening.
	closed := tt.Listen(t)
	refused := closed.Addr().String()
	closed.Close()
	// An upstream that answers garbage.
	garbage := tt.Listen(t)
	go func() {
		for {
			c, err := garbage.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "this is not HTTP\r\n\r\n")
			c.Close()
		}
	}()
	// An upstream that never answers.
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer slow.Close()
	defer close(hang)

	srv := tt.StartRelay(t, tt.RelayConfig(t))
	client := tt.Client(srv)
	// Only the upstream that never answers meets the short response
	// timeout: the others must fail by what they do, however slowly a
	// loaded machine gets to it.
	for _, c := range []struct {
		name, upstream string
		timeout        time.Duration
		status         int
		code           string
	}{
		{"refused", refused, time.Minute, 502, "PH-502-UPSTREAM-REFUSED"},
		{"invalid response", garbage.Addr().String(), time.Minute, 502, "PH-502-UPSTREAM-RESPONSE"},
		{"timeout", slow.URL, 300 * time.Millisecond, 504, "PH-504-UPSTREAM-TIMEOUT"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := tt.AgentConfig(t, srv, httpTunnel(c.upstream))
			cfg.ResponseTimeout = c.timeout
			a, st := tt.StartAgent(t, cfg)
			defer a.Stop()
			resp, body := get(t, client, tt.URL(t, st, "http"))
			if resp.StatusCode != c.status || resp.Header.Get("Porthole-Error") != c.code || !strings.Contains(body, c.code) {
				t.Errorf("got %d %q, want %d %q; body %q", resp.StatusCode, resp.Header.Get("Porthole-Error"), c.status, c.code, body)
			}
		})
	}
}

func TestUnknownHostIs404(t *testing.T) {
	srv := tt.StartRelay(t, tt.RelayConfig(t))
	for _, host := range []string{"nobody.localhost", "localhost", "a.b.localhost", "example.com"} {
		resp, _ := get(t, tt.Client(srv), "http://"+srv.HTTPAddr(), "Host", host)
		if resp.StatusCode != 404 || resp.Header.Get("Porthole-Error") != "PH-404-TUNNEL-NOT-FOUND" {
			t.Errorf("%s: %d %q", host, resp.StatusCode, resp.Header.Get("Porthole-Error"))
		}
	}
}

// runUntilFailed runs an agent that must fail without ever retrying.
func runUntilFailed(t *testing.T, cfg forwarder.Config) error {
	t.Helper()
	a := tt.RunAgent(t, cfg)
	select {
	case <-a.Done:
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not give up")
	}
	err := a.Err
	close(a.States)
	for s := range a.States {
		if s.Phase == forwarder.Reconnecting {
			t.Errorf("agent retried a fatal error: %v", s.Err)
		}
		if s.Phase == forwarder.Online {
			t.Errorf("agent came online")
		}
	}
	if err == nil {
		t.Fatal("Run returned nil")
	}
	if !forwarder.IsFatal(err) {
		t.Errorf("error %v is not fatal", err)
	}
	return err
}

func TestWrongTokenFails(t *testing.T) {
	rc := tt.RelayConfig(t)
	rc.Tokens, rc.NoAuth = []relay.Token{{Secret: "s3cret"}}, false
	srv := tt.StartRelay(t, rc)
	cfg := tt.AgentConfig(t, srv, httpTunnel("8000"))
	cfg.Token = "wrong-token-value"
	err := runUntilFailed(t, cfg)
	if !wire.IsCode(err, wire.CodeAuthFailed) || !strings.Contains(err.Error(), "authentication failed") {
		t.Errorf("error = %v, want authentication failed", err)
	}
	if strings.Contains(err.Error(), "wrong-token-value") {
		t.Errorf("error leaks the token: %v", err)
	}
}

func TestRelayTrust(t *testing.T) {
	srv := tt.StartRelay(t, tt.RelayConfig(t))
	other := tt.NewCert(t, "127.0.0.1")
	relayCert := writePEMFile(t, srv)

	t.Run("pinned fingerprint mismatch", func(t *testing.T) {
		cfg := tt.AgentConfig(t, srv, httpTunnel("8000"))
		cfg.RelayFingerprint = strings.Repeat("ab", 32)
		err := runUntilFailed(t, cfg)
		if !errors.Is(err, forwarder.ErrRelayUntrusted) || !strings.Contains(err.Error(), "fingerprint mismatch") {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("CA mismatch", func(t *testing.T) {
		cfg := tt.AgentConfig(t, srv, httpTunnel("8000"))
		cfg.RelayFingerprint, cfg.RelayCAFile = "", other.CertFile
		err := runUntilFailed(t, cfg)
		if !errors.Is(err, forwarder.ErrRelayUntrusted) {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("CA match", func(t *testing.T) {
		cfg := tt.AgentConfig(t, srv, httpTunnel("8000"))
		cfg.RelayFingerprint, cfg.RelayCAFile = "", relayCert
		tt.StartAgent(t, cfg)
	})
}

func TestNameHeldByAnotherToken(t *testing.T) {
	rc := tt.RelayConfig(t)
	rc.Tokens, rc.NoAuth = []relay.Token{{Secret: "token-a"}, {Secret: "token-b"}, {Secret: "token-c", Names: []string{"vip"}}}, false
	rc.NameGrace = time.Hour
	srv := tt.StartRelay(t, rc)
	up := httptest.NewServer(http.NotFoundHandler())
	defer up.Close()

	cfgA := tt.AgentConfig(t, srv, httpTunnel(up.URL))
	cfgA.Token = "token-a"
	a, st := tt.StartAgent(t, cfgA)

	cfgB := tt.AgentConfig(t, srv, httpTunnel(up.URL))
	cfgB.Token = "token-b"
	if err := runUntilFailed(t, cfgB); !wire.IsCode(err, wire.CodeNameTaken) {
		t.Errorf("second token binding a live name: %v", err)
	}

	// After A disconnects, the name stays A's for the grace period and the
	// public side says the tunnel is offline.
	a.Stop()
	resp, _ := get(t, tt.Client(srv), tt.URL(t, st, "http"))
	if resp.StatusCode != 503 || resp.Header.Get("Porthole-Error") != "PH-503-TUNNEL-OFFLINE" {
		t.Errorf("offline tunnel: %d %q", resp.StatusCode, resp.Header.Get("Porthole-Error"))
	}
	if err := runUntilFailed(t, tt.AgentConfig(t, srv, httpTunnel(up.URL))); !wire.IsCode(err, wire.CodeAuthFailed) {
		t.Errorf("no token: %v", err)
	}
	cfgB2 := cfgB
	if err := runUntilFailed(t, cfgB2); !wire.IsCode(err, wire.CodeNameTaken) {
		t.Errorf("second token binding a held name: %v", err)
	}
	// A itself gets it back.
	tt.StartAgent(t, cfgA)

	// Names from the tokens file belong to their token only.
	vip := httpTunnel(up.URL)
	vip.Name = "vip"
	cfgVIP := tt.AgentConfig(t, srv, vip)
	cfgVIP.Token = "token-a"
	if err := runUntilFailed(t, cfgVIP); !wire.IsCode(err, wire.CodeNameDenied) {
		t.Errorf("reserved name: %v", err)
	}
	cfgVIP.Token = "token-c"
	tt.StartAgent(t, cfgVIP)
}

func writePEMFile(t *testing.T, srv *relay.Server) string {
	t.Helper()
	conn, err := net.Dial("tcp", srv.AgentAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return writePEM(t, peerCert(t, conn))
}
