// Package tunneltest runs real relays, forwarders and upstreams on loopback
// for tests. Everything listens on 127.0.0.1:0 and is stopped by t.Cleanup.
package tunneltest

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"porthole/forwarder"
	"porthole/relay"
)

// Logger returns a logger that writes to the test's output.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// RelayConfig returns a relay config for tests: every listener on a free
// loopback port, TCP tunnels on any port, state in a temp dir, and no
// authentication (set Tokens and clear NoAuth for a relay that wants them).
func RelayConfig(t testing.TB) relay.Config {
	cfg := relay.DefaultConfig()
	cfg.AgentAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.HTTPSAddr = "127.0.0.1:0"
	cfg.TCPPorts = relay.PortRange{}
	cfg.StateDir = t.TempDir()
	cfg.Logger = Logger(t).With("side", "relay")
	cfg.ShutdownGrace = 5 * time.Second
	cfg.NoAuth = true
	return cfg
}

// StartRelay starts a relay with cfg and stops it when the test ends.
func StartRelay(t testing.TB, cfg relay.Config) *relay.Server {
	t.Helper()
	srv, err := relay.New(cfg)
	if err != nil {
		t.Fatalf("relay.New: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("relay.Start: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// Agent is a forwarder running in the background, with its states.
type Agent struct {
	F      *forwarder.Forwarder
	States chan forwarder.State
	Done   chan struct{} // closed when Run returns
	Err    error         // Run's result, once Done is closed
	cancel context.CancelFunc
}

// AgentConfig returns a forwarder config that trusts srv by fingerprint.
func AgentConfig(t testing.TB, srv *relay.Server, tunnels ...forwarder.Tunnel) forwarder.Config {
	cfg := forwarder.DefaultConfig()
	cfg.RelayAddr = srv.AgentAddr()
	cfg.RelayFingerprint = srv.Fingerprint()
	cfg.Tunnels = tunnels
	cfg.Logger = Logger(t).With("side", "agent")
	cfg.ReconnectMin = 20 * time.Millisecond
	cfg.ReconnectMax = 200 * time.Millisecond
	return cfg
}

// RunAgent starts a forwarder with cfg. It does not wait for it to come
// online; see WaitOnline.
func RunAgent(t testing.TB, cfg forwarder.Config) *Agent {
	t.Helper()
	a := &Agent{States: make(chan forwarder.State, 64), Done: make(chan struct{})}
	prev := cfg.OnState
	cfg.OnState = func(s forwarder.State) {
		if prev != nil {
			prev(s)
		}
		select {
		case a.States <- s:
		default:
			t.Errorf("agent state channel full; dropped %v", s)
		}
	}
	f, err := forwarder.New(cfg)
	if err != nil {
		t.Fatalf("forwarder.New: %v", err)
	}
	a.F = f
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	go func() {
		a.Err = f.Run(ctx)
		close(a.Done)
	}()
	t.Cleanup(a.Stop)
	return a
}

// StartAgent runs a forwarder and waits until it is online.
func StartAgent(t testing.TB, cfg forwarder.Config) (*Agent, forwarder.State) {
	t.Helper()
	a := RunAgent(t, cfg)
	return a, a.WaitPhase(t, forwarder.Online)
}

// Stop cancels the forwarder and waits for Run to return.
func (a *Agent) Stop() {
	a.cancel()
	select {
	case <-a.Done:
	case <-time.After(30 * time.Second):
		panic("forwarder did not stop")
	}
}

// WaitPhase waits for the next state with the phase, failing the test on
// Failed (unless asked for) or after a generous deadline.
func (a *Agent) WaitPhase(t testing.TB, p forwarder.Phase) forwarder.State {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case s := <-a.States:
			if s.Phase == p {
				return s
			}
			if s.Phase == forwarder.Failed {
				t.Fatalf("forwarder failed while waiting for %v: %v", p, s.Err)
			}
		case <-deadline:
			t.Fatalf("forwarder did not reach %v", p)
		}
	}
}

// URL returns the first forwarding URL with the scheme.
func URL(t testing.TB, s forwarder.State, scheme string) string {
	t.Helper()
	for _, f := range s.Forwarding {
		if strings.HasPrefix(f.URL, scheme+"://") {
			return f.URL
		}
	}
	t.Fatalf("no %s URL in %+v", scheme, s.Forwarding)
	return ""
}

// Client returns an HTTP client that sends every request for a *.localhost
// name to the relay's public listeners (as a browser resolving *.localhost
// would), trusting the relay's certificate without verification.
func Client(srv *relay.Server) *http.Client {
	tr := &http.Transport{
		DialContext:       relayDialer(srv),
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		ForceAttemptHTTP2: true,
		DisableKeepAlives: false,
	}
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func relayDialer(srv *relay.Server) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		_, port, _ := net.SplitHostPort(addr)
		for _, a := range []string{srv.HTTPAddr(), srv.HTTPSAddr()} {
			if _, p, _ := net.SplitHostPort(a); p == port {
				return d.DialContext(ctx, network, a)
			}
		}
		return d.DialContext(ctx, network, addr)
	}
}

// HostPort returns the host:port of a URL like http://app.localhost:1234.
func HostPort(u string) string {
	_, rest, _ := strings.Cut(u, "://")
	return rest
}
