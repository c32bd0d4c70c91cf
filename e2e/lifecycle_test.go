package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"porthole/forwarder"
	tt "porthole/internal/tunneltest"
)

func TestReconnectAfterRelayRestart(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "up") }))
	defer up.Close()
	rc := tt.RelayConfig(t)
	srv := tt.StartRelay(t, rc)
	tun := httpTunnel(up.URL)
	tun.Name = "" // a random name must survive the reconnect too
	a, st := tt.StartAgent(t, tt.AgentConfig(t, srv, tun))
	url := tt.URL(t, st, "http")

	srv.Close()
	re := a.WaitPhase(t, forwarder.Reconnecting)
	if re.Attempt != 1 || re.Delay <= 0 || re.Delay >= time.Second {
		t.Errorf("first retry: attempt %d after %v, want attempt 1 well under a second", re.Attempt, re.Delay)
	}

	// The same relay comes back on the same addresses with the same state.
	rc.AgentAddr, rc.HTTPAddr, rc.HTTPSAddr = srv.AgentAddr(), srv.HTTPAddr(), srv.HTTPSAddr()
	srv2 := tt.StartRelay(t, rc)
	st2 := a.WaitPhase(t, forwarder.Online)
	if got := tt.URL(t, st2, "http"); got != url {
		t.Errorf("after reconnect the URL is %q, want the same %q", got, url)
	}
	if resp, body := get(t, tt.Client(srv2), url); resp.StatusCode != 200 || body != "up" {
		t.Errorf("after reconnect: %d %q", resp.StatusCode, body)
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	dead := tt.Listen(t)
	addr := dead.Addr().String()
	dead.Close()
	srv := tt.StartRelay(t, tt.RelayConfig(t))
	cfg := tt.AgentConfig(t, srv, httpTunnel("8000"))
	cfg.RelayAddr = addr
	cfg.ReconnectMin, cfg.ReconnectMax = time.Millisecond, 8*time.Millisecond
	a := tt.RunAgent(t, cfg)
	var delays []time.Duration
	for len(delays) < 8 {
		s := a.WaitPhase(t, forwarder.Reconnecting)
		if s.Attempt != len(delays)+1 {
			t.Fatalf("attempt %d, want %d", s.Attempt, len(delays)+1)
		}
		delays = append(delays, s.Delay)
	}
	for i, d := range delays {
		ceiling := min(time.Millisecond<<i, 8*time.Millisecond)
		if d < ceiling/2 || d > ceiling {
			t.Errorf("delay %d = %v, want within [%v, %v]", i+1, d, ceiling/2, ceiling)
		}
	}
}

// blackhole is a TCP proxy whose existing connections can be made to drop
// every byte silently, like a dead network path with no FIN or RST.
type blackhole struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	live   []*atomic.Bool
}

func newBlackhole(t *testing.T, target string) *blackhole {
	b := &blackhole{ln: tt.Listen(t), target: target}
	go func() {
		for {
			c, err := b.ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			dead := new(atomic.Bool)
			b.mu.Lock()
			b.live = append(b.live, dead)
			b.mu.Unlock()
			go b.pump(c, up, dead)
			go b.pump(up, c, dead)
		}
	}()
	return b
}

func (b *blackhole) pump(dst, src net.Conn, dead *atomic.Bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			if !dead.Load() {
				dst.Close()
			}
			return
		}
		if !dead.Load() {
			dst.Write(buf[:n])
		}
	}
}

func (b *blackhole) killSilently() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, d := range b.live {
		d.Store(true)
	}
}

// inflight is an upstream whose requests wait until released.
type inflight struct {
	*httptest.Server
	started chan struct{}
	release chan struct{}
}

func newInflight() *inflight {
	in := &inflight{started: make(chan struct{}, 16), release: make(chan struct{}, 1)}
	in.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in.started <- struct{}{}
		<-in.release
		io.WriteString(w, "finished")
	}))
	return in
}

