package relay

import (
	"container/list"
	"net"
	"net/netip"
	"sync"
	"time"

	"porthole/internal/netutil"
)

// clientKey is the address a limit counts by: the IPv4 address, or the /64
// of an IPv6 address (which one host is usually given whole).
type clientKey netip.Addr

func clientKeyOf(addr net.Addr) clientKey { return clientKey(netutil.ClientKey(addr.String())) }

// networkKey is the network a client address belongs to, as one party
// usually holds it whole: an IPv4 /24, or an IPv6 /48.
type networkKey netip.Prefix

func networkOf(k clientKey) networkKey { return networkKey(netutil.NetworkKey(netip.Addr(k))) }

// handshakes admits agent connections that have not authenticated yet: at
// most perIP from one address, and at most max in all. When max is reached
// a connection is dropped to make room: the oldest of the network (IPv4
// /24, IPv6 /48) that holds the most. A flood from the many addresses of
// one network then only pushes out its own connections, however fast it
// comes, and a real agent elsewhere has all the time its handshake takes.
type handshakes struct {
	max, perIP int

	mu     sync.Mutex
	closed bool
	byIP   map[clientKey]int
	byNet  map[networkKey]*list.List // of *pending, oldest first
	n      int
}

// pending is one connection in its handshake.
type pending struct {
	conn net.Conn
	ip   clientKey
	net  networkKey
	elem *list.Element // in byNet[net]; nil once it has left
}

func newHandshakes(max, perIP int) *handshakes {
	return &handshakes{max: max, perIP: perIP, byIP: map[clientKey]int{}, byNet: map[networkKey]*list.List{}}
}

// admit counts c in, or reports false if its address is at its limit. It
// may close a pending connection to make room.
func (h *handshakes) admit(c net.Conn) (*pending, bool) {
	p := &pending{conn: c, ip: clientKeyOf(c.RemoteAddr())}
	p.net = networkOf(p.ip)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.byIP[p.ip] >= h.perIP {
		return nil, false
	}
	if h.n >= h.max {
		var busiest *list.List
		for _, l := range h.byNet {
			if busiest == nil || l.Len() > busiest.Len() {
				busiest = l
			}
		}
		victim := busiest.Front().Value.(*pending)
		h.removeLocked(victim)
		victim.conn.Close()
	}
	h.byIP[p.ip]++
	l := h.byNet[p.net]
	if l == nil {
		l = list.New()
		h.byNet[p.net] = l
	}
	p.elem = l.PushBack(p)
	h.n++
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
	l := h.byNet[p.net]
	l.Remove(p.elem)
	if l.Len() == 0 {
		delete(h.byNet, p.net)
	}
	p.elem = nil
	h.n--
	if h.byIP[p.ip]--; h.byIP[p.ip] <= 0 {
		delete(h.byIP, p.ip)
	}
}

// closeAll closes every pending connection and admits no more (on shutdown).
func (h *handshakes) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for _, l := range h.byNet {
		for e := l.Front(); e != nil; e = e.Next() {
			e.Value.(*pending).conn.Close()
		}
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
	if b.peek() < 1 {
		return false
	}
	b.tokens--
	return true
}

// peek returns the tokens available now.
func (b *bucket) peek() float64 {
	now := time.Now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	return b.tokens
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

// Failed authentications one address may have: authBurst at once, then one
// per authEvery. Agents stop at their first auth_failed, so only a peer
// that guesses tokens comes near it. authTracked bounds the addresses
// remembered; beyond it, the failures of new ones are not counted.
const (
	authBurst   = 10
	authEvery   = 10 * time.Second
	authTracked = 1 << 16
)

// authFailures counts failed authentications by address, so that one
// address can neither guess tokens nor write the relay's log at its own
// pace: beyond its allowance, its connections are closed before TLS.
type authFailures struct {
	mu   sync.Mutex
	byIP map[clientKey]*bucket
}

func newAuthFailures() *authFailures {
	return &authFailures{byIP: map[clientKey]*bucket{}}
}

// allowed reports whether an address may try to authenticate.
func (f *authFailures) allowed(addr net.Addr) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.byIP[clientKeyOf(addr)]
	return b == nil || b.peek() >= 1
}

// failed counts a failed authentication from addr, and reports whether it
// used up the address's allowance.
func (f *authFailures) failed(addr net.Addr) (exhausted bool) {
	k := clientKeyOf(addr)
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.byIP[k]
	if b == nil {
		if len(f.byIP) >= authTracked {
			f.sweep()
			if len(f.byIP) >= authTracked {
				return false
			}
		}
		b = newBucket(1/authEvery.Seconds(), authBurst)
		f.byIP[k] = b
	}
	b.take()
	return b.peek() < 1
}

// sweep forgets the addresses whose allowance is whole again.
func (f *authFailures) sweep() {
	for k, b := range f.byIP {
		if b.peek() >= b.burst {
			delete(f.byIP, k)
		}
	}
}
