package engine

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"porthole/forwarder"
	tt "porthole/internal/tunneltest"
	"porthole/relay"
	"porthole/settings"
	"porthole/wire"
)

type fakeSecrets struct {
	s   settings.Secrets
	err error
}

func (f fakeSecrets) Load(settings.Profile) (settings.Secrets, error) { return f.s, f.err }

// watch collects state changes per profile.
type watch chan struct {
	id string
	s  forwarder.State
}

func (w watch) onChange(id string, s forwarder.State) {
	w <- struct {
		id string
		s  forwarder.State
	}{id, s}
}

func (w watch) wait(t *testing.T, id string, p forwarder.Phase) forwarder.State {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case c := <-w:
			if c.id == id && c.s.Phase == p {
				return c.s
			}
		case <-timeout:
			t.Fatalf("profile %s never reached %v", id, p)
		}
	}
}

func localRelay(t *testing.T) *LocalRelay {
	l := &LocalRelay{StateDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0", Logger: tt.Logger(t)}
	t.Cleanup(l.Close)
	return l
}

func TestManagerStartStopWithBuiltinRelay(t *testing.T) {
	base := runtime.NumGoroutine()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "local") }))
	defer up.Close()
	local := localRelay(t)
	w := make(watch, 100)
	m := New(Config{Secrets: fakeSecrets{}, LocalRelay: local, OnChange: w.onChange, Logger: tt.Logger(t)})

	p := settings.Example()
	p.Upstream = up.URL
	m.Start(p)
	st := w.wait(t, p.ID, forwarder.Online)
	if !m.Running(p.ID) {
		t.Error("Running = false while online")
	}
	srv, _ := local.Ensure()
	url := tt.URL(t, st, "http")
	if !strings.HasPrefix(url, "http://myapp.localhost:") {
		t.Errorf("URL %q", url)
	}
	resp, err := tt.Client(srv).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "local" {
		t.Errorf("body %q", body)
	}

	m.Toggle(p) // stops
	w.wait(t, p.ID, forwarder.Stopped)
	for m.Running(p.ID) {
		runtime.Gosched()
	}
	m.Toggle(p) // starts again
	w.wait(t, p.ID, forwarder.Online)
	if err := m.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if m.Running(p.ID) {
		t.Error("still running after Shutdown")
	}
	local.Close()
	up.Close()
	tt.Client(srv).CloseIdleConnections()
	tt.WaitGoroutines(t, base)
}

func TestManagerReportsKeyringFailure(t *testing.T) {
	w := make(watch, 10)
	m := New(Config{Secrets: fakeSecrets{err: settings.ErrKeyringUnavailable}, OnChange: w.onChange})
	p := settings.Example()
	p.BuiltinRelay, p.RelayAddr = false, "127.0.0.1:1"
	m.Start(p)
	st := w.wait(t, p.ID, forwarder.Failed)
	if !errors.Is(st.Err, settings.ErrKeyringUnavailable) {
		t.Errorf("err = %v", st.Err)
	}
}

func TestManagerUsesTheTokenFromTheKeyring(t *testing.T) {
	rc := tt.RelayConfig(t)
	rc.Tokens, rc.NoAuth = []relay.Token{{Secret: "from-keyring"}}, false
	srv := tt.StartRelay(t, rc)
	w := make(watch, 100)
	p := settings.Example()
	p.BuiltinRelay, p.RelayAddr, p.RelayFingerprint = false, srv.AgentAddr(), srv.Fingerprint()
	p.Type, p.Upstream, p.Subdomain = wire.ProtoTCP, "127.0.0.1:9", ""

	m := New(Config{Secrets: fakeSecrets{s: settings.Secrets{Token: "wrong"}}, OnChange: w.onChange})
	m.Start(p)
	if st := w.wait(t, p.ID, forwarder.Failed); !wire.IsCode(st.Err, wire.CodeAuthFailed) {
		t.Errorf("wrong token: %v", st.Err)
	}
	m = New(Config{Secrets: fakeSecrets{s: settings.Secrets{Token: "from-keyring"}}, OnChange: w.onChange})
	m.Start(p)
	st := w.wait(t, p.ID, forwarder.Online)
	if _, port, err := net.SplitHostPort(tt.HostPort(tt.URL(t, st, "tcp"))); err != nil || port == "" {
		t.Errorf("tcp URL %v", st.Forwarding)
	}
	m.Shutdown(t.Context())
}
