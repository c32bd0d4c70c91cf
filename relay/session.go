package relay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"

	"porthole/internal/backlog"
	"porthole/internal/group"
	"porthole/internal/netutil"
	"porthole/wire"
)

// session is one authenticated agent.
type session struct {
	srv      *Server
	id       string
	owner    identity
	instance string // the agent's instance id; "" never matches another
	ys       *yamux.Session
	ledger   *wire.Ledger // what yamux holds of each stream
	log      *slog.Logger
	slots    chan struct{} // one per open stream, up to StreamsPerSession
	tasks    group.Group   // goroutines the session started; joined when it ends

	mu       sync.Mutex
	ctrl     *yamux.Stream // once the agent opened it
	bindings map[uint32]*binding
	ports    int         // TCP bindings among them
	ended    bool        // released: binds are refused
	failure  *wire.Error // why the session is being ended, once it is
}

// binding is one tunnel of a session, bound to a public name or port.
type binding struct {
	sess    *session
	id      uint32
	proto   wire.Proto
	owner   identity
	name    string
	port    int
	urls    []string
	clients *clientConns // public connections per client address
	access  accessRules  // which clients may connect

	listener net.Listener // tcp
}

// Errors of binding.open.
var (
	// ErrTooManyStreams is returned when a session has StreamsPerSession streams open.
	ErrTooManyStreams = errors.New("relay: too many streams for this agent")
	// ErrClientLimit is returned when one client address has
	// ClientConnsPerTunnel connections open to the tunnel.
	ErrClientLimit = errors.New("relay: too many connections from this client")
)

// open starts a stream to the agent for one public connection from client
// and writes its header. What the stream holds is charged to the client's
// share of the relay's backlog.
func (b *binding) open(client net.Addr, flags uint8) (*slotStream, error) {
	s := b.sess
	if !b.access.allows(client) {
		s.srv.metrics.refusedClient(b, refusedCIDR)
		return nil, ErrIPDenied
	}
	release, ok := b.clients.acquire(client)
	if !ok {
		return nil, ErrClientLimit
	}
	select {
	case s.slots <- struct{}{}:
	default:
		release()
		return nil, ErrTooManyStreams
	}
	done := func() { <-s.slots; release() }
	st, err := s.ys.OpenStream()
	if err != nil {
		done()
		return nil, err
	}
	ss := &slotStream{Stream: s.ledger.Stream(st), ys: s.ys, done: done}
	if budget := s.srv.backlog; budget != nil {
		ss.Attach(budget.Open(netutil.ClientKey(client.String()), func(r backlog.Reason) { s.shed(ss, client, r) }))
	}
	var buf [wire.StreamHeaderMax]byte
	hdr, err := wire.AppendStreamHeader(buf[:0], wire.StreamHeader{Proto: b.proto, Flags: flags, TunnelID: b.id, ClientAddr: client.String()})
	if err == nil {
		_, err = ss.Write(hdr)
	}
	if err != nil {
		ss.Close()
		return nil, err
	}
	return ss, nil
}

// shed aborts a stream the backlog budget sheds: the public connection is
// answered or closed (see carry), the agent told to stop sending, and what
// the stream holds freed.
func (s *session) shed(st *slotStream, client net.Addr, r backlog.Reason) {
	s.tasks.Go(func() {
		s.srv.shedLog.Shed(client.String(), r)
		st.shedFor.Store(&r)
		st.Abort()
	})
}

// slotStream gives its session slot and client count back when closed.
type slotStream struct {
	*wire.Stream
	ys   *yamux.Session
	done func()
	once sync.Once

	// shedFor is the bound the backlog budget shed the stream to keep;
	// nil unless it did. It is set before the stream is aborted, for the
	// OnAbort functions to read.
	shedFor atomic.Pointer[backlog.Reason]
}

// Read reports the end of the session as such: yamux ends every stream of
// a closed session with io.EOF, which would read as the agent's clean
// half-close and leave the public connection open.
func (s *slotStream) Read(p []byte) (int, error) {
	n, err := s.Stream.Read(p)
	if err == io.EOF && s.ys.IsClosed() {
		err = yamux.ErrSessionShutdown
	}
	return n, err
}

