package forwarder

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"porthole/wire"
)

func TestParseRateLimit(t *testing.T) {
	for _, c := range []struct {
		in   string
		want RateLimit
		ok   bool
	}{
		{"100/m", RateLimit{100, time.Minute}, true},
		{"5/s", RateLimit{5, time.Second}, true},
		{" 7/h ", RateLimit{7, time.Hour}, true},
		{"0/m", RateLimit{}, false},
		{"-1/m", RateLimit{}, false},
		{"100", RateLimit{}, false},
		{"100/d", RateLimit{}, false},
		{"x/m", RateLimit{}, false},
	} {
		got, err := ParseRateLimit(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseRateLimit(%q) = %v, %v; want %v, ok %v", c.in, got, err, c.want, c.ok)
		}
		if c.ok && got.String() != strings.TrimSpace(c.in) {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
}

func TestParsePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.0/24":     "192.0.2.0/24",
		"192.0.2.7/24":     "192.0.2.0/24",
		"192.0.2.7":        "192.0.2.7/32",
		"::ffff:192.0.2.7": "192.0.2.7/32",
		"2001:db8::1":      "2001:db8::1/128",
		"2001:db8::/32":    "2001:db8::/32",
		"bogus":            "",
		"10.0.0.0/33":      "",
	} {
		p, err := parsePrefix(in)
		got := ""
		if err == nil {
			got = p.String()
		}
		if got != want {
			t.Errorf("parsePrefix(%q) = %q (%v), want %q", in, got, err, want)
		}
	}
}

// TestRateLimiter runs the token bucket on a fake clock: a burst of
// Requests, then a refusal with the wait until the next token; each client
// address has its own budget; and the number of remembered clients stays
// bounded.
func TestRateLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newRateLimiter(RateLimit{Requests: 3, Per: time.Minute}, func() time.Time { return now })
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	for i := range 3 {
		if ok, _ := l.take(a); !ok {
			t.Fatalf("request %d refused within the burst", i+1)
		}
	}
	near := func(d, want time.Duration) bool { return d >= want && d <= want+time.Millisecond }
	ok, retry := l.take(a)
	if ok || !near(retry, 20*time.Second) {
		t.Fatalf("over the limit: ok %v, retry %v; want refused, 20s", ok, retry)
	}
	if ok, _ := l.take(b); !ok {
		t.Error("another client was refused")
	}
	now = now.Add(19 * time.Second)
	if ok, retry := l.take(a); ok || !near(retry, time.Second) {
		t.Errorf("before the next token: ok %v, retry %v", ok, retry)
	}
	now = now.Add(time.Second)
	if ok, _ := l.take(a); !ok {
		t.Error("refused after the token came back")
	}

	l.max = 4
	for i := range 10 {
		l.take(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}))
		if len(l.clients) > l.max {
			t.Fatalf("%d clients remembered, cap %d", len(l.clients), l.max)
		}
	}
}

func TestCheckRules(t *testing.T) {
	tn := &tunnel{cidrDeny: []string{"192.0.2.0/24"}}
	if err := tn.checkRules(&wire.Bound{}); !wire.IsCode(err, wire.CodeUnsupported) {
		t.Errorf("relay without rules: %v, want unsupported", err)
	}
	if err := tn.checkRules(&wire.Bound{Rules: []string{wire.RuleCIDR}}); err != nil {
		t.Errorf("relay with the rule: %v", err)
	}
	if err := (&tunnel{}).checkRules(&wire.Bound{}); err != nil {
		t.Errorf("no rules asked: %v", err)
	}
}
