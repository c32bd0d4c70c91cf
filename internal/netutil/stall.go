package netutil

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// ErrStalled is returned by a StallConn's Write when the peer has accepted
// no bytes for the stall timeout. The connection is closed by then.
var ErrStalled = errors.New("peer accepted no bytes within the stall timeout")

// StallConn is a connection whose writes give up on a peer that has stopped
// reading. A Write that makes no progress for the stall timeout closes the
// connection and returns ErrStalled; one that makes progress, however slow,
// goes on.
//
// Progress is any byte the kernel takes from the Write or, where the
// platform tells (Linux), any byte the peer acknowledges: a peer that reads
// a little at a time frees room in the send buffer only in large steps,
// long after it has started reading again. The peer's kernel reopens its
// receive window in steps too (at least one segment, and at least a
// sixteenth of its receive buffer), and while the window is shut the
// sender may learn that it reopened only from its window probes, which
// back off. So a reader is seen to progress only if it takes such a step,
// and its kernel tells, within the stall timeout: at 1 KiB/s, a client with
// a 128 KiB buffer across a network shows progress every 8 s or so, well
// within the relay's default of a minute.
type StallConn struct {
	net.Conn
	timeout time.Duration
	poll    time.Duration
	acked   func() (uint64, bool)

	mu       sync.Mutex
	deadline time.Time // the caller's own write deadline
}

// NewStallConn returns c with stalled writes closed after timeout.
func NewStallConn(c net.Conn, timeout time.Duration) *StallConn {
	return &StallConn{Conn: c, timeout: timeout, poll: min(timeout/4, 5*time.Second), acked: ackedBytes(c)}
}

// Write writes p, giving up with ErrStalled when the peer takes nothing
// for the stall timeout.
func (c *StallConn) Write(p []byte) (int, error) {
	written := 0
	progress := time.Now()
	acked, _ := c.acked()
	for {
		c.mu.Lock()
		mine := c.deadline
		c.mu.Unlock()
		next := time.Now().Add(c.poll)
		if !mine.IsZero() && mine.Before(next) {
			next = mine
		}
		c.Conn.SetWriteDeadline(next)
		n, err := c.Conn.Write(p[written:])
		written += n
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return written, err
		}
		now := time.Now()
		if !mine.IsZero() && !now.Before(mine) {
			return written, err // the caller's deadline, not a stall
		}
		if a, ok := c.acked(); n > 0 || ok && a != acked {
			progress, acked = now, a
		}
		if now.Sub(progress) >= c.timeout {
			c.Conn.Close()
			return written, ErrStalled
		}
	}
}

// SetWriteDeadline sets the deadline for writes, as net.Conn does.
func (c *StallConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

// SetDeadline sets the read and write deadlines, as net.Conn does.
func (c *StallConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

// CloseWrite half-closes the connection when it supports it.
func (c *StallConn) CloseWrite() error { return CloseWrite(c.Conn) }

func noAcks() (uint64, bool) { return 0, false }
