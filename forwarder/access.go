package forwarder

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pires/go-proxyproto"

	"porthole/internal/httperr"
	"porthole/wire"
)

// RateLimit is a per-client-address request rate for an HTTP tunnel:
// Requests per Per, with bursts of up to Requests. The zero value means no
// limit.
type RateLimit struct {
	Requests int
	Per      time.Duration
}

// ParseRateLimit parses "N/s", "N/m" or "N/h".
func ParseRateLimit(s string) (RateLimit, error) {
	n, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	per, known := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[unit]
	count, err := strconv.Atoi(n)
	if !ok || !known || err != nil || count <= 0 {
		return RateLimit{}, fmt.Errorf("bad rate limit %q: want N/s, N/m or N/h with N > 0", s)
	}
	return RateLimit{Requests: count, Per: per}, nil
}

func (r RateLimit) String() string {
	if r.Requests == 0 {
		return ""
	}
	unit := map[time.Duration]string{time.Second: "s", time.Minute: "m", time.Hour: "h"}[r.Per]
	if unit == "" {
		return fmt.Sprintf("%d/%v", r.Requests, r.Per)
	}
	return fmt.Sprintf("%d/%s", r.Requests, unit)
}

// prepareAccess checks a tunnel's access options: address prefixes (given
// as CIDRs or single addresses) are normalized for the bind, the rate limit
// is for HTTP tunnels and the PROXY header for TCP and TLS ones.
func prepareAccess(tn *tunnel) *FieldError {
	for _, list := range []struct {
		field string
		in    []string
		out   *[]string
	}{{"CIDRAllow", tn.CIDRAllow, &tn.cidrAllow}, {"CIDRDeny", tn.CIDRDeny, &tn.cidrDeny}} {
		for _, s := range list.in {
			p, err := parsePrefix(s)
			if err != nil {
				return &FieldError{Field: list.field, Err: err}
			}
			*list.out = append(*list.out, p.String())
		}
	}
	if rl := tn.RateLimit; rl != (RateLimit{}) {
		if tn.Proto != wire.ProtoHTTP {
			return &FieldError{Field: "RateLimit", Err: errors.New("a rate limit applies to http tunnels only")}
		}
		if rl.Requests <= 0 || rl.Per <= 0 {
			return &FieldError{Field: "RateLimit", Err: fmt.Errorf("bad rate limit %d per %v: both must be positive", rl.Requests, rl.Per)}
		}
	}
	if tn.ProxyProtocol && tn.Proto == wire.ProtoHTTP {
		return &FieldError{Field: "ProxyProtocol", Err: errors.New("the PROXY header applies to tcp and tls tunnels only (http tunnels get X-Forwarded-For)")}
	}
	return nil
}

// parsePrefix reads a CIDR prefix, or a single address as a /32 or /128.
func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("bad address prefix %q: want CIDR notation such as 192.0.2.0/24, or an address", s)
}

// checkRules makes sure the relay enforces the address rules the tunnel
// asked for: a relay that does not know them would let everyone through.
func (t *tunnel) checkRules(b *wire.Bound) error {
	if len(t.cidrAllow)+len(t.cidrDeny) > 0 && !slices.Contains(b.Rules, wire.RuleCIDR) {
		return wire.Errorf(wire.CodeUnsupported, "the relay does not enforce client address rules (--cidr-allow, --cidr-deny)")
	}
	return nil
}

// maxRateClients bounds the client addresses a rate limiter remembers; past
// it, idle clients (whose budget is full again) are forgotten first.
const maxRateClients = 10000

// rateLimiter is a token bucket per client address: each request takes a
// token, and tokens come back at Requests per Per up to Requests. It counts
// every request of a connection (keep-alive, HTTP/2), which only the agent
// sees: the relay routes a connection once, by its first request.
type rateLimiter struct {
	rate  float64 // tokens per second
	burst float64
	max   int
	now   func() time.Time

	mu      sync.Mutex
	clients map[netip.Addr]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(rl RateLimit, now func() time.Time) *rateLimiter {
	return &rateLimiter{
		rate:    float64(rl.Requests) / rl.Per.Seconds(),
		burst:   float64(rl.Requests),
		max:     maxRateClients,
		now:     now,
		clients: map[netip.Addr]*bucket{},
	}
}

// take spends a token of client's budget, or reports how long until one is
// back.
func (l *rateLimiter) take(client netip.Addr) (ok bool, retry time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.clients[client]
	if b == nil {
		if len(l.clients) >= l.max {
			l.evict(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.clients[client] = b
	}
	l.refill(b, now)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	// Rounded up to the millisecond, so that waiting this long is enough.
	return false, time.Duration(math.Ceil((1-b.tokens)/l.rate*1000)) * time.Millisecond
}

func (l *rateLimiter) refill(b *bucket, now time.Time) {
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
}

// evict forgets the clients whose budget is full again, or one client if
// all are busy, so that the map stays within max.
func (l *rateLimiter) evict(now time.Time) {
	for ip, b := range l.clients {
		if l.refill(b, now); b.tokens >= l.burst {
			delete(l.clients, ip)
		}
	}
	for ip := range l.clients {
		if len(l.clients) < l.max {
			break
		}
		delete(l.clients, ip)
	}
}

// limit answers 429 with Retry-After to the requests over the client's
// budget, and passes the rest to next.
func (l *rateLimiter) limit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil {
			next.ServeHTTP(w, r)
			return
		}
		ok, retry := l.take(ap.Addr().Unmap())
		if !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retry.Seconds()))))
			httperr.Write(w, http.StatusTooManyRequests, httperr.RateLimited,
				"You sent more requests than this tunnel allows; retry later.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// writeProxyHeader sends a PROXY protocol v2 header on a new upstream
// connection: the source is the public client, the destination the
// upstream address the agent dialed.
func writeProxyHeader(up net.Conn, client string) error {
	ap, err := netip.ParseAddrPort(client)
	if err != nil {
		return fmt.Errorf("PROXY header: client address %q: %w", client, err)
	}
	h := proxyproto.HeaderProxyFromAddrs(2, net.TCPAddrFromAddrPort(ap), up.RemoteAddr())
	_, err = h.WriteTo(up)
	return err
}
