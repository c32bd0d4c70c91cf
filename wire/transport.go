package wire

import (
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"time"
)

// yamux frame header: version, type, flags (2), stream id (4), length (4).
const (
	yamuxHeaderSize = 12
	yamuxTypeData   = 0
)

// groupConn writes to the raw connection under TLS from one flusher
// goroutine. Writes that arrive while the flusher is in a system call are
// gathered and leave together in the next one: idle, a write goes out at
// once; busy, the frames of many streams share a system call. A writer
// waits when groupMax bytes are pending, so a slow peer still pushes back
// and what is queued ahead of a keepalive ping stays small.
type groupConn struct {
	net.Conn
	mu      sync.Mutex
	cond    *sync.Cond
	pending []byte
	spare   []byte
	writing bool
	err     error
}

const groupMax = 256 << 10

func newGroupConn(c net.Conn) *groupConn {
	g := &groupConn{Conn: c}
	g.cond = sync.NewCond(&g.mu)
	go g.flush()
	return g
}

func (g *groupConn) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for len(g.pending) >= groupMax && g.err == nil {
		g.cond.Wait()
	}
	if g.err != nil {
		return 0, g.err
	}
	g.pending = append(g.pending, p...)
	g.cond.Broadcast()
	return len(p), nil
}

func (g *groupConn) flush() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for {
		for len(g.pending) == 0 && g.err == nil {
			g.cond.Wait()
		}
		if g.err != nil {
			return
		}
		out := g.pending
		g.pending, g.writing = g.spare[:0], true
		g.mu.Unlock()
		_, err := g.Conn.Write(out)
		g.mu.Lock()
		g.writing = false
		if cap(out) <= 2*groupMax {
			g.spare = out[:0]
		} else {
			g.spare = nil
		}
		if err != nil && g.err == nil {
			g.err = err
		}
		g.cond.Broadcast()
	}
}

// drain waits until everything written so far has been handed to the
// network, the connection failed, or timeout passed.
func (g *groupConn) drain(timeout time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	expired := false
	deadline := time.AfterFunc(timeout, func() {
		g.mu.Lock()
		expired = true
		g.cond.Broadcast()
		g.mu.Unlock()
	})
	defer deadline.Stop()
	for (len(g.pending) > 0 || g.writing) && g.err == nil && !expired {
		g.cond.Wait()
	}
}

// Close sends what is pending (for up to a second), then closes.
func (g *groupConn) Close() error {
	g.drain(time.Second)
	g.mu.Lock()
	if g.err == nil {
		g.err = net.ErrClosed
	}
	g.cond.Broadcast()
	g.mu.Unlock()
	return g.Conn.Close()
}

// SessionConn is the connection a yamux session runs on: TLS over TCP,
// written through a groupConn. A yamux frame's header and body (which yamux
// writes separately) are sealed back to back, and busy sessions send many
// frames per system call.
type SessionConn struct {
	*tls.Conn
	group   *groupConn
	pending [yamuxHeaderSize]byte // a data frame header waiting for its body
	held    bool
}

// unsentMax is how much the kernel may hold of the session connection that
// it has not sent yet: enough to keep a fast path busy between two writes.
const unsentMax = 256 << 10

// NewSessionConn wraps raw in TLS with cfg, as a client or a server.
func NewSessionConn(raw net.Conn, cfg *tls.Config, server bool) *SessionConn {
	limitUnsent(raw, unsentMax)
	cfg = cfg.Clone()
	cfg.DynamicRecordSizingDisabled = true
	gc := newGroupConn(raw)
	var tc *tls.Conn
	if server {
		tc = tls.Server(gc, cfg)
	} else {
		tc = tls.Client(gc, cfg)
	}
	return &SessionConn{Conn: tc, group: gc}
}

// Close sends what is still pending (for up to a second), then closes.
// crypto/tls's Close sets a past write deadline on the connection under it
// before closing it, which would cut off what the groupConn still holds:
// the last frames of a session, or a refusal.
func (c *SessionConn) Close() error {
	c.group.drain(time.Second)
	return c.Conn.Close()
}

// Write implements io.Writer for yamux's single send loop.
func (c *SessionConn) Write(p []byte) (int, error) {
	if !c.held && len(p) == yamuxHeaderSize && p[1] == yamuxTypeData && binary.BigEndian.Uint32(p[8:]) > 0 {
		// A data header: its body is the next write. Send them together.
		copy(c.pending[:], p)
		c.held = true
		return len(p), nil
	}
	var err error
	if c.held {
		c.held = false
		_, err = c.Conn.Write(c.pending[:])
	}
	if err == nil {
		_, err = c.Conn.Write(p)
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

var _ io.ReadWriteCloser = (*SessionConn)(nil)
