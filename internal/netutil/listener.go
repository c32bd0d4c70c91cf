package netutil

import (
	"net"
	"sync"
)

// ChanListener is a net.Listener whose connections are handed to it with
// Push. It lets an http.Server serve connections that arrive some other way,
// such as yamux streams or TLS connections routed by SNI.
type ChanListener struct {
	addr   net.Addr
	conns  chan net.Conn
	done   chan struct{}
	closer sync.Once
}

// NewChanListener returns a listener that reports addr as its address.
func NewChanListener(addr net.Addr) *ChanListener {
	return &ChanListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// Push hands c to the listener's Accept. It closes c and returns false if
// the listener is closed.
func (l *ChanListener) Push(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		c.Close()
		return false
	}
}

// Accept implements net.Listener.
func (l *ChanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener.
func (l *ChanListener) Close() error {
	l.closer.Do(func() { close(l.done) })
	return nil
}

// Addr implements net.Listener.
func (l *ChanListener) Addr() net.Addr { return l.addr }

// PrefixConn is a net.Conn whose first reads return bytes already read from
// it (for example while peeking at a TLS ClientHello).
type PrefixConn struct {
	net.Conn
	prefix []byte
}

// NewPrefixConn returns c with prefix replayed before its remaining bytes.
func NewPrefixConn(c net.Conn, prefix []byte) *PrefixConn {
	return &PrefixConn{Conn: c, prefix: prefix}
}

func (c *PrefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite half-closes the underlying connection when it supports it.
func (c *PrefixConn) CloseWrite() error { return CloseWrite(c.Conn) }