func TestAgentDrainsOnStop(t *testing.T) {
	up := newInflight()
	defer up.Close()
	srv := tt.StartRelay(t, tt.RelayConfig(t))
	a, st := tt.StartAgent(t, tt.AgentConfig(t, srv, httpTunnel(up.URL)))
	result := asyncGet(tt.Client(srv), tt.URL(t, st, "http"))
	<-up.started

	stopped := make(chan struct{})
	go func() { a.Stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("agent stopped before its in-flight request finished")
	case s := <-a.States:
		t.Fatalf("state %v before the request finished", s)
	case <-afterGoAway(srv, tt.URL(t, st, "http")):
	}
	close(up.release)
	if r := <-result; r.err != nil || r.status != 200 || r.body != "finished" {
		t.Errorf("in-flight request: %+v", r)
	}
	<-stopped
	if a.Err != nil {
		t.Errorf("Run returned %v after a clean stop", a.Err)
	}
}

func TestRelayDrainsOnShutdown(t *testing.T) {
	up := newInflight()
	defer up.Close()
	srv := tt.StartRelay(t, tt.RelayConfig(t))
	_, st := tt.StartAgent(t, tt.AgentConfig(t, srv, httpTunnel(up.URL)))
	// An idle kept-alive connection must not hold the shutdown up.
	idle := tt.Client(srv)
	first := asyncGet(idle, tt.URL(t, st, "http"))
	<-up.started
	up.release <- struct{}{}
	if r := <-first; r.status != 200 {
		t.Fatalf("first request: %+v", r)
	}
	result := asyncGet(tt.Client(srv), tt.URL(t, st, "http"))
	<-up.started
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	// New connections are refused once shutdown began.
	waitRefused(t, srv.HTTPAddr())
	close(up.release)
	if r := <-result; r.err != nil || r.status != 200 || r.body != "finished" {
		t.Errorf("in-flight request: %+v", r)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

type getResult struct {
	status int
	body   string
	err    error
}

func asyncGet(c *http.Client, url string) <-chan getResult {
	ch := make(chan getResult, 1)
	go func() {
		resp, err := c.Get(url)
		if err != nil {
			ch <- getResult{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		ch <- getResult{resp.StatusCode, string(b), err}
	}()
	return ch
}

// afterGoAway returns a channel closed once the relay refuses new requests
// for the tunnel because its agent is draining.
func afterGoAway(srv interface{ HTTPAddr() string }, url string) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", srv.HTTPAddr())
		}}}
		for range 1000 {
			resp, err := c.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 503 {
					return
				}
			}
			runtime.Gosched()
		}
	}()
	return ch
}

func waitRefused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		c.Close()
		runtime.Gosched()
	}
	t.Fatalf("%s still accepts connections", addr)
}

func TestNoGoroutinesLeftAfterLoad(t *testing.T) {
	base := runtime.NumGoroutine()
	func() {
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
		defer up.Close()
		echo := tt.EchoServer(t, nil)
		srv := tt.StartRelay(t, tt.RelayConfig(t))
		defer srv.Close()
		a, st := tt.StartAgent(t, tt.AgentConfig(t, srv,
			httpTunnel(up.URL),
			forwarder.Tunnel{Proto: 2, Upstream: echo.Addr().String()}))
		defer a.Stop()
		client := tt.Client(srv)
		defer client.CloseIdleConnections()
		var wg sync.WaitGroup
		for i := range 200 {
			wg.Go(func() {
				scheme := []string{"http", "https"}[i%2]
				resp, err := client.Get(tt.URL(t, st, scheme))
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			})
		}
		for range 20 {
			wg.Go(func() {
				c, err := net.Dial("tcp", tt.HostPort(tt.URL(t, st, "tcp")))
				if err != nil {
					t.Error(err)
					return
				}
				tt.RoundTrip(t, c, "x")
				c.Close()
			})
		}
		wg.Wait()
		echo.Close()
	}()
	tt.WaitGoroutines(t, base)
}
