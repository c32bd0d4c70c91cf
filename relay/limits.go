package relay

import (
	"container/list"
	"net"
	"net/netip"
	"sync"
	"time"
)

// clientKey is the address a limit counts by: the IPv4 address, or the /64
// of an IPv6 address (which one host is usually given whole).
type clientKey netip.Addr

func clientKeyOf(addr net.Addr) clientKey {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return clientKey{}
	}
	ip := ap.Addr().Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		ip = p.Addr()
	}
	return clientKey(ip)
}

// handshakes admits agent connections that have not authenticated yet: at
// most perIP from one address, and at most max in all. When max is reached
// the oldest is dropped to make room, so that a flood of peers that never
// finish their handshake delays a real agent by no more than its own
// handshake; real agents finish theirs in a few round trips.
type handshakes struct {
	max, perIP int

	mu     sync.Mutex
	closed bool
	byIP   map[clientKey]int
	queue  list.List // of *pending, oldest first
}

// pending is one connection in its handshake.
type pending struct {
	conn net.Conn
	ip   clientKey
	elem *list.Element // nil once it has left the queue
}

func newHandshakes(max, perIP int) *handshakes {
	return &handshakes{max: max, perIP: perIP, byIP: map[clientKey]int{}}
}

// admit counts c in, or reports false if its address is at its limit. It
// may close the oldest pending connection to make room.
func (h *handshakes) admit(c net.Conn) (*pending, bool) {
	p := &pending{conn: c, ip: clientKeyOf(c.RemoteAddr())}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.byIP[p.ip] >= h.perIP {
		return nil, false
	}
	if h.queue.Len() >= h.max {
		oldest := h.queue.Front().Value.(*pending)
		h.removeLocked(oldest)
		oldest.conn.Close()
	}
	h.byIP[p.ip]++
	p.elem = h.queue.PushBack(p)
	return p, true
}

// done counts p out, once its handshake ended either way.
func (h *handshakes) done(p *pending) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removeLocked(p)
}

func (h *handshakes) removeLocked(p *pending) {
	if p.elem == nil {
		return
	}
	h.queue.Remove(p.elem)
	p.elem = nil
	if h.byIP[p.ip]--; h.byIP[p.ip] <= 0 {
		delete(h.byIP, p.ip)
	}
}

// closeAll closes every pending connection and admits no more (on shutdown).
func (h *handshakes) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for e := h.queue.Front(); e != nil; e = e.Next() {
		e.Value.(*pending).conn.Close()
	}
}

// bucket is a token bucket: rate tokens a second, up to burst.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newBucket(rate, burst float64) *bucket {
	return &bucket{rate: rate, burst: burst, tokens: burst, last: time.Now()}
}

// take reports whether a token was available, and takes it.
func (b *bucket) take() bool {
	now := time.Now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// clientConns counts the public connections each client address has open
// to one tunnel.
type clientConns struct {
	max  int
	mu   sync.Mutex
	byIP map[clientKey]int
}

func newClientConns(max int) *clientConns {
	return &clientConns{max: max, byIP: map[clientKey]int{}}
}

// acquire counts one more connection from addr, or reports false at the cap.
func (c *clientConns) acquire(addr net.Addr) (release func(), ok bool) {
	k := clientKeyOf(addr)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byIP[k] >= c.max {
		return nil, false
	}
	c.byIP[k]++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			if c.byIP[k]--; c.byIP[k] <= 0 {
				delete(c.byIP, k)
			}
			c.mu.Unlock()
		})
	}, true
}
