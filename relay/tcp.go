package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"porthole/internal/backlog"
	"porthole/internal/httperr"
	"porthole/internal/netutil"
	"porthole/wire"
)

// serveTCP accepts public connections on a TCP binding's port.
func (s *Server) serveTCP(b *binding) {
	s.acceptLoop(b.listener, "tcp:"+strconv.Itoa(b.port), s.handlePublicWith(func(c net.Conn) { s.forwardRaw(b, c) }))
}

// routeTLS routes a connection on the HTTPS listener by the SNI of its
// ClientHello: a TLS tunnel gets the connection untouched; anything else is
// terminated here and served as HTTPS. The ClientHello, the TLS handshake
// and, for HTTP/1, the first request head have ReadHeaderTimeout in all.
func (s *Server) routeTLS(c net.Conn, routed func()) {
	deadline := time.Now().Add(s.cfg.ReadHeaderTimeout)
	hello, consumed, err := netutil.PeekClientHello(c, s.cfg.ReadHeaderTimeout)
	if err != nil {
		c.Close()
		return
	}
	pc := netutil.NewPrefixConn(c, consumed)
	var b *binding
	if name, ok := s.nameFromHost(hello.ServerName); ok {
		b, _ = s.reg.lookup(name)
	}
	if b != nil && b.proto == wire.ProtoTLS {
		routed()
		s.forwardRaw(b, pc)
		return
	}
	if s.acme != nil && isTLSALPNChallenge(hello.Protos) && s.acme.challengePending(hello.ServerName) {
		s.acme.solveTLSALPN(pc)
		return
	}
	if b == nil || b.proto != wire.ProtoHTTP {
		s.httpsConns.Push(tls.Server(pc, s.publicTLS))
		return
	}
	s.routeHTTPS(b, pc, deadline, routed)
}

// routeHTTPS terminates TLS for an HTTP tunnel, then hands the decrypted
// connection (HTTP/1.1 or HTTP/2, as negotiated) to the agent. An HTTP/1
// connection's first request head is read first and gets the checks it
// gets on the HTTP listener, with the same coded answers; the stream to the
// agent opens only then. A connection the tunnel cannot take gets the
// relay's error page.
func (s *Server) routeHTTPS(b *binding, c net.Conn, deadline time.Time, routed func()) {
	rc := &refusedConn{Conn: c} // its reason is set if the tunnel refuses it
	tc := tls.Server(rc, s.publicTLS)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		c.Close()
		return
	}
	var conn net.Conn = tc
	if tc.ConnectionState().NegotiatedProtocol != "h2" {
		tc.SetReadDeadline(deadline)
		_, head, err := readRequestHead(tc, maxRequestHead)
		tc.SetReadDeadline(time.Time{})
		if err != nil {
			answerBadHead(tc, err)
			return
		}
		conn = netutil.NewPrefixConn(tc, head)
	}
	st, err := b.open(c.RemoteAddr(), wire.FlagTLS)
	if err != nil {
		if conn == tc {
			rc.reason = err
			s.httpsConns.Push(tc) // HTTP/2: the relay's server sees it is TLS
		} else {
			s.httpsConns.Push(refused(conn, err))
		}
		return
	}
	routed()
	pipeHTTP(b, conn, st, conn != tc)
}

// forwardRaw carries one public connection to the agent byte for byte.
func (s *Server) forwardRaw(b *binding, c net.Conn) {
	st, err := b.open(c.RemoteAddr(), 0)
	if err != nil {
		b.sess.log.Debug("public connection refused", "client", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	pipe(b, c, st)
}

// pipe carries a public connection and its stream both ways until both
// end.
func pipe(b *binding, public net.Conn, stream *slotStream) {
	stream.OnAbort(func() { public.Close() })
	carry(b, public, stream, netutil.Pipe)
}

// pipeHTTP is pipe for HTTP: when the agent ends the connection, so does
// the relay. A connection that speaks HTTP/1 (h1) and is shed for its
// backlog before the agent's answer began gets the relay's coded answer.
func pipeHTTP(b *binding, public net.Conn, stream *slotStream, h1 bool) {
	if !h1 {
		stream.OnAbort(func() { public.Close() })
		carry(b, public, stream, netutil.PipeServer)
		return
	}
	ac := &answerConn{Conn: public}
	m := b.sess.srv.metrics
	stream.OnAbort(func() {
		if status, code := ac.abort(stream.shedFor.Load()); code != "" {
			m.answered(m.tunnelLabel(b), status, code)
		}
	})
	carry(b, ac, stream, netutil.PipeServer)
}

// carry runs a pipe between a public connection and its stream. A stream
// the relay aborts (its client too far behind; see session.shed) closes
// the public connection, whose writes may be waiting on the client (the
// OnAbort function the caller set does). A client that stalled has its
// stream aborted too, once the pipe ends, so that the agent stops sending
// on it: a close alone would tell the agent only that no more is coming,
// and a TCP upstream could go on sending, and the relay holding it, until
// the stream's HalfClosedTimeout reset it a minute later.
func carry(b *binding, public net.Conn, stream *slotStream, pipe func(a, b io.ReadWriteCloser) error) {
	err := pipe(b.sess.srv.metrics.carried(b, public), stream)
	if errors.Is(err, netutil.ErrStalled) {
		stream.Abort()
	}
	if err != nil {
		b.sess.log.Debug("connection ended", "err", err)
	}
}

// answerConn is a public HTTP/1 connection that the relay may still answer
// itself while the agent's answer has not begun.
type answerConn struct {
	net.Conn
	mu       sync.Mutex
	began    bool // a byte of the agent's answer was written
	answered bool // the relay answers instead; the pipe may no longer write or close
}

func (c *answerConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.answered {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	c.began = c.began || len(p) > 0
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// Close closes the connection, unless the relay is answering on it: then
// the answer closes it once sent.
func (c *answerConn) Close() error {
	c.mu.Lock()
	answered := c.answered
	c.mu.Unlock()
	if answered {
		return nil
	}
	return c.Conn.Close()
}

// abort ends the connection of a stream the relay aborted: with the coded
// answer of the backlog bound the stream was shed to keep, if it was and
// the agent's answer had not begun; closed at once otherwise. It returns
// the answer's status and code, if it sent one.
func (c *answerConn) abort(shedFor *backlog.Reason) (int, httperr.Code) {
	c.mu.Lock()
	answer := shedFor != nil && !c.began && !c.answered
	c.answered = c.answered || answer
	c.mu.Unlock()
	if !answer {
		c.Conn.Close()
		return 0, ""
	}
	status, code, detail := http.StatusTooManyRequests, httperr.ClientBacklog,
		"Your connections left more unread than the relay keeps for one address; read what you asked for before asking for more."
	extra := http.Header{"Retry-After": {retryAfter}}
	if *shedFor == backlog.OverTotal {
		status, code, detail = http.StatusServiceUnavailable, httperr.RelayBacklog,
			"The relay holds all it may for clients that are behind; try again shortly."
	}
	c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	httperr.WriteResponse(c.Conn, status, code, detail, extra)
	lingerClose(c.Conn)
	return status, code
}
