package engine

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zalando/go-keyring"

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

type change struct {
	id string
	s  Status
}

// watch collects status changes in the order OnChange delivers them.
type watch chan change

func (w watch) onChange(id string, s Status) { w <- change{id, s} }

// wait returns the first change of profile id to phase p.
func (w watch) wait(t *testing.T, id string, p forwarder.Phase) Status {
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
	if !st.Running || !m.Status(p.ID).Running {
		t.Error("not Running while online")
	}
	srv, _ := local.Ensure()
	url := tt.URL(t, st.State, "http")
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
	if st := w.wait(t, p.ID, forwarder.Stopped); st.Running || m.Status(p.ID).Running {
		t.Error("Stopped but still Running")
	}
	m.Toggle(p) // starts again at once: the stopped profile is not running
	w.wait(t, p.ID, forwarder.Online)
	if err := m.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s := m.Status(p.ID); s.Running || s.Phase != forwarder.Stopped {
		t.Errorf("after Shutdown: %+v", s)
	}
	m.Start(p) // as a late click while the app quits
	if s := m.Status(p.ID); s.Running {
		t.Errorf("started after Shutdown: %+v", s)
	}
	local.Close()
	up.Close()
	tt.Client(srv).CloseIdleConnections()
	tt.WaitGoroutines(t, base)
}

// TestFailedStatusIsFinal: the change that says Failed also says the
// profile no longer runs, and no change follows it; the stored status
// agrees with what was delivered.
func TestFailedStatusIsFinal(t *testing.T) {
	rc := tt.RelayConfig(t)
	rc.Tokens, rc.NoAuth = []relay.Token{{Secret: "right"}}, false
	srv := tt.StartRelay(t, rc)
	w := make(watch, 100)
	m := New(Config{Secrets: fakeSecrets{s: settings.Secrets{Token: "wrong"}}, OnChange: w.onChange, Logger: tt.Logger(t)})
	p := settings.Example()
	p.BuiltinRelay, p.RelayAddr, p.RelayFingerprint, p.HasToken = false, srv.AgentAddr(), srv.Fingerprint(), true

	m.Start(p)
	var seen []Status
	for c := range w {
		seen = append(seen, c.s)
		if c.s.Phase == forwarder.Failed {
			break
		}
	}
	final := seen[len(seen)-1]
	if final.Running || !wire.IsCode(final.Err, wire.CodeAuthFailed) {
		t.Errorf("final change: %+v", final)
	}
	for _, s := range seen[:len(seen)-1] {
		if !s.Running {
			t.Errorf("a change before the end says not running: %+v", s)
		}
	}
	if got := m.Status(p.ID); got.Running || got.Phase != forwarder.Failed {
		t.Errorf("stored status %+v", got)
	}
	select {
	case c := <-w:
		t.Errorf("a change after the final one: %+v", c.s)
	default:
	}
	// A failed profile starts again.
	m.Start(p)
	if s := m.Status(p.ID); !s.Running || s.Phase != forwarder.Connecting {
		t.Errorf("restarted: %+v", s)
	}
	w.wait(t, p.ID, forwarder.Failed)
}

// TestChangesArriveInOrder starts and stops a profile many times from
// several goroutines: every status OnChange sees is the one stored at that
// moment, so the last one seen is the stored one.
func TestChangesArriveInOrder(t *testing.T) {
	local := localRelay(t)
	var mu sync.Mutex
	var last Status
	var m *Manager
	m = New(Config{Secrets: fakeSecrets{}, LocalRelay: local, OnChange: func(id string, s Status) {
		if got := m.Status(id); got.Phase != s.Phase || got.Running != s.Running {
			t.Errorf("OnChange got %v (running %v), stored is %v (running %v)", s.Phase, s.Running, got.Phase, got.Running)
		}
		mu.Lock()
		last = s
		mu.Unlock()
	}})
	p := settings.Example()
	p.Upstream = "127.0.0.1:9"
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 20 {
				m.Toggle(p)
			}
		})
	}
	wg.Wait()
	m.Shutdown(t.Context())
	mu.Lock()
	defer mu.Unlock()
	if got := m.Status(p.ID); got.Phase != last.Phase || got.Running || last.Running {
		t.Errorf("stored %+v, last delivered %+v", got, last)
	}
}

