package forwarder

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"porthole/internal/backlog"
	"porthole/wire"
)

// Forwarder is one agent: a session to a relay carrying a set of tunnels.
// Tunnels may be added and removed while it runs (AddTunnel, RemoveTunnel).
type Forwarder struct {
	cfg      Config
	log      *slog.Logger
	relayTLS *tls.Config
	backlog  *backlog.Budget // what streams hold for slow upstreams; nil if unbounded
	shedLog  *backlog.ShedLog

	mu      sync.Mutex
	tunnels []*tunnel          // in bind order
	byID    map[uint32]*tunnel // every tunnel streams may arrive for, including one being added
	nextID  uint32
	live    *session // the session while Online, else nil
	state   State
	ran     bool
}

// New validates cfg and returns a Forwarder ready to Run.
func New(cfg Config) (*Forwarder, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	tunnels, relayTLS, err := cfg.prepare()
	if err != nil {
		return nil, err
	}
	if cfg.InstanceID == "" {
		cfg.InstanceID = rand.Text()
	}
	f := &Forwarder{cfg: cfg, log: cfg.Logger, tunnels: tunnels, byID: map[uint32]*tunnel{}, relayTLS: relayTLS}
	for _, t := range tunnels {
		f.byID[t.id] = t
		f.nextID = max(f.nextID, t.id)
	}
	if cfg.MaxBacklog > 0 {
		f.backlog = backlog.New(cfg.MaxBacklog, cfg.ClientBacklog)
		f.shedLog = backlog.NewShedLog(f.log, "public connection closed: its upstream is too far behind")
	}
	return f, nil
}

// Backlog returns what streams hold for upstreams that have not taken it
// yet, by public client address, and how many streams were closed to keep
// within MaxBacklog and ClientBacklog. It is zero if they are off.
func (f *Forwarder) Backlog() backlog.Stats {
	if f.backlog == nil {
		return backlog.Stats{}
	}
	return f.backlog.Stats()
}

// State returns the current state.
func (f *Forwarder) State() State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}

func (f *Forwarder) setState(s State) {
	f.mu.Lock()
	f.state = s
	f.mu.Unlock()
	switch s.Phase {
	case Online:
		f.log.Info("tunnel online", "urls", len(s.Forwarding))
	case Reconnecting:
		f.log.Warn("reconnecting", "attempt", s.Attempt, "delay", s.Delay.Round(time.Millisecond), "err", s.Err)
	case Failed:
		f.log.Error("tunnel failed", "err", s.Err)
	default:
		f.log.Info(s.Phase.String())
	}
	if f.cfg.OnState != nil {
		f.cfg.OnState(s)
	}
}

// Run connects to the relay and serves the tunnels until ctx is done, then
// drains in-flight work for up to DrainTimeout and returns nil. When the
// session is lost it reconnects with jittered exponential backoff and binds
// the same names again. It returns an error only for failures that retrying
// cannot fix: authentication, a refused bind, an untrusted relay certificate.
// Run may be called once.
func (f *Forwarder) Run(ctx context.Context) error {
	f.mu.Lock()
	if f.ran {
		f.mu.Unlock()
		return errors.New("forwarder: Run called twice")
	}
	f.ran = true
	f.mu.Unlock()

	f.setState(State{Phase: Connecting})
	for attempt := 0; ; {
		l, err := f.connect(ctx)
		if err == nil {
			attempt = 0
			err = f.serve(ctx, l)
		}
		if ctx.Err() != nil {
			f.setState(State{Phase: Stopped})
			return nil
		}
		if IsFatal(err) {
			f.setState(State{Phase: Failed, Err: err})
			return err
		}
		attempt++
		delay := backoff(attempt, f.cfg.ReconnectMin, f.cfg.ReconnectMax)
		f.setState(State{Phase: Reconnecting, Attempt: attempt, Delay: delay, RetryAt: time.Now().Add(delay), Err: err})
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			f.setState(State{Phase: Stopped})
			return nil
		}
	}
}

// backoff returns the delay before the given retry: exponential from min,
// capped at max, with jitter in [d/2, d).
func backoff(attempt int, min, max time.Duration) time.Duration {
	d := min
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d/2 + mrand.N(d/2+1)
}

// IsFatal reports whether err stops the forwarder for good.
func IsFatal(err error) bool {
	var we *wire.Error
	if errors.As(err, &we) {
		return we.Code.Fatal()
	}
	return isTrustError(err)
}

// forwardings lists the public addresses of the bound tunnels; called with
// f.mu held.
func (f *Forwarder) forwardings() []Forwarding {
	var out []Forwarding
	for _, t := range f.tunnels {
		for _, u := range t.bound.URLs {
			out = append(out, Forwarding{URL: u, Upstream: t.upstream.String()})
		}
	}
	return out
}

// link is an authenticated session with the relay, its tunnels bound.
type link struct {
	ys      *yamux.Session
	ledger  *wire.Ledger  // what yamux holds of each stream
	ctrl    *yamux.Stream // the control stream
	welcome *wire.Welcome
}

