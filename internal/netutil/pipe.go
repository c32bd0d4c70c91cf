// Package netutil holds the small connection helpers the relay and the
// forwarder share: a pooled bidirectional copy and a listener fed by a channel.
package netutil

import (
	"errors"
	"io"
	"net"
	"sync"
)

// bufSize is the copy buffer size: large enough to fill a TLS record and a
// yamux frame, small enough that thousands of idle pipes stay cheap (buffers
// are only held while data moves).
const bufSize = 32 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// Copy copies src to dst with a pooled buffer.
func Copy(dst io.Writer, src io.Reader) (int64, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	return io.CopyBuffer(dst, src, *bp)
}

type closeWriter interface{ CloseWrite() error }

// CloseWrite half-closes c when it supports it, and closes it otherwise.
func CloseWrite(c io.Closer) error {
	if cw, ok := c.(closeWriter); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

// Pipe copies a to b and b to a until both directions end, half-closing each
// side as its peer finishes, then closes both. It returns the first copy error
// that is not an ordinary close.
func Pipe(a, b io.ReadWriteCloser) error {
	errc := make(chan error, 1)
	go func() {
		_, err := Copy(b, a)
		CloseWrite(b)
		errc <- err
	}()
	_, err1 := Copy(a, b)
	CloseWrite(a)
	err2 := <-errc
	a.Close()
	b.Close()
	for _, err := range []error{err1, err2} {
		if err != nil && !IsClosed(err) {
			return err
		}
	}
	return nil
}

// IsClosed reports whether err only says that a connection was closed.
func IsClosed(err error) bool {
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrClosedPipe) {
		return true
	}
	var ne *net.OpError
	if errors.As(err, &ne) {
		return true
	}
	s := err.Error()
	return s == "stream closed" || s == "session shutdown" || s == "stream reset" || s == "connection reset by peer"
}
