// Package linkemu emulates a network path in user space, for benchmarks and
// tests on machines whose kernel has no netem.
//
// A Link has two directions. Each direction serializes the bytes given to it
// at its rate, one chunk after another, delivers every chunk one propagation
// delay after it left, and holds a bounded queue of bytes waiting for the
// wire: while the queue is over its bound the direction stops reading, so
// that senders feel back-pressure as they do on a real path. Every
// connection through a Link shares its two directions, as the flows on one
// path share its bottleneck.
//
// A Proxy carries TCP connections through a Link: it accepts a connection,
// dials its target on loopback, and pumps each direction through the link.
// A new connection pays one round trip before its first byte, as TCP's
// handshake does.
package linkemu

import (
	"fmt"
	"sync"
	"time"
)

// Path is one direction of a link.
type Path struct {
	Delay time.Duration // one-way propagation delay
	Rate  int64         // bits per second; zero means no limit
	Queue int           // bytes that may wait for the wire before the path stops reading
}

func (p Path) String() string {
	if p.Rate == 0 {
		return fmt.Sprintf("%v one way, no rate limit", p.Delay)
	}
	return fmt.Sprintf("%v one way, %s, %d KiB queue", p.Delay, FormatRate(p.Rate), p.Queue>>10)
}

// FormatRate formats bits per second as "1 Gbit/s", "100 Mbit/s" and so on.
func FormatRate(bps int64) string {
	switch {
	case bps >= 1e9 && bps%1e9 == 0:
		return fmt.Sprintf("%d Gbit/s", bps/1e9)
	case bps >= 1e6 && bps%1e6 == 0:
		return fmt.Sprintf("%d Mbit/s", bps/1e6)
	case bps >= 1e3 && bps%1e3 == 0:
		return fmt.Sprintf("%d kbit/s", bps/1e3)
	}
	return fmt.Sprintf("%d bit/s", bps)
}

// serialization returns how long n bytes take on the wire at the path's rate.
func (p Path) serialization(n int) time.Duration {
	if p.Rate <= 0 {
		return 0
	}
	return time.Duration(int64(n) * 8 * int64(time.Second) / p.Rate)
}

// Link is a two-way path. Forward carries bytes from the side that dials
// to the side that is dialed; Back carries the replies.
type Link struct {
	forward, back *direction
}

// New returns a link with the given directions.
func New(forward, back Path) *Link {
	return &Link{forward: &direction{Path: forward}, back: &direction{Path: back}}
}

// Symmetric returns a link whose two directions are alike.
func Symmetric(p Path) *Link { return New(p, p) }

// RTT is the link's round trip without queueing: both delays.
func (l *Link) RTT() time.Duration { return l.forward.Delay + l.back.Delay }

// Forward returns the forward direction's settings.
func (l *Link) Forward() Path { return l.forward.Path }

// Back returns the back direction's settings.
func (l *Link) Back() Path { return l.back.Path }

// direction is the shared state of one direction: when its transmitter is
// free.
type direction struct {
	Path
	mu     sync.Mutex
	freeAt time.Time // when everything given to the wire so far has been sent
}

// send schedules n bytes on the wire at now. It returns when they arrive at
// the far end, and how long the caller must wait before giving the wire
// more, so that the queue stays within its bound.
func (d *direction) send(n int, now time.Time) (arrive time.Time, wait time.Duration) {
	if d.Rate <= 0 {
		return now.Add(d.Delay), 0
	}
	d.mu.Lock()
	start := d.freeAt
	if start.Before(now) {
		start = now
	}
	sent := start.Add(d.serialization(n))
	d.freeAt = sent
	d.mu.Unlock()
	if over := sent.Sub(now) - d.serialization(d.Queue); over > 0 {
		wait = over
	}
	return sent.Add(d.Delay), wait
}

// inFlight is how many bytes one connection may have on the wire and in the
// queue in this direction before the emulator stops reading it: a full
// bandwidth-delay product plus the queue, so that one connection can fill
// the path, and no more, so that a receiver that stops reading pushes back
// on its sender as TCP's receive window would.
func (d *direction) inFlight() int {
	if d.Rate <= 0 {
		return 4 << 20
	}
	bdp := int(d.Rate / 8 * int64(d.Delay) / int64(time.Second))
	return max(bdp+d.Queue, 256<<10)
}