func (s *slotStream) Close() error {
	err := s.Stream.Close()
	s.once.Do(s.done)
	return err
}

// CloseWrite half-closes the stream: yamux's Close sends FIN and keeps reading.
func (s *slotStream) CloseWrite() error { return s.Stream.CloseWrite() }

func newSessionID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// serveAgent runs one agent connection from TLS handshake to close. p is
// its place among the connections still in their handshake.
func (s *Server) serveAgent(raw net.Conn, p *pending) {
	log := s.log.With("agent", raw.RemoteAddr().String())
	conn, hello, who, ok := s.handshake(raw, log)
	if !ok {
		s.handshakes.done(p)
		return
	}
	sess := &session{
		srv: s, id: newSessionID(), owner: who, instance: hello.Instance,
		slots:    make(chan struct{}, s.cfg.StreamsPerSession),
		bindings: map[uint32]*binding{},
	}
	sess.log = log.With("session", sess.id)
	welcome := &wire.Welcome{Version: wire.Version, SessionID: sess.id, MaxStreams: s.cfg.StreamsPerSession}
	err := wire.WriteMessage(conn, &wire.Message{Type: wire.TypeWelcome, Welcome: welcome})
	s.handshakes.done(p)
	if err != nil {
		conn.Close()
		return
	}
	// Only now does yamux start, behind the guard: the agent may open one
	// stream, its control stream, and ask for pings at a bounded rate. No
	// other stream reaches yamux, so its accept backlog keeps the wire's
	// default; yamux sizes by it, too, how many streams the relay may open
	// that the agent has not acknowledged yet, and public connections that
	// arrive together start together, not a round trip apart.
	ycfg := wire.YamuxConfig(s.cfg.KeepAliveInterval, s.cfg.StreamWindow, slog.NewLogLogger(sess.log.Handler(), slog.LevelDebug))
	sess.ledger = wire.NewLedger(wire.GuardAgent(conn, sess.fail))
	if sess.ys, err = yamux.Server(sess.ledger, ycfg); err != nil {
		conn.Close()
		return
	}
	if !s.addSession(sess) {
		sess.ys.Close()
		return
	}
	// The names go first, so that an agent that sees its session end may
	// bind them again at once; then every goroutine of the session ends.
	defer func() {
		s.removeSession(sess)
		sess.ys.Close()
		sess.tasks.Wait()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.HandshakeTimeout)
	ctrl, err := sess.ys.AcceptStreamWithContext(ctx)
	cancel()
	if err != nil {
		sess.log.Info("agent opened no control stream", "err", err)
		return
	}
	sess.mu.Lock()
	sess.ctrl = ctrl
	failure := sess.failure // replaced, or broke a rule, before it began
	sess.mu.Unlock()
	raw.SetDeadline(time.Time{})
	if failure == nil {
		sess.log.Info("agent connected", "instance", sess.instance)
		err = sess.control()
	} else {
		err = failure
	}
	var we *wire.Error
	if errors.As(err, &we) {
		sess.log.Warn("session ended by the relay", "code", we.Code, "reason", we.Message)
		sess.tell(we)
		return
	}
	sess.log.Info("agent disconnected", "err", err)
}

// control reads the agent's control messages and answers each, until the
// agent hangs up or breaks a rule; a broken rule comes back as a
// *wire.Error to send before the session ends.
func (sess *session) control() error {
	cfg := &sess.srv.cfg
	rate := newBucket(cfg.ControlRate, max(cfg.ControlRate, float64(cfg.MaxTunnels+1)))
	for {
		m, err := wire.ReadMessage(sess.ctrl)
		if f := sess.failed(); f != nil {
			return f
		}
		switch {
		case errors.Is(err, wire.ErrMessageTooLarge):
			return wire.Errorf(wire.CodeBadRequest, "control message longer than %d bytes", wire.MaxControlMessage)
		case errors.Is(err, wire.ErrMalformed):
			return wire.Errorf(wire.CodeBadRequest, "malformed control message")
		case err != nil:
			return err
		}
		if !rate.take() {
			return wire.Errorf(wire.CodeRateLimited, "more than %v control messages a second", cfg.ControlRate)
		}
		reply := sess.handle(m)
		if reply == nil {
			continue
		}
		if err := wire.WriteMessage(sess.ctrl, reply); err != nil {
			return err
		}
	}
}

