package backlog

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// stream is a test stream: its charge, and what the budget told it.
type stream struct {
	name   string
	ch     *Charge
	shed   bool
	reason Reason
}

// clock is a fake time that moves one second at each tick.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }
func (c *clock) tick()          { c.t = c.t.Add(time.Second) }

func newBudget(max, share int64) (*Budget, *clock) {
	clk := &clock{t: time.Unix(1000, 0)}
	b := New(max, share)
	b.now = clk.now
	return b, clk
}

func open(b *Budget, name, addr string) *stream {
	s := &stream{name: name}
	s.ch = b.Open(netip.MustParseAddr(addr), func(r Reason) {
		if s.shed {
			panic("shed twice: " + name)
		}
		s.shed, s.reason = true, r
	})
	return s
}

func shedOnes(ss ...*stream) map[string]Reason {
	out := map[string]Reason{}
	for _, s := range ss {
		if s.shed {
			out[s.name] = s.reason
		}
	}
	return out
}

func TestBudget(t *testing.T) {
	// Each step: a stream grows by n (or shrinks, if negative), then the
	// clock ticks. want is every stream shed by the end, and why.
	type step struct {
		stream string
		n      int64
	}
	for _, tc := range []struct {
		name       string
		max, share int64
		streams    map[string]string // name: client address
		steps      []step
		want       map[string]Reason
		held       int64
	}{
		{
			name: "within both bounds nothing is shed", max: 100, share: 50,
			streams: map[string]string{"a1": "10.0.0.1", "a2": "10.0.0.1", "b1": "10.0.0.2"},
			steps:   []step{{"a1", 25}, {"a2", 25}, {"b1", 50}},
			want:    map[string]Reason{}, held: 100,
		},
		{
			name: "over its share, the client's stream behind longest goes", max: 100, share: 50,
			streams: map[string]string{"a1": "10.0.0.1", "a2": "10.0.0.1", "a3": "10.0.0.1", "b1": "10.0.0.2"},
			steps:   []step{{"b1", 40}, {"a1", 20}, {"a2", 20}, {"a3", 20}},
			want:    map[string]Reason{"a1": OverShare}, held: 80,
		},
		{
			name: "a stream that emptied is behind since it filled again", max: 100, share: 50,
			streams: map[string]string{"a1": "10.0.0.1", "a2": "10.0.0.1", "a3": "10.0.0.1"},
			steps:   []step{{"a1", 20}, {"a2", 20}, {"a1", -20}, {"a1", 20}, {"a3", 20}},
			want:    map[string]Reason{"a2": OverShare}, held: 40,
		},
		{
			name: "a stream that keeps some is behind since it first held", max: 100, share: 50,
			streams: map[string]string{"a1": "10.0.0.1", "a2": "10.0.0.1", "a3": "10.0.0.1"},
			steps:   []step{{"a1", 20}, {"a2", 20}, {"a1", -10}, {"a1", 10}, {"a3", 20}},
			want:    map[string]Reason{"a1": OverShare}, held: 40,
		},
		{
			name: "over the total, the client holding the most loses its stream behind longest", max: 100, share: 60,
			streams: map[string]string{"a1": "10.0.0.1", "b1": "10.0.0.2", "b2": "10.0.0.2", "c1": "10.0.0.3"},
			steps:   []step{{"a1", 30}, {"b1", 25}, {"b2", 25}, {"c1", 30}},
			want:    map[string]Reason{"b1": OverTotal}, held: 85,
		},
		{
			name: "over the total, the network holding the most loses its heaviest client's stream", max: 100, share: 60,
			streams: map[string]string{"h1": "192.0.2.1", "a1": "10.0.0.1", "a2": "10.0.0.2", "a3": "10.0.0.3", "a4": "10.0.0.4"},
			steps:   []step{{"h1", 30}, {"a1", 25}, {"a2", 20}, {"a3", 20}, {"a4", 20}},
			want:    map[string]Reason{"a1": OverTotal}, held: 90,
		},
		{
			name: "the stream that took the total over may go itself", max: 100, share: 60,
			streams: map[string]string{"a1": "10.0.0.1", "b1": "10.0.0.2"},
			steps:   []step{{"b1", 50}, {"a1", 45}, {"a1", 10}},
			want:    map[string]Reason{"a1": OverTotal}, held: 50,
		},
		{
			name: "one frame over both bounds sheds for each", max: 80, share: 60,
			streams: map[string]string{"a1": "10.0.0.1", "a2": "10.0.0.1", "b1": "10.0.0.2"},
			steps:   []step{{"b1", 58}, {"a1", 10}, {"a2", 52}},
			want:    map[string]Reason{"a1": OverShare, "b1": OverTotal}, held: 52,
		},
		{
			name: "shrinking never sheds", max: 100, share: 50,
			streams: map[string]string{"a1": "10.0.0.1"},
			steps:   []step{{"a1", 50}, {"a1", -30}, {"a1", -20}},
			want:    map[string]Reason{}, held: 0,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, clk := newBudget(tc.max, tc.share)
			streams := map[string]*stream{}
			var all []*stream
			for _, st := range tc.steps {
				s := streams[st.stream]
				if s == nil {
					s = open(b, st.stream, tc.streams[st.stream])
					streams[st.stream] = s
					all = append(all, s)
				}
				s.ch.Hold(st.n)
				clk.tick()
			}
			got := shedOnes(all...)
			if len(got) != len(tc.want) {
				t.Errorf("shed %v, want %v", got, tc.want)
			}
			for name, r := range tc.want {
				if got[name] != r {
					t.Errorf("shed %v, want %v", got, tc.want)
				}
			}
			if st := b.Stats(); st.Held != tc.held {
				t.Errorf("held %d, want %d", st.Held, tc.held)
			}
		})
	}
}

func TestBudgetCounts(t *testing.T) {
	b, _ := newBudget(100, 50)
	a := open(b, "a", "10.0.0.1")
	c := open(b, "c", "2001:db8::1")
	a.ch.Hold(60) // over the share: shed at once
	c.ch.Hold(30)
	c.ch.Hold(10) // a shed stream is charged no more
	a.ch.Hold(10)
	st := b.Stats()
	if st.Held != 40 || st.Clients != 1 || st.Shed[OverShare] != 1 || st.Shed[OverTotal] != 0 {
		t.Fatalf("stats %+v, want 40 held by one client, one stream shed over its share", st)
	}
	c.ch.Release()
	c.ch.Hold(5) // released: nothing
	a.ch.Release()
	if st := b.Stats(); st.Held != 0 || st.Clients != 0 {
		t.Fatalf("after release: %+v", st)
	}
}

// TestShedLogIsRateLimited: a burst of sheds writes one line; the next
// line, a LogEvery later, says how many went unlogged.
func TestShedLogIsRateLimited(t *testing.T) {
	var buf bytes.Buffer
	l := NewShedLog(slog.New(slog.NewTextHandler(&buf, nil)), "shed")
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	for range 1000 {
		l.Shed("192.0.2.1:4000", OverShare)
	}
	now = now.Add(LogEvery)
	l.Shed("192.0.2.2:4000", OverTotal)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines for 1001 sheds, want 2:\n%s", len(lines), buf.String())
	}
	for i, want := range []string{"client=192.0.2.1:4000 bound=client_share unlogged_since_last=0", "client=192.0.2.2:4000 bound=total unlogged_since_last=999"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d: %q, want it to contain %q", i, lines[i], want)
		}
	}
}