// connect dials the relay, authenticates and binds every tunnel.
func (f *Forwarder) connect(ctx context.Context) (*link, error) {
	dialCtx, cancel := context.WithTimeout(ctx, f.cfg.DialTimeout)
	defer cancel()
	raw, err := (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext(dialCtx, "tcp", f.cfg.RelayAddr)
	if err != nil {
		return nil, &DialError{Addr: f.cfg.RelayAddr, Err: err}
	}
	conn := wire.NewSessionConn(raw, f.relayTLS, false)
	if err := conn.HandshakeContext(dialCtx); err != nil {
		raw.Close()
		if isTrustError(err) {
			return nil, fmt.Errorf("relay %s: %w", f.cfg.RelayAddr, withTrust(err))
		}
		return nil, fmt.Errorf("TLS with relay %s: %w", f.cfg.RelayAddr, err)
	}
	if p := conn.ConnectionState().NegotiatedProtocol; p != wire.ALPN {
		conn.Close()
		return nil, wire.Errorf(wire.CodeBadVersion, "the relay at %s speaks %q, not %q; upgrade the relay", f.cfg.RelayAddr, p, wire.ALPN)
	}
	conn.SetDeadline(time.Now().Add(wire.HandshakeTimeout))
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	l := &link{ledger: wire.NewLedger(conn)}
	if l.welcome, err = f.hello(conn); err != nil {
		conn.Close()
		return nil, err
	}
	if l.ys, err = yamux.Client(l.ledger, wire.YamuxConfig(f.cfg.KeepAliveInterval, f.cfg.StreamWindow, slog.NewLogLogger(f.log.Handler(), slog.LevelDebug))); err != nil {
		conn.Close()
		return nil, err
	}
	if l.ctrl, err = f.bind(l.ys); err != nil {
		l.ys.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return l, nil
}

// DialError is a relay that could not be reached: no connection to Addr
// (refused, no such host, no answer in time). The forwarder tries again.
type DialError struct {
	Addr string
	Err  error
}

func (e *DialError) Error() string { return "dial relay " + e.Addr + ": " + e.Err.Error() }

func (e *DialError) Unwrap() error { return e.Err }

func withTrust(err error) error {
	if errors.Is(err, ErrRelayUntrusted) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrRelayUntrusted, err)
}

// hello authenticates on the TLS connection, before yamux starts.
func (f *Forwarder) hello(conn *wire.SessionConn) (*wire.Welcome, error) {
	hello := &wire.Hello{Version: wire.Version, Token: f.cfg.Token, Agent: "porthole", Instance: f.cfg.InstanceID}
	if err := wire.WriteMessage(conn, &wire.Message{Type: wire.TypeHello, Hello: hello}); err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	m, err := wire.ReadMessage(conn)
	if err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	if m.Error != nil {
		return nil, m.Error
	}
	if m.Welcome == nil {
		return nil, fmt.Errorf("handshake: unexpected %q message", m.Type)
	}
	return m.Welcome, nil
}

// bind opens the control stream and binds every tunnel on it.
func (f *Forwarder) bind(sess *yamux.Session) (*yamux.Stream, error) {
	ctrl, err := sess.OpenStream()
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	tunnels := slices.Clone(f.tunnels)
	f.mu.Unlock()
	for _, t := range tunnels {
		if err := wire.WriteMessage(ctrl, &wire.Message{Type: wire.TypeBind, Bind: t.bindRequest()}); err != nil {
			return nil, fmt.Errorf("bind: %w", err)
		}
		m, err := wire.ReadMessage(ctrl)
		if err != nil {
			return nil, fmt.Errorf("bind: %w", err)
		}
		if err := f.bound(t, m); err != nil {
			return nil, err
		}
	}
	return ctrl, nil
}

// bindRequest asks for the tunnel's name or port. After a reconnect it asks
// for what the tunnel had, so its public address stays put.
func (t *tunnel) bindRequest() *wire.Bind {
	bind := &wire.Bind{TunnelID: t.id, Proto: t.Proto, Name: t.Name, Hostname: t.Hostname, RemotePort: t.RemotePort,
		CIDRAllow: t.cidrAllow, CIDRDeny: t.cidrDeny}
	if bind.Name == "" && bind.Hostname == "" {
		bind.Name = t.bound.Name
	}
	if bind.RemotePort == 0 && t.Proto == wire.ProtoTCP {
		bind.RemotePort = boundPort(t.bound)
	}
	return bind
}

// bound applies the relay's reply to the tunnel's bind.
func (f *Forwarder) bound(t *tunnel, m *wire.Message) error {
	if m.Error != nil {
		return m.Error
	}
	if m.Bound == nil || m.Bound.TunnelID != t.id {
		return fmt.Errorf("bind: unexpected %q message", m.Type)
	}
	if err := t.checkRules(m.Bound); err != nil {
		return err
	}
	f.mu.Lock()
	t.bound = *m.Bound
	f.mu.Unlock()
	if t.http != nil {
		t.http.setHosts(m.Bound.URLs)
	}
	return nil
}

// boundPort returns the public port of a TCP tunnel's bound URL.
func boundPort(b wire.Bound) int {
	for _, raw := range b.URLs {
		if u, err := url.Parse(raw); err == nil {
			if p, err := strconv.Atoi(u.Port()); err == nil {
				return p
			}
		}
	}
	return 0
}