// fail ends the session with e, from any goroutine: the control loop stops
// reading and tells the agent.
func (sess *session) fail(e *wire.Error) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.failure == nil {
		sess.failure = e
	}
	if sess.ctrl != nil {
		sess.ctrl.SetReadDeadline(time.Unix(1, 0))
	}
}

// controlStream returns the control stream, or nil before the agent opened it.
func (sess *session) controlStream() *yamux.Stream {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.ctrl
}

func (sess *session) failed() *wire.Error {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.failure
}

// tell sends the agent the error that ends its session and waits, briefly,
// for it to hang up, so that closing does not race the message.
func (sess *session) tell(e *wire.Error) {
	sess.ctrl.SetWriteDeadline(time.Now().Add(refuseLinger))
	if wire.WriteMessage(sess.ctrl, errorMessage(e, 0)) != nil {
		return
	}
	sess.ctrl.Close()
	select {
	case <-sess.ys.CloseChan():
	case <-time.After(refuseLinger):
	}
}

func errorMessage(e *wire.Error, tunnel uint32) *wire.Message {
	return &wire.Message{Type: wire.TypeError, Error: e, ErrorFor: tunnel}
}

// handle answers one control message from the agent.
func (sess *session) handle(m *wire.Message) *wire.Message {
	if m.Type == wire.TypeUnbind && m.Unbind != nil {
		sess.unbind(m.Unbind.TunnelID)
		return &wire.Message{Type: wire.TypeUnbound, Unbound: &wire.Unbind{TunnelID: m.Unbind.TunnelID}}
	}
	if m.Type != wire.TypeBind || m.Bind == nil {
		return errorMessage(wire.Errorf(wire.CodeBadRequest, "unexpected %q message", m.Type), 0)
	}
	b, err := sess.bind(*m.Bind)
	if err != nil {
		var we *wire.Error
		if !errors.As(err, &we) {
			we = wire.Errorf(wire.CodeInternal, "%v", err)
		}
		sess.log.Warn("bind refused", "bind", m.Bind.String(), "code", we.Code)
		sess.srv.metrics.binds.WithLabelValues(string(we.Code)).Inc()
		return errorMessage(we, m.Bind.TunnelID)
	}
	sess.log.Info("tunnel bound", "proto", b.proto, "urls", b.urls)
	return &wire.Message{Type: wire.TypeBound, Bound: &wire.Bound{TunnelID: b.id, Name: b.name, URLs: b.urls, Rules: b.access.rules()}}
}

