package relay

import (
	"context"
	"crypto/tls"
	"net"
	"strconv"

	"porthole/internal/netutil"
	"porthole/wire"
)

// serveTCP accepts public connections on a TCP binding's port.
func (s *Server) serveTCP(b *binding) {
	s.acceptLoop(b.listener, "tcp:"+strconv.Itoa(b.port), s.handlePublicWith(func(c net.Conn) { s.forwardRaw(b, c) }))
}

// routeTLS routes a connection on the HTTPS listener by the SNI of its
// ClientHello: a TLS tunnel gets the connection untouched; anything else is
// terminated here and served as HTTPS.
func (s *Server) routeTLS(c net.Conn, routed func()) {
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
	// Terminate TLS here. An HTTP tunnel gets the decrypted connection
	// (HTTP/1.1 or HTTP/2, as negotiated); anything else, or a connection
	// the tunnel cannot take, gets an error page.
	var st net.Conn
	var inner net.Conn = pc
	if b != nil && b.proto == wire.ProtoHTTP {
		if st, err = b.open(c.RemoteAddr(), wire.FlagTLS); err != nil {
			inner = refused(pc, err)
		} else {
			routed()
		}
	}
	tc := tls.Server(inner, s.publicTLS)
	if st == nil {
		s.httpsConns.Push(tc)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ReadHeaderTimeout)
	err = tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		st.Close()
		c.Close()
		return
	}
	pipeHTTP(b, tc, st)
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

func pipe(b *binding, public, stream net.Conn) {
	public = b.sess.srv.metrics.carried(b, public)
	if err := netutil.Pipe(public, stream); err != nil {
		b.sess.log.Debug("connection ended", "err", err)
	}
}

// pipeHTTP is pipe for HTTP: when the agent ends the connection, so does
// the relay.
func pipeHTTP(b *binding, public, stream net.Conn) {
	public = b.sess.srv.metrics.carried(b, public)
	if err := netutil.PipeServer(public, stream); err != nil {
		b.sess.log.Debug("connection ended", "err", err)
	}
}
