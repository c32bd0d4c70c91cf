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
	"time"

	"github.com/hashicorp/yamux"

	"porthole/wire"
)

// session is one authenticated agent.
type session struct {
	srv   *Server
	id    string
	owner identity
	ys    *yamux.Session
	log   *slog.Logger
	slots chan struct{} // one per open stream, up to StreamsPerSession

	mu       sync.Mutex
	bindings map[uint32]*binding
	ctrl     *yamux.Stream
}

// binding is one tunnel of a session, bound to a public name or port.
type binding struct {
	sess  *session
	id    uint32
	proto wire.Proto
	owner identity
	name  string
	port  int
	urls  []string

	listener net.Listener // tcp
}

// ErrTooManyStreams is returned when a session has StreamsPerSession streams open.
var ErrTooManyStreams = errors.New("relay: too many streams for this agent")

// open starts a stream to the agent for one public connection and writes
// its header.
func (b *binding) open(clientAddr string, flags uint8) (net.Conn, error) {
	s := b.sess
	select {
	case s.slots <- struct{}{}:
	default:
		return nil, ErrTooManyStreams
	}
	st, err := s.ys.OpenStream()
	if err != nil {
		<-s.slots
		return nil, err
	}
	var buf [wire.StreamHeaderMax]byte
	hdr, err := wire.AppendStreamHeader(buf[:0], wire.StreamHeader{Proto: b.proto, Flags: flags, TunnelID: b.id, ClientAddr: clientAddr})
	if err == nil {
		_, err = st.Write(hdr)
	}
	if err != nil {
		st.Close()
		<-s.slots
		return nil, err
	}
	return &slotStream{Stream: st, slots: s.slots}, nil
}

// slotStream gives its session slot back when closed.
type slotStream struct {
	*yamux.Stream
	slots chan struct{}
	once  sync.Once
}

func (s *slotStream) Close() error {
	err := s.Stream.Close()
	s.once.Do(func() { <-s.slots })
	return err
}

// CloseWrite half-closes the stream: yamux's Close sends FIN and keeps reading.
func (s *slotStream) CloseWrite() error { return s.Stream.Close() }

func newSessionID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// serveAgent runs one agent connection from TLS handshake to close.
func (s *Server) serveAgent(raw net.Conn) {
	log := s.log.With("agent", raw.RemoteAddr().String())
	raw.SetDeadline(time.Now().Add(wire.HandshakeTimeout))
	conn := wire.NewSessionConn(raw, s.agentTLS, true)
	if err := conn.Handshake(); err != nil {
		log.Debug("agent TLS handshake failed", "err", err)
		raw.Close()
		return
	}
	ys, err := yamux.Server(conn, wire.YamuxConfig(s.cfg.KeepAliveInterval, slog.NewLogLogger(log.Handler(), slog.LevelDebug)))
	if err != nil {
		conn.Close()
		return
	}
	defer ys.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wire.HandshakeTimeout)
	ctrl, err := ys.AcceptStreamWithContext(ctx)
	cancel()
	if err != nil {
		log.Debug("no control stream", "err", err)
		return
	}
	m, err := wire.ReadMessage(ctrl)
	if err != nil || m.Hello == nil {
		log.Debug("bad hello", "err", err)
		refuse(ctrl, wire.Errorf(wire.CodeBadRequest, "expected hello"))
		return
	}
	if m.Hello.Version != wire.Version {
		refuse(ctrl, wire.Errorf(wire.CodeBadVersion,
			"protocol version %d is not supported (relay speaks %d)", m.Hello.Version, wire.Version))
		return
	}
	who, ok := authenticate(s.cfg.Tokens, m.Hello.Token)
	if !ok {
		log.Warn("authentication failed")
		refuse(ctrl, wire.Errorf(wire.CodeAuthFailed, "authentication failed"))
		return
	}
	sess := &session{
		srv: s, id: newSessionID(), owner: who, ys: ys,
		slots:    make(chan struct{}, s.cfg.StreamsPerSession),
		bindings: map[uint32]*binding{},
		ctrl:     ctrl,
	}
	sess.log = log.With("session", sess.id)
	if err := wire.WriteMessage(ctrl, &wire.Message{Type: wire.TypeWelcome, Welcome: &wire.Welcome{Version: wire.Version, SessionID: sess.id}}); err != nil {
		return
	}
	conn.SetDeadline(time.Time{})
	if !s.addSession(sess) {
		return
	}
	defer s.removeSession(sess)
	sess.log.Info("agent connected")

	// Agents do not open streams of their own; refuse any.
	go func() {
		for {
			st, err := ys.AcceptStream()
			if err != nil {
				return
			}
			st.Close()
		}
	}()
	go func() { <-ys.CloseChan(); ctrl.Close() }()

	for {
		m, err := wire.ReadMessage(ctrl)
		if err != nil {
			sess.log.Info("agent disconnected", "err", err)
			return
		}
		reply := sess.handle(m)
		if reply == nil {
			continue
		}
		if err := wire.WriteMessage(ctrl, reply); err != nil {
			return
		}
	}
}

