package relay

import (
	"net"
	"sync"

	"porthole/internal/netutil"
	"porthole/wire"
)

// serveTCP accepts public connections on a TCP binding's port.
func (s *Server) serveTCP(b *binding) {
	for {
		c, err := b.listener.Accept()
		if err != nil {
			return
		}
		s.conns.Add(1)
		go func() {
			defer s.conns.Done()
			s.forwardRaw(b, c)
		}()
	}
}

// acceptTLS takes connections on the HTTPS listener and routes them by SNI:
// a TLS tunnel gets the connection untouched; anything else is terminated
// here and served as HTTPS.
func (s *Server) acceptTLS() {
	for {
		c, err := s.httpsLn.Accept()
		if err != nil {
			return
		}
		s.conns.Add(1)
		go func() {
			defer s.conns.Done()
			s.routeTLS(c)
		}()
	}
}

func (s *Server) routeTLS(c net.Conn) {
	sni, consumed, err := netutil.PeekClientHello(c, wire.HandshakeTimeout)
	if err != nil {
		c.Close()
		return
	}
	pc := netutil.NewPrefixConn(c, consumed)
	if name, ok := s.nameFromHost(sni); ok {
		if b, _ := s.reg.lookup(name); b != nil && b.proto == wire.ProtoTLS {
			s.forwardRaw(b, pc)
			return
		}
	}
	tc := tlsServer(pc, s.publicTLS)
	s.httpsConns.Push(tc)
}

// forwardRaw carries one public connection to the agent byte for byte.
func (s *Server) forwardRaw(b *binding, c net.Conn) {
	st, err := b.open(c.RemoteAddr().String())
	if err != nil {
		b.sess.log.Debug("open stream failed", "err", err)
		c.Close()
		return
	}
	if err := netutil.Pipe(c, st); err != nil {
		b.sess.log.Debug("connection ended", "err", err)
	}
}

// bufferPool lends ReverseProxy its copy buffers.
type bufferPool struct{}

var proxyBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

func (bufferPool) Get() []byte  { return *proxyBufs.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { proxyBufs.Put(&b) }