func (sess *session) bind(req wire.Bind) (*binding, error) {
	s := sess.srv
	if err := sess.admitBind(req); err != nil {
		return nil, err
	}
	name, err := s.requestedName(req, sess.owner)
	if err != nil {
		return nil, err
	}
	b := &binding{sess: sess, id: req.TunnelID, proto: req.Proto, owner: sess.owner, clients: newClientConns(s.cfg.ClientConnsPerTunnel)}
	if b.access, err = parseAccess(req); err != nil {
		return nil, err
	}
	switch req.Proto {
	case wire.ProtoHTTP:
		if s.httpLn == nil && s.httpsLn == nil {
			return nil, wire.Errorf(wire.CodeUnsupported, "this relay serves no HTTP")
		}
		if err := s.reg.claimName(name, b); err != nil {
			return nil, err
		}
		if s.httpLn != nil {
			b.urls = append(b.urls, publicURL("http", s.hostOf(b.name), s.httpLn.Addr(), 80))
		}
		if s.httpsLn != nil {
			b.urls = append(b.urls, publicURL("https", s.hostOf(b.name), s.httpsLn.Addr(), 443))
		}
	case wire.ProtoTLS:
		if s.httpsLn == nil {
			return nil, wire.Errorf(wire.CodeUnsupported, "this relay has no HTTPS listener for TLS tunnels")
		}
		if err := s.reg.claimName(name, b); err != nil {
			return nil, err
		}
		b.urls = []string{publicURL("tls", s.hostOf(b.name), s.httpsLn.Addr(), -1)}
	case wire.ProtoTCP:
		if name != "" {
			return nil, wire.Errorf(wire.CodeBadRequest, "tcp tunnels take a port, not a name")
		}
		ln, err := s.reg.claimPort(s.tcpHost, req.RemotePort, s.cfg.TCPPorts, b)
		if err != nil {
			return nil, err
		}
		b.listener = ln
		b.urls = []string{publicURL("tcp", s.cfg.PublicHost, ln.Addr(), -1)}
	default:
		return nil, wire.Errorf(wire.CodeUnsupported, "tunnel type %v is not supported", req.Proto)
	}
	sess.mu.Lock()
	ended := sess.ended
	if !ended {
		sess.bindings[b.id] = b
		if b.listener != nil {
			sess.ports++
		}
	}
	sess.mu.Unlock()
	if ended || b.listener != nil && !sess.tasks.Go(func() { s.serveTCP(b) }) {
		s.reg.release(b)
		b.close()
		return nil, wire.Errorf(wire.CodeInternal, "the session is ending")
	}
	return b, nil
}

// admitBind checks a bind against the session's limits before anything is claimed.
func (sess *session) admitBind(req wire.Bind) error {
	cfg := &sess.srv.cfg
	sess.mu.Lock()
	defer sess.mu.Unlock()
	_, dup := sess.bindings[req.TunnelID]
	switch {
	case dup || req.TunnelID == 0:
		return wire.Errorf(wire.CodeBadRequest, "tunnel id %d is zero or already bound", req.TunnelID)
	case len(sess.bindings) >= cfg.MaxTunnels:
		return wire.Errorf(wire.CodeTunnelLimit, "a session may bind %d tunnels", cfg.MaxTunnels)
	case req.Proto == wire.ProtoTCP && sess.ports >= cfg.MaxTCPPorts:
		return wire.Errorf(wire.CodePortLimit, "a session may hold %d TCP ports", cfg.MaxTCPPorts)
	}
	return nil
}

// unbind releases one of the session's tunnels at the agent's request. Its
// name or port stays held for the same token for the grace period, as after
// a disconnect.
func (sess *session) unbind(id uint32) {
	sess.mu.Lock()
	b := sess.bindings[id]
	delete(sess.bindings, id)
	if b != nil && b.listener != nil {
		sess.ports--
	}
	sess.mu.Unlock()
	if b == nil {
		return
	}
	sess.srv.reg.release(b)
	b.close()
	sess.log.Info("tunnel unbound", "name", b.name, "port", b.port)
}

// releaseAll frees the session's bindings, once, and refuses binds from
// then on. It does not wait for the session to end.
func (sess *session) releaseAll() {
	sess.mu.Lock()
	bs := sess.bindings
	sess.bindings = map[uint32]*binding{}
	sess.ended = true
	sess.mu.Unlock()
	for _, b := range bs {
		sess.srv.reg.release(b)
		b.close()
	}
}

func (sess *session) closeListeners() {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	for _, b := range sess.bindings {
		b.close()
	}
}

func (b *binding) close() {
	if b.listener != nil {
		b.listener.Close()
	}
	b.sess.srv.metrics.released(b)
}

// publicURL formats scheme://host[:port], leaving out the scheme's default port.
func publicURL(scheme, host string, addr net.Addr, defaultPort int) string {
	port := addr.(*net.TCPAddr).Port
	if port == defaultPort {
		return scheme + "://" + host
	}
	return fmt.Sprintf("%s://%s", scheme, net.JoinHostPort(host, fmt.Sprint(port)))
}
