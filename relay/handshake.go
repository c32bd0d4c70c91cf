package relay

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"time"

	"porthole/wire"
)

// refuseLinger bounds how long a refused agent connection is kept open for
// the agent to read the refusal and hang up, and refuseDrain how much of
// what it still sends is read (and dropped) meanwhile, so that closing does
// not reset the connection under the refusal.
const (
	refuseLinger = 2 * time.Second
	refuseDrain  = 256 << 10
)

// handshake authenticates one agent connection before any session state
// exists for it: the TLS handshake, the protocol version (by ALPN), then
// the Hello, read on the TLS connection itself within the handshake
// deadline and at most wire.MaxHelloMessage long. Until it returns, the
// connection holds only TLS buffers and the Hello. It answers every
// failure with a coded error the agent can read, and closes the connection.
func (s *Server) handshake(raw net.Conn, log *slog.Logger) (*wire.SessionConn, *wire.Hello, identity, bool) {
	raw.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	conn := wire.NewSessionConn(raw, s.agentTLS, true)
	if err := conn.Handshake(); err != nil {
		log.Debug("agent TLS handshake failed", "err", err)
		s.handshakeFailed(handshakeTLS)
		conn.Close()
		return nil, nil, 0, false
	}
	switch p := conn.ConnectionState().NegotiatedProtocol; p {
	case wire.ALPN:
	case wire.ALPNv1:
		log.Info("agent refused", "code", wire.CodeBadVersion, "alpn", p)
		s.handshakeFailed(string(wire.CodeBadVersion))
		refuseV1(raw, conn, wire.Errorf(wire.CodeBadVersion,
			"this relay speaks protocol version %d; upgrade the agent", wire.Version))
		return nil, nil, 0, false
	default:
		s.refuse(raw, conn, log, wire.Errorf(wire.CodeBadVersion, "offer ALPN %q for protocol version %d", wire.ALPN, wire.Version))
		return nil, nil, 0, false
	}
	hello, err := wire.ReadHello(conn)
	if err != nil {
		if e := helloError(err); e != nil {
			s.refuse(raw, conn, log, e)
		} else {
			log.Debug("agent hung up during its handshake", "err", err)
			s.handshakeFailed(handshakeHungUp)
			conn.Close()
		}
		return nil, nil, 0, false
	}
	var refusal *wire.Error
	who, ok := s.tokens.authenticate(hello.Token)
	switch {
	case hello.Version != wire.Version:
		refusal = wire.Errorf(wire.CodeBadVersion, "protocol version %d is not supported (relay speaks %d)", hello.Version, wire.Version)
	case len(hello.Instance) > wire.MaxInstanceID:
		refusal = wire.Errorf(wire.CodeBadRequest, "instance id longer than %d bytes", wire.MaxInstanceID)
	case !ok:
		refusal = wire.Errorf(wire.CodeAuthFailed, "authentication failed")
	}
	if refusal != nil {
		if refusal.Code == wire.CodeAuthFailed && s.authFails.failed(raw.RemoteAddr()) {
			log.Warn("agent address refused for a while: too many failed authentications")
		}
		s.refuse(raw, conn, log, refusal)
		return nil, nil, 0, false
	}
	return conn, hello, who, true
}

// helloError turns a failure to read the Hello into the refusal to send,
// or nil when the agent simply went away.
func helloError(err error) *wire.Error {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return wire.Errorf(wire.CodeHandshakeTimeout, "no hello within the handshake deadline")
	case errors.Is(err, wire.ErrMessageTooLarge):
		return wire.Errorf(wire.CodeBadRequest, "hello longer than %d bytes", wire.MaxHelloMessage)
	case errors.Is(err, wire.ErrMalformed), errors.Is(err, wire.ErrUnexpectedMessage):
		return wire.Errorf(wire.CodeBadRequest, "expected a hello")
	}
	return nil
}

// refuse sends a coded error on the TLS connection of an agent that has
// not authenticated, then closes it.
func (s *Server) refuse(raw net.Conn, conn *wire.SessionConn, log *slog.Logger, e *wire.Error) {
	s.handshakeFailed(string(e.Code))
	if e.Code == wire.CodeAuthFailed {
		log.Warn("agent refused", "code", e.Code)
	} else {
		log.Info("agent refused", "code", e.Code, "reason", e.Message)
	}
	linger(raw, conn, func() error {
		return wire.WriteMessage(conn, &wire.Message{Type: wire.TypeError, Error: e})
	})
}

// refuseV1 answers an agent of protocol version 1 in its own framing, once
// its first yamux frame (which opens its control stream) has arrived: an
// answer that came before the stream existed would be dropped.
func refuseV1(raw net.Conn, conn *wire.SessionConn, e *wire.Error) {
	if err := wire.ReadV1Open(conn); err != nil {
		conn.Close()
		return
	}
	linger(raw, conn, func() error { return wire.WriteV1Refusal(conn, e) })
}

// linger writes a refusal, gives the agent a moment to read it and hang
// up, then closes the connection. Reading until the agent hangs up, rather
// than closing at once, keeps unread bytes from resetting the connection
// under the refusal.
func linger(raw net.Conn, conn *wire.SessionConn, write func() error) {
	raw.SetDeadline(time.Now().Add(refuseLinger))
	if write() == nil {
		io.CopyN(io.Discard, conn, refuseDrain)
	}
	conn.Close()
}
