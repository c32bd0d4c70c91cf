package wire

import (
	"fmt"
	"log"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"porthole/internal/bytesize"
)

// Stream receive windows. Each end of a session grants its own window on
// every stream: it is how many bytes the peer may send on the stream before
// the receiving end has passed them on. One stream moves at most one
// window per round trip between agent and relay, so the window caps a
// stream at window ÷ RTT (16 MiB at 50 ms: about 2.7 Gbit/s). yamux
// acknowledges a window once half of it has been read, so a stream fills a
// path when its window is about twice the path's bandwidth-delay product.
//
// What the window costs: a stream whose receiver stops reading holds up to
// one window in the receiving process. The relay receives downloads for
// public clients, who may be slow or stall; the agent receives uploads for
// its local upstream, which drains fast.
const (
	// DefaultDownloadWindow is the window the relay grants on each stream.
	DefaultDownloadWindow = 16 << 20
	// DefaultUploadWindow is the window the agent grants on each stream.
	DefaultUploadWindow = 16 << 20
	// MinStreamWindow is yamux's initial window, the smallest it accepts.
	MinStreamWindow = 256 << 10
	// MaxStreamWindow is the largest window either end accepts.
	MaxStreamWindow = 1 << 30
)

// CheckStreamWindow returns an error for a window outside
// [MinStreamWindow, MaxStreamWindow].
func CheckStreamWindow(n int64) error {
	if n < MinStreamWindow || n > MaxStreamWindow {
		return fmt.Errorf("stream window %s is out of range: want 256KiB to 1GiB", bytesize.Format(n))
	}
	return nil
}

// YamuxConfig returns the session settings: keepalive pings every
// keepAlive, and window as this end's receive window on every stream
// (checked by CheckStreamWindow).
func YamuxConfig(keepAlive time.Duration, window int64, logger *log.Logger) *yamux.Config {
	c := yamux.DefaultConfig()
	c.AcceptBacklog = 1024
	c.EnableKeepAlive = true
	c.KeepAliveInterval = keepAlive
	c.ConnectionWriteTimeout = keepAlive
	c.MaxStreamWindowSize = uint32(window)
	c.StreamOpenTimeout = 30 * time.Second
	c.StreamCloseTimeout = time.Minute
	c.LogOutput = nil
	c.Logger = logger
	return c
}

// ShrinkAfter is how long a stream goes without a read before it gives
// back its receive buffer.
const ShrinkAfter = time.Second

// Stream is a yamux stream that gives back its receive buffer once idle.
// yamux keeps a stream's buffer at the largest size it ever reached, so a
// kept-alive connection that once received a burst of a window would hold
// the whole window while it idles.
type Stream struct {
	*yamux.Stream
	mu     sync.Mutex
	shrink *time.Timer
}

// NewStream wraps st.
func NewStream(st *yamux.Stream) *Stream { return &Stream{Stream: st} }

// Read reads from the stream. Each read (re)arms a timer that frees the
// buffer, if it is empty by then, when no read comes within ShrinkAfter;
// yamux allocates a new one, the size of the next frame, when data arrives.
func (s *Stream) Read(p []byte) (int, error) {
	n, err := s.Stream.Read(p)
	if n > 0 {
		s.mu.Lock()
		if s.shrink == nil {
			s.shrink = time.AfterFunc(ShrinkAfter, s.Stream.Shrink)
		} else {
			s.shrink.Reset(ShrinkAfter)
		}
		s.mu.Unlock()
	}
	return n, err
}

// Close closes the stream for writing (yamux's Close is a half-close: the
// peer's data may still be read) and stops the timer until the next read.
func (s *Stream) Close() error {
	s.mu.Lock()
	if s.shrink != nil {
		s.shrink.Stop()
	}
	s.mu.Unlock()
	return s.Stream.Close()
}