// refuse sends a session-level error and waits (briefly) for the agent to
// read it and hang up, so that closing the session does not race the reply.
func refuse(ctrl *yamux.Stream, e *wire.Error) {
	if wire.WriteMessage(ctrl, errorMessage(e, 0)) != nil {
		return
	}
	ctrl.Close()
	ctrl.SetReadDeadline(time.Now().Add(2 * time.Second))
	io.Copy(io.Discard, ctrl)
}

func errorMessage(e *wire.Error, tunnel uint32) *wire.Message {
	return &wire.Message{Type: wire.TypeError, Error: e, ErrorFor: tunnel}
}

// handle answers one control message from the agent; unbind has no reply.
func (sess *session) handle(m *wire.Message) *wire.Message {
	if m.Type == wire.TypeUnbind && m.Unbind != nil {
		sess.unbind(m.Unbind.TunnelID)
		return nil
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
		return errorMessage(we, m.Bind.TunnelID)
	}
	sess.log.Info("tunnel bound", "proto", b.proto, "urls", b.urls)
	return &wire.Message{Type: wire.TypeBound, Bound: &wire.Bound{TunnelID: b.id, Name: b.name, URLs: b.urls}}
}

func (sess *session) bind(req wire.Bind) (*binding, error) {
	s := sess.srv
	sess.mu.Lock()
	_, dup := sess.bindings[req.TunnelID]
	sess.mu.Unlock()
	if dup || req.TunnelID == 0 {
		return nil, wire.Errorf(wire.CodeBadRequest, "tunnel id %d is zero or already bound", req.TunnelID)
	}
	if req.Name != "" {
		if err := wire.ValidName(req.Name); err != nil {
			return nil, err
		}
	}
	b := &binding{sess: sess, id: req.TunnelID, proto: req.Proto, owner: sess.owner}
	var taken *binding
	var err error
	switch req.Proto {
	case wire.ProtoHTTP:
		if s.httpLn == nil && s.httpsLn == nil {
			return nil, wire.Errorf(wire.CodeUnsupported, "this relay serves no HTTP")
		}
		if taken, err = s.reg.claimName(req.Name, b); err != nil {
			return nil, err
		}
		if s.httpLn != nil {
			b.urls = append(b.urls, publicURL("http", b.name+"."+s.cfg.Domain, s.httpLn.Addr(), 80))
		}
		if s.httpsLn != nil {
			b.urls = append(b.urls, publicURL("https", b.name+"."+s.cfg.Domain, s.httpsLn.Addr(), 443))
		}
	case wire.ProtoTLS:
		if s.httpsLn == nil {
			return nil, wire.Errorf(wire.CodeUnsupported, "this relay has no TLS listener (start it with --https)")
		}
		if taken, err = s.reg.claimName(req.Name, b); err != nil {
			return nil, err
		}
		b.urls = []string{publicURL("tls", b.name+"."+s.cfg.Domain, s.httpsLn.Addr(), -1)}
	case wire.ProtoTCP:
		if req.Name != "" {
			return nil, wire.Errorf(wire.CodeBadRequest, "tcp tunnels take a port, not a name")
		}
		ln, tk, err := s.reg.claimPort(s.tcpHost, req.RemotePort, s.cfg.TCPPorts, b)
		if err != nil {
			return nil, err
		}
		taken, b.listener = tk, ln
		b.urls = []string{publicURL("tcp", s.cfg.PublicHost, ln.Addr(), -1)}
		go s.serveTCP(b)
	default:
		return nil, wire.Errorf(wire.CodeUnsupported, "tunnel type %v is not supported", req.Proto)
	}
	if taken != nil {
		taken.sess.drop(taken)
	}
	sess.mu.Lock()
	sess.bindings[b.id] = b
	sess.mu.Unlock()
	return b, nil
}

// unbind releases one of the session's tunnels at the agent's request. Its
// name or port stays held for the same token for the grace period, as after
// a disconnect.
func (sess *session) unbind(id uint32) {
	sess.mu.Lock()
	b := sess.bindings[id]
	delete(sess.bindings, id)
	sess.mu.Unlock()
	if b == nil {
		return
	}
	sess.srv.reg.release(b)
	b.close()
	sess.log.Info("tunnel unbound", "name", b.name, "port", b.port)
}

// drop forgets a binding that another session of the same owner took over.
func (sess *session) drop(b *binding) {
	sess.mu.Lock()
	delete(sess.bindings, b.id)
	sess.mu.Unlock()
	b.close()
	sess.log.Info("tunnel taken over by a newer session", "name", b.name, "port", b.port)
}

// releaseAll frees the session's bindings when it ends.
func (sess *session) releaseAll() {
	sess.mu.Lock()
	bs := sess.bindings
	sess.bindings = map[uint32]*binding{}
	sess.mu.Unlock()
	for _, b := range bs {
		sess.srv.reg.release(b)
		b.close()
	}
}

func (b *binding) close() {
	if b.listener != nil {
		b.listener.Close()
	}
}

// publicURL formats scheme://host[:port], leaving out the scheme's default port.
func publicURL(scheme, host string, addr net.Addr, defaultPort int) string {
	port := addr.(*net.TCPAddr).Port
	if port == defaultPort {
		return scheme + "://" + host
	}
	return fmt.Sprintf("%s://%s", scheme, net.JoinHostPort(host, fmt.Sprint(port)))
}
