package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"porthole/internal/backlog"
	"porthole/internal/group"
	"porthole/internal/netutil"
	"porthole/wire"
)

// Server is a relay.
type Server struct {
	cfg      Config
	log      *slog.Logger
	cert     atomic.Pointer[servingCert] // unless acme
	acme     *acmeManager                // certificates from an ACME CA, or nil
	metrics  *relayMetrics
	adminLn  net.Listener
	adminSrv *http.Server
	reg      *registry
	tcpHost  string

	agentLn, httpLn, httpsLn net.Listener
	httpSrv, httpsSrv        *http.Server
	httpConns, httpsConns    *netutil.ChanListener // connections the relay answers itself
	publicTLS, agentTLS      *tls.Config

	backlog    *backlog.Budget // what streams hold for slow public clients; nil if unbounded
	shedLog    *backlog.ShedLog
	handshakes *handshakes  // agent connections not yet authenticated
	unrouted   *clientConns // public connections that reach no tunnel yet, per address
	authFails  *authFailures
	tokens     *tokenSet

	mu         sync.Mutex
	closed     bool
	sessions   map[*session]struct{}
	byInstance map[instanceKey]*session
	open       map[net.Conn]struct{} // public connections, to force closed

	loops  group.Group // accept loops and the public http.Servers
	admin  group.Group // the admin listener's http.Server, which outlives the others
	agents group.Group // agent connections, from handshake to session end
	public group.Group // public connections being routed or piped
}

// instanceKey identifies one running agent: its token and instance id.
type instanceKey struct {
	owner    identity
	instance string
}

// New validates cfg and loads (or makes) the relay's certificate.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	hosts := []string{cfg.Domain, "*." + cfg.Domain, cfg.PublicHost, "localhost", "127.0.0.1", "::1"}
	if h, _, _ := net.SplitHostPort(cfg.AgentAddr); h != "" && !net.ParseIP(h).IsUnspecified() {
		hosts = append(hosts, h)
	}
	tokens, static := newTokenSet(cfg.Tokens)
	s := &Server{
		cfg:        cfg,
		log:        cfg.Logger,
		reg:        newRegistry(static, cfg.NameGrace),
		tokens:     tokens,
		handshakes: newHandshakes(cfg.MaxHandshakes, cfg.MaxHandshakesPerIP),
		unrouted:   newClientConns(cfg.UnroutedConnsPerIP),
		authFails:  newAuthFailures(),
		sessions:   map[*session]struct{}{},
		byInstance: map[instanceKey]*session{},
		open:       map[net.Conn]struct{}{},
	}
	if cfg.MaxBacklog > 0 {
		s.backlog = backlog.New(cfg.MaxBacklog, cfg.ClientBacklog)
		s.shedLog = backlog.NewShedLog(s.log, "public connection closed: its client is too far behind")
	}
	s.metrics = newRelayMetrics(s, cfg.MetricsTunnelLabels)
	if cfg.ACME == nil {
		cert, err := loadOrCreateCert(&cfg, hosts)
		if err != nil {
			return nil, err
		}
		s.cert.Store(newServingCert(cert))
	}
	return s, nil
}

// Fingerprint is the SHA-256 fingerprint of the relay's certificate, for
// agents to pin. It is empty with ACME, whose certificates agents trust by
// the system roots (and which change at every renewal).
func (s *Server) Fingerprint() string {
	if c := s.cert.Load(); c != nil {
		return c.fingerprint
	}
	return ""
}

// Backlog returns what streams hold for public clients that have not
// taken it yet, by client address, and how many streams were closed to
// keep within MaxBacklog and ClientBacklog. It is zero if they are off.
func (s *Server) Backlog() backlog.Stats {
	if s.backlog == nil {
		return backlog.Stats{}
	}
	return s.backlog.Stats()
}

// AgentAddr is the agent listener's address, once started.
func (s *Server) AgentAddr() string { return addrString(s.agentLn) }

// HTTPAddr is the public HTTP listener's address, or "" when disabled.
func (s *Server) HTTPAddr() string { return addrString(s.httpLn) }

// HTTPSAddr is the public HTTPS/TLS listener's address, or "" when disabled.
func (s *Server) HTTPSAddr() string { return addrString(s.httpsLn) }

func addrString(l net.Listener) string {
	if l == nil {
		return ""
	}
	return l.Addr().String()
}

