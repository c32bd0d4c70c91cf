package wire

import (
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"sync"
)

// yamux frame header: version, type, flags (2), stream id (4), length (4).
const (
	yamuxHeaderSize = 12
	yamuxTypeData   = 0
)

// batchConn buffers writes to the raw connection under TLS while a frame is
// being sealed, so that a frame split into several TLS records still leaves
// in one write system call. Writes made outside a batch (alerts, key
// updates, close_notify) go straight through.
type batchConn struct {
	net.Conn
	mu       sync.Mutex
	batching bool
	buf      []byte
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.batching {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *batchConn) begin() {
	c.mu.Lock()
	c.batching = true
	c.mu.Unlock()
}

// end stops batching and writes what was buffered.
func (c *batchConn) end() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batching = false
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	if cap(c.buf) > 256<<10 {
		c.buf = nil // do not keep a burst's buffer around
	} else {
		c.buf = c.buf[:0]
	}
	return err
}

// SessionConn is the connection a yamux session runs on: TLS over TCP,
// where each yamux frame (header and body, which yamux writes separately)
// leaves in one system call instead of one per TLS record. It cuts the
// system calls of a busy tunnel by half or more.
type SessionConn struct {
	*tls.Conn
	raw     *batchConn
	pending [yamuxHeaderSize]byte // a data frame header waiting for its body
	held    bool
}

// NewSessionConn wraps raw in TLS with cfg, as a client or a server.
func NewSessionConn(raw net.Conn, cfg *tls.Config, server bool) *SessionConn {
	cfg = cfg.Clone()
	cfg.DynamicRecordSizingDisabled = true
	bc := &batchConn{Conn: raw}
	var tc *tls.Conn
	if server {
		tc = tls.Server(bc, cfg)
	} else {
		tc = tls.Client(bc, cfg)
	}
	return &SessionConn{Conn: tc, raw: bc}
}

// Write implements io.Writer for yamux's single send loop.
func (c *SessionConn) Write(p []byte) (int, error) {
	if !c.held && len(p) == yamuxHeaderSize && p[1] == yamuxTypeData && binary.BigEndian.Uint32(p[8:]) > 0 {
		// A data header: its body is the next write. Send them together.
		copy(c.pending[:], p)
		c.held = true
		return len(p), nil
	}
	c.raw.begin()
	var err error
	if c.held {
		c.held = false
		_, err = c.Conn.Write(c.pending[:])
	}
	if err == nil {
		_, err = c.Conn.Write(p)
	}
	if ferr := c.raw.end(); err == nil {
		err = ferr
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

var _ io.ReadWriteCloser = (*SessionConn)(nil)
