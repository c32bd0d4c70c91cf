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
	// yamux would reset a stream a minute after this end closed it,
	// however much the peer still sends on it: a TCP client that
	// half-closes and then downloads for longer would be cut. Stream
	// resets a closed stream only once it goes quiet (HalfClosedTimeout).
	c.StreamCloseTimeout = 0
	c.LogOutput = nil
	c.Logger = logger
	return c
}

// ShrinkAfter is how long a stream goes without a read before it gives
// back its receive buffer.
const ShrinkAfter = time.Second

// HalfClosedTimeout is how long a stream that this end has closed may go
// without receiving a byte before it is reset: yamux keeps a stream until
// both ends have closed it, and a peer that never closes its side would
// keep it for ever. A stream the peer still sends on, and whose reader
// reads, stays open as long as that goes on.
var HalfClosedTimeout = time.Minute

// abortDrain is how long an aborted stream goes on reading, and dropping,
// what the peer sent before it learned of the reset.
const abortDrain = 2 * time.Second

// Stream is a yamux stream that gives back its receive buffer once idle,
// and, opened through a Ledger, counts what it holds and can be aborted.
// yamux keeps a stream's buffer at the largest size it ever reached, so a
// kept-alive connection that once received a burst of a window would hold
// the whole window while it idles.
type Stream struct {
	*yamux.Stream
	ledger *Ledger
	acct   *account // nil without a ledger

	mu      sync.Mutex
	shrink  *time.Timer
	quiet   *time.Timer // after this end closed the stream: HalfClosedTimeout without a byte
	ended   bool        // a read failed: the peer closed or reset the stream
	aborted bool
	onAbort []func()
}

// NewStream wraps st, uncounted.
func NewStream(st *yamux.Stream) *Stream { return &Stream{Stream: st} }

// Stream wraps st, a stream of the ledger's session, counted.
func (l *Ledger) Stream(st *yamux.Stream) *Stream {
	return &Stream{Stream: st, ledger: l, acct: l.stream(st.StreamID())}
}

// Attach makes h the holder of what the stream holds (see Holder): told at
// once what it holds already, then of every change. A stream opened
// without a ledger releases h at once.
func (s *Stream) Attach(h Holder) {
	if s.acct == nil {
		h.Release()
		return
	}
	s.acct.attach(h)
}

// Read reads from the stream. Each read (re)arms a timer that frees the
// buffer, if it is empty by then, when no read comes within ShrinkAfter;
// yamux allocates a new one, the size of the next frame, when data arrives.
func (s *Stream) Read(p []byte) (int, error) {
	n, err := s.Stream.Read(p)
	if n > 0 {
		if s.acct != nil {
			s.acct.took(n)
		}
		s.mu.Lock()
		if s.shrink == nil {
			s.shrink = time.AfterFunc(ShrinkAfter, s.Stream.Shrink)
		} else {
			s.shrink.Reset(ShrinkAfter)
		}
		if s.quiet != nil {
			s.quiet.Reset(HalfClosedTimeout)
		}
		s.mu.Unlock()
	}
	if err != nil {
		s.mu.Lock()
		s.ended = true
		if s.quiet != nil {
			s.quiet.Stop()
		}
		s.mu.Unlock()
	}
	return n, err
}

// CloseWrite closes the stream for writing, and goes on reading: yamux's
// Close is a half-close (FIN).
func (s *Stream) CloseWrite() error {
	err := s.Stream.Close()
	s.closedHere()
	return err
}

// closedHere arms the reset of a stream this end has closed, for when it
// goes HalfClosedTimeout without receiving a byte; each byte read puts it
// off. A stream whose peer closed or reset it needs none: yamux lets go of
// it.
func (s *Stream) closedHere() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.quiet == nil && !s.ended && !s.aborted {
		s.quiet = time.AfterFunc(HalfClosedTimeout, s.Abort)
	}
}

// Close closes the stream for writing and lets go of it: what it still
// holds is no one's to read, and is freed with it once yamux lets go too.
// It stops the buffer timer until the next read.
func (s *Stream) Close() error {
	s.mu.Lock()
	if s.shrink != nil {
		s.shrink.Stop()
	}
	s.mu.Unlock()
	if s.acct != nil {
		s.acct.letGo()
	}
	err := s.Stream.Close()
	s.closedHere()
	return err
}

// OnAbort has f called when the stream is aborted (at once, if it was):
// to close what the stream's data was on its way to, whose writes would
// otherwise go on waiting.
func (s *Stream) OnAbort(f func()) {
	s.mu.Lock()
	aborted := s.aborted
	if !aborted {
		s.onAbort = append(s.onAbort, f)
	}
	s.mu.Unlock()
	if aborted {
		f()
	}
}

// Aborted reports whether the stream was aborted.
func (s *Stream) Aborted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.aborted
}

// Abort ends the stream both ways at once and frees what it holds: it
// calls the OnAbort functions, resets the stream at the peer (which stops
// sending on it; a close would only say that this end has nothing more to
// send), closes it here, wakes a reader waiting on it, reads and drops
// what it holds and what the peer sent before the reset reached it, and
// then resets it here too, so that yamux lets go of it. It
// returns once nothing more has come for abortDrain. A stream opened
// without a ledger is only closed, and drained the same way.
func (s *Stream) Abort() {
	s.mu.Lock()
	if s.aborted {
		s.mu.Unlock()
		return
	}
	s.aborted = true
	fs := s.onAbort
	s.onAbort = nil
	if s.quiet != nil {
		s.quiet.Stop()
	}
	s.mu.Unlock()
	for _, f := range fs {
		f()
	}
	if s.ledger != nil {
		s.ledger.reset(s.StreamID())
	}
	s.Stream.Close()
	s.Stream.SetReadDeadline(time.Unix(1, 0))
	buf := make([]byte, 32<<10)
	for {
		s.Stream.SetReadDeadline(time.Now().Add(abortDrain))
		_, err := s.Read(buf)
		s.Stream.Shrink() // once empty, the buffer goes at once
		if err != nil {
			break
		}
	}
	if s.ledger != nil {
		s.ledger.resetHere(s.StreamID())
	}
	s.Close()
}