// Start binds every listener and serves in the background. Addresses with
// port 0 get a free port; the accessors report the real ones.
func (s *Server) Start() error {
	var err error
	fail := func(what, addr string, err error) error {
		s.closeListeners()
		s.closeAdmin()
		return fmt.Errorf("%s listener %s: %w", what, addr, err)
	}
	if s.cfg.AdminAddr != "" {
		if err := s.startAdmin(); err != nil {
			return fail("admin", s.cfg.AdminAddr, err)
		}
	}
	if s.agentLn, err = net.Listen("tcp", s.cfg.AgentAddr); err != nil {
		return fail("agent", s.cfg.AgentAddr, err)
	}
	s.tcpHost, _, _ = net.SplitHostPort(s.cfg.AgentAddr)
	if s.cfg.HTTPAddr != "" {
		if s.httpLn, err = net.Listen("tcp", s.cfg.HTTPAddr); err != nil {
			return fail("http", s.cfg.HTTPAddr, err)
		}
		s.tcpHost, _, _ = net.SplitHostPort(s.cfg.HTTPAddr)
	}
	if s.cfg.HTTPSAddr != "" {
		if s.httpsLn, err = net.Listen("tcp", s.cfg.HTTPSAddr); err != nil {
			return fail("https", s.cfg.HTTPSAddr, err)
		}
	}
	if s.cfg.ACME != nil {
		// The CA's challenges arrive on the public listeners, so
		// certificate management starts once they are bound.
		if s.acme, err = newACME(&s.cfg, s.httpLn, s.httpsLn, s.holdsName, s.metrics, s.log); err != nil {
			s.closeListeners()
			s.closeAdmin()
			return err
		}
	}
	// Version 1 is offered only to refuse its agents in words they read.
	s.agentTLS = s.serverTLS(tls.VersionTLS13, wire.ALPN, wire.ALPNv1)
	if s.httpLn != nil {
		s.httpSrv = s.newPublicServer()
		s.httpConns = netutil.NewChanListener(s.httpLn.Addr())
		s.loops.Go(func() { s.httpSrv.Serve(s.httpConns) })
		s.loops.Go(func() { s.acceptLoop(s.httpLn, "http", s.acceptPublic(s.routeHTTP)) })
	}
	if s.httpsLn != nil {
		s.httpsSrv = s.newPublicServer()
		var protos http.Protocols
		protos.SetHTTP1(true)
		protos.SetHTTP2(true)
		s.httpsSrv.Protocols = &protos
		s.httpsSrv.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: 250}
		s.httpsSrv.TLSConfig = s.serverTLS(tls.VersionTLS12, "h2", "http/1.1")
		s.publicTLS = s.httpsSrv.TLSConfig
		s.httpsConns = netutil.NewChanListener(s.httpsLn.Addr())
		s.loops.Go(func() { s.httpsSrv.Serve(s.httpsConns) })
		s.loops.Go(func() { s.acceptLoop(s.httpsLn, "https", s.acceptPublic(s.routeTLS)) })
	}
	s.loops.Go(func() { s.acceptLoop(s.agentLn, "agent", s.admitAgent) })
	s.log.Info("relay started", "agents", s.AgentAddr(), "http", s.HTTPAddr(), "https", s.HTTPSAddr(), "admin", s.AdminAddr(),
		"domain", s.cfg.Domain, "tcp_ports", s.cfg.TCPPorts.String(), "fingerprint", s.Fingerprint(), "acme", s.acme != nil)
	if s.cfg.NoAuth {
		s.log.Warn("authentication is off: any agent that can reach the relay's loopback address may open tunnels")
	}
	return nil
}

func (s *Server) newPublicServer() *http.Server {
	return &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    maxRequestHead,
		ConnContext:       connContext,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

// acceptLoop hands each connection ln accepts to handle, until ln is
// closed. A failed Accept, most often "too many open files" while a flood
// holds every descriptor the process may have, is logged and retried after
// a pause that grows from 5 ms to 1 s, as net/http does, so that the
// listener serves again once the flood ends.
func (s *Server) acceptLoop(ln net.Listener, name string, handle func(net.Conn)) {
	var pause time.Duration
	for {
		c, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed; retrying", "listener", name, "err", err, "retry_in", pause)
			time.Sleep(pause)
			continue
		}
		pause = 0
		handle(c)
	}
}

// admitAgent admits an agent connection within the handshake limits; one
// over its address's limit, or from an address that failed to authenticate
// too often, is closed at once, before TLS.
func (s *Server) admitAgent(c net.Conn) {
	if !s.authFails.allowed(c.RemoteAddr()) {
		c.Close()
		return
	}
	p, ok := s.handshakes.admit(c)
	if !ok {
		s.log.Debug("agent connection refused: too many handshakes from its address", "agent", c.RemoteAddr().String())
		c.Close()
		return
	}
	if !s.agents.Go(func() { s.serveAgent(c, p) }) {
		s.handshakes.done(p)
		c.Close()
	}
}

