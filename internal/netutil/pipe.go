// Package netutil holds the small connection helpers the relay and the
// forwarder share: a pooled bidirectional copy and a listener fed by a channel.
package netutil

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/yamux"
)

// Copy buffer sizes. An idle connection waits in Read with a small buffer;
// once reads fill it, the copy borrows a large pooled buffer (fewer system
// calls, fuller TLS records and yamux frames) and gives it back when the
// flow slows down or the source idles for idleAfter. Thousands of idle
// tunneled connections stay cheap, even after they carried a burst.
const (
	smallBuf  = 2 << 10
	bigBuf    = 128 << 10
	idleAfter = time.Second
)

var bigPool = sync.Pool{New: func() any { b := make([]byte, bigBuf); return &b }}

type readDeadliner interface{ SetReadDeadline(time.Time) error }

// Copy copies src to dst until EOF or an error, like io.Copy, but never
// holds a large buffer while the source is idle. When src has a read
// deadline, Copy uses it to notice that the source has gone quiet: callers
// must not set one of their own while a Copy runs.
func Copy(dst io.Writer, src io.Reader) (int64, error) {
	var written int64
	small := make([]byte, smallBuf)
	buf := small
	var big *[]byte
	defer func() {
		if big != nil {
			bigPool.Put(big)
		}
	}()
	dl, _ := src.(readDeadliner)
	for {
		armed := big != nil && dl != nil
		if armed {
			dl.SetReadDeadline(time.Now().Add(idleAfter))
		}
		n, rerr := src.Read(buf)
		if armed {
			dl.SetReadDeadline(time.Time{})
			if isTimeout(rerr) {
				rerr = nil
				if n == 0 {
					// Quiet for idleAfter: wait for more on the small buffer.
					bigPool.Put(big)
					big, buf = nil, small
					continue
				}
			}
		}
		if n > 0 {
			w, werr := dst.Write(buf[:n])
			written += int64(w)
			if werr != nil {
				return written, werr
			}
			if w != n {
				return written, io.ErrShortWrite
			}
		}
		if rerr != nil {
			if rerr == io.EOF {
				return written, nil
			}
			return written, rerr
		}
		switch {
		case big == nil && n == len(small):
			big = bigPool.Get().(*[]byte)
			buf = *big
		case big != nil && n < smallBuf:
			bigPool.Put(big)
			big, buf = nil, small
		}
	}
}

// isTimeout reports whether err is a deadline that passed (os's, or one
// that says so as a net.Error, such as yamux's).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

type closeWriter interface{ CloseWrite() error }

// CloseWrite half-closes c when it supports it, and closes it otherwise.
func CloseWrite(c io.Closer) error {
	if cw, ok := c.(closeWriter); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

// Pipe copies a to b and b to a until both directions end, then closes
// both. A direction that ends cleanly (EOF) half-closes its destination and
// lets the other direction finish; one that fails closes both at once, so
// that neither side waits on a peer that is gone. It returns the first
// error that is not an ordinary close.
func Pipe(a, b io.ReadWriteCloser) error { return pipe(a, b, false) }

// PipeServer is Pipe for a client a and a server b that ends the
// conversation when it closes (as an HTTP server does): when b's side ends,
// a is closed too instead of half-closed.
func PipeServer(a, b io.ReadWriteCloser) error { return pipe(a, b, true) }

func pipe(a, b io.ReadWriteCloser, serverEnds bool) error {
	errc := make(chan error, 2)
	half := func(dst, src io.ReadWriteCloser, ends bool) {
		_, err := Copy(dst, src)
		if err != nil || ends {
			a.Close()
			b.Close()
		} else {
			CloseWrite(dst)
		}
		errc <- err
	}
	go half(b, a, false)
	half(a, b, serverEnds) // on this goroutine: one fewer per connection
	err1, err2 := <-errc, <-errc
	a.Close()
	b.Close()
	for _, err := range []error{err1, err2} {
		if err != nil && !IsClosed(err) {
			return err
		}
	}
	return nil
}

// IsClosed reports whether err only says that a connection or stream was
// closed or reset by either end: EOF, a use of a closed connection, a
// broken pipe or a reset, or yamux's closed stream, reset stream and
// session shutdown. A timeout, a refused dial or any other failure is not.
func IsClosed(err error) bool {
	for _, target := range closedErrors {
		if errors.Is(err, target) {
			return true
		}
	}
	return err == nil
}

var closedErrors = []error{
	io.EOF,
	io.ErrClosedPipe,
	net.ErrClosed,
	syscall.ECONNRESET,
	syscall.ECONNABORTED,
	syscall.EPIPE,
	yamux.ErrStreamClosed,
	yamux.ErrConnectionReset,
	yamux.ErrSessionShutdown,
	yamux.ErrRemoteGoAway,
}