func TestManagerReportsKeyringFailure(t *testing.T) {
	w := make(watch, 10)
	m := New(Config{Secrets: fakeSecrets{err: settings.ErrKeyringUnavailable}, OnChange: w.onChange})
	p := settings.Example()
	p.BuiltinRelay, p.RelayAddr = false, "127.0.0.1:1"
	m.Start(p)
	st := w.wait(t, p.ID, forwarder.Failed)
	if !errors.Is(st.Err, settings.ErrKeyringUnavailable) || st.Running {
		t.Errorf("status = %+v", st)
	}
}

func TestManagerRefusesAnInvalidProfileInPlainWords(t *testing.T) {
	w := make(watch, 10)
	m := New(Config{OnChange: w.onChange})
	p := settings.Example()
	p.BuiltinRelay, p.RelayAddr, p.Upstream = false, "relay", "99999"
	m.Start(p)
	st := w.wait(t, p.ID, forwarder.Failed)
	var bad settings.Problems
	if !errors.As(st.Err, &bad) || !strings.Contains(st.Err.Error(), "Upstream: Port 99999") || strings.Contains(st.Err.Error(), "relay_addr") {
		t.Errorf("err = %v", st.Err)
	}
}

func TestManagerUsesTheTokenFromTheKeyring(t *testing.T) {
	rc := tt.RelayConfig(t)
	rc.Tokens, rc.NoAuth = []relay.Token{{Secret: "from-keyring"}}, false
	srv := tt.StartRelay(t, rc)
	w := make(watch, 100)
	p := settings.Example()
	p.BuiltinRelay, p.RelayAddr, p.RelayFingerprint, p.HasToken = false, srv.AgentAddr(), srv.Fingerprint(), true
	p.Type, p.Upstream, p.Subdomain = wire.ProtoTCP, "127.0.0.1:9", ""

	m := New(Config{Secrets: fakeSecrets{s: settings.Secrets{Token: "wrong"}}, OnChange: w.onChange})
	m.Start(p)
	if st := w.wait(t, p.ID, forwarder.Failed); !wire.IsCode(st.Err, wire.CodeAuthFailed) {
		t.Errorf("wrong token: %v", st.Err)
	}
	m = New(Config{Secrets: fakeSecrets{s: settings.Secrets{Token: "from-keyring"}}, OnChange: w.onChange})
	m.Start(p)
	st := w.wait(t, p.ID, forwarder.Online)
	if _, port, err := net.SplitHostPort(tt.HostPort(tt.URL(t, st.State, "tcp"))); err != nil || port == "" {
		t.Errorf("tcp URL %v", st.Forwarding)
	}
	m.Shutdown(t.Context())
}

// TestBasicAuthFailsClosed runs a profile with a basic-auth user through a
// real relay: with the password missing from the keyring it does not
// start, and a public client never gets the service without credentials.
func TestBasicAuthFailsClosed(t *testing.T) {
	keyring.MockInit() // the missing secret is the error path under test
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "private data") }))
	defer up.Close()
	srv := tt.StartRelay(t, tt.RelayConfig(t))
	secrets := settings.NewKeyring()
	w := make(watch, 100)
	m := New(Config{Secrets: secrets, OnChange: w.onChange, Logger: tt.Logger(t)})
	p := settings.Example()
	p.BuiltinRelay, p.RelayAddr, p.RelayFingerprint = false, srv.AgentAddr(), srv.Fingerprint()
	p.Subdomain, p.Upstream, p.BasicAuthUser = "private", up.URL, "alice"
	_, port, _ := net.SplitHostPort(srv.HTTPAddr())
	url := "http://private.localhost:" + port + "/"
	get := func(user, pass string) int {
		req, _ := http.NewRequest("GET", url, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := tt.Client(srv).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	m.Start(p)
	st := w.wait(t, p.ID, forwarder.Failed)
	var se *settings.SecretError
	if !errors.As(st.Err, &se) || se.Kind != settings.SecretBasicAuth || !errors.Is(st.Err, settings.ErrNoSecret) {
		t.Fatalf("started without its password: %+v", st)
	}
	if code := get("", ""); code == http.StatusOK {
		t.Fatal("the service is public without credentials")
	}

	if err := secrets.Set(p.ID, settings.SecretBasicAuth, "s3cret"); err != nil {
		t.Fatal(err)
	}
	m.Start(p)
	w.wait(t, p.ID, forwarder.Online)
	if code := get("", ""); code != http.StatusUnauthorized {
		t.Errorf("without credentials: %d, want 401", code)
	}
	if code := get("alice", "s3cret"); code != http.StatusOK {
		t.Errorf("with credentials: %d, want 200", code)
	}
	m.Shutdown(t.Context())
}