// addSession registers an authenticated session. A live session of the
// same token and agent instance is replaced: it is the same agent, back
// after its link died unnoticed, so its names are released for it at once
// and the old session is told why it ends.
func (s *Server) addSession(sess *session) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	s.sessions[sess] = struct{}{}
	var old *session
	if sess.instance != "" {
		key := instanceKey{sess.owner, sess.instance}
		old = s.byInstance[key]
		s.byInstance[key] = sess
	}
	s.mu.Unlock()
	if old != nil {
		old.log.Info("session replaced by a newer one of the same agent", "by", sess.id)
		old.releaseAll()
		old.fail(wire.Errorf(wire.CodeReplaced, "a newer session of this agent took over"))
	}
	return true
}

func (s *Server) removeSession(sess *session) {
	s.mu.Lock()
	delete(s.sessions, sess)
	if key := (instanceKey{sess.owner, sess.instance}); s.byInstance[key] == sess {
		delete(s.byInstance, key)
	}
	s.mu.Unlock()
	sess.releaseAll()
}

// acceptPublic returns the handler of a public HTTP or HTTPS listener's
// connections, which route runs. Until route reports the connection routed
// to a tunnel, while the relay reads its first request head or ClientHello
// or answers it with its own pages, it counts against its address's
// UnroutedConnsPerIP: one beyond is closed at once. One address cannot
// make the relay hold more than that many connections on its own behalf,
// however many it opens, and so use up its file descriptors.
func (s *Server) acceptPublic(route func(c net.Conn, routed func())) func(net.Conn) {
	return func(c net.Conn) {
		release, ok := s.unrouted.acquire(c.RemoteAddr())
		if !ok {
			s.log.Debug("public connection refused: too many from its address reach no tunnel", "client", c.RemoteAddr().String())
			c.Close()
			return
		}
		s.handlePublic(c, func(c net.Conn) { route(&unroutedConn{Conn: c, release: release}, release) })
	}
}

// unroutedConn gives its address's count back when it is closed, or
// half-closed as servers do before they close.
type unroutedConn struct {
	net.Conn
	release func()
}

func (c *unroutedConn) Close() error {
	c.release()
	return c.Conn.Close()
}

func (c *unroutedConn) CloseWrite() error {
	c.release()
	return netutil.CloseWrite(c.Conn)
}

// handlePublicWith returns a function that handles a public connection
// with serve (see handlePublic).
func (s *Server) handlePublicWith(serve func(net.Conn)) func(net.Conn) {
	return func(c net.Conn) { s.handlePublic(c, serve) }
}

// handlePublic runs serve for a public connection, counted and tracked so
// that Shutdown can wait for it and, after the grace period, close it. A
// connection that stops taking bytes is closed after StallTimeout.
func (s *Server) handlePublic(c net.Conn, serve func(net.Conn)) {
	if s.cfg.StallTimeout > 0 {
		c = netutil.NewStallConn(c, s.cfg.StallTimeout)
	}
	s.mu.Lock()
	s.open[c] = struct{}{}
	s.mu.Unlock()
	ok := s.public.Go(func() {
		defer func() {
			s.mu.Lock()
			delete(s.open, c)
			s.mu.Unlock()
		}()
		serve(c)
	})
	if !ok {
		s.mu.Lock()
		delete(s.open, c)
		s.mu.Unlock()
		c.Close()
	}
}

func (s *Server) closeListeners() {
	for _, l := range []net.Listener{s.agentLn, s.httpLn, s.httpsLn} {
		if l != nil {
			l.Close()
		}
	}
	for _, l := range []*netutil.ChanListener{s.httpConns, s.httpsConns} {
		if l != nil {
			l.Close()
		}
	}
}

// Shutdown stops accepting agents and public connections, lets in-flight
// requests and connections finish until ctx is done, then closes every
// session.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	sessions := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	s.closeListeners()
	s.handshakes.closeAll()
	for _, sess := range sessions {
		sess.closeListeners()
		// Agents finish in-flight requests and close idle connections.
		if ctrl := sess.controlStream(); ctrl != nil {
			wire.WriteMessage(ctrl, &wire.Message{Type: wire.TypeDrain})
		}
	}
	var wg sync.WaitGroup
	for _, srv := range []*http.Server{s.httpSrv, s.httpsSrv} {
		if srv != nil {
			wg.Go(func() {
				if srv.Shutdown(ctx) != nil {
					srv.Close()
				}
			})
		}
	}
	wg.Wait()
	// Public connections end as agents drain them; wait for them, then
	// close the sessions (and with them whatever is left).
	done := make(chan struct{})
	go func() { s.public.Wait(); close(done) }() // ends by the close below at the latest
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = errors.New("relay: shutdown grace period ended with connections open")
	}
	for _, sess := range sessions {
		sess.ys.Close()
	}
	if err != nil {
		s.mu.Lock()
		for c := range s.open {
			c.Close()
		}
		s.mu.Unlock()
		<-done
	}
	s.agents.Wait()
	s.loops.Wait()
	if s.acme != nil {
		s.acme.stop()
	}
	s.closeAdmin()
	return err
}

// Close stops the relay at once.
func (s *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.Shutdown(ctx)
	return nil
}
