package inspect

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// record captures one exchange with a request body of n bytes through
// tap, as a tunnel's handler does, and returns its id.
func record(t testing.TB, tap *Tap, n int) string {
	t.Helper()
	r := httptest.NewRequest("POST", "/upload", bytes.NewReader(make([]byte, n)))
	r.Header.Set("A", "b")
	tap.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	})).ServeHTTP(httptest.NewRecorder(), r)
	xs := tap.store.List(1, tap.Tunnel())
	if len(xs) != 1 || !xs[0].Done {
		t.Fatalf("exchange not kept: %+v", xs)
	}
	return xs[0].ID
}

func TestStoreStaysWithinItsBudgetOldestFirst(t *testing.T) {
	s := NewStore(Config{BodyCap: 1000, Budget: 10_000})
	taps := []*Tap{s.Tap("t0", TapOptions{Capture: true}), s.Tap("t1", TapOptions{Capture: true})}
	var ids []string
	for i := range 100 {
		ids = append(ids, record(t, taps[i%2], 1000))
		if s.Used() > 10_000 {
			t.Fatalf("after %d exchanges %d bytes are kept, over the budget", i+1, s.Used())
		}
	}
	kept := s.List(0, "")
	if len(kept) == 0 || len(kept) >= 10 || s.Len() != len(kept) {
		t.Fatalf("%d exchanges kept (Len %d)", len(kept), s.Len())
	}
	// The newest are kept, newest first; the oldest are gone.
	for i, x := range kept {
		if want := ids[len(ids)-1-i]; x.ID != want {
			t.Errorf("kept[%d] = %s, want %s", i, x.ID, want)
		}
		if len(x.Request.Body) != 1000 || x.Request.BodySize != 1000 || x.Request.Truncated {
			t.Errorf("kept[%d] body: %d of %d bytes", i, len(x.Request.Body), x.Request.BodySize)
		}
	}
	if s.Get(ids[0]) != nil {
		t.Error("the oldest exchange is still kept")
	}
	if got := s.List(2, "t1"); len(got) != 2 || got[0].Tunnel != "t1" || got[1].Tunnel != "t1" {
		t.Errorf("filtered list: %+v", got)
	}
	if got := s.List(0, "nope"); len(got) != 0 {
		t.Errorf("an unknown tunnel lists %d exchanges", len(got))
	}
	s.Clear()
	if s.Used() != 0 || len(s.List(0, "")) != 0 || s.Get(ids[len(ids)-1]) != nil {
		t.Error("clear left something")
	}
}

func TestAnExchangeLargerThanTheBudgetIsKeptAloneNotLost(t *testing.T) {
	s := NewStore(Config{BodyCap: 100_000, Budget: 10_000})
	tap := s.Tap("t", TapOptions{Capture: true})
	record(t, tap, 10)
	id := record(t, tap, 20_000)
	got := s.List(0, "")
	if len(got) != 1 || got[0].ID != id {
		t.Fatalf("after a huge exchange: %d kept", len(got))
	}
	// Its body is cut to what fits, and marked so.
	if r := got[0].Request; !r.Truncated || r.BodySize != 20_000 || len(r.Body) == 0 || len(r.Body) >= 10_000 || s.Used() > 10_000 {
		t.Errorf("kept %d of %d bytes, truncated %v; store uses %d", len(r.Body), r.BodySize, r.Truncated, s.Used())
	}
	record(t, tap, 10)
	if got := s.List(0, ""); len(got) != 1 || got[0].ID == id {
		t.Errorf("the huge exchange is still kept beside a new one: %d kept", len(got))
	}
}

func TestSubscribersFollowAndASlowOneIsDropped(t *testing.T) {
	s := NewStore(Config{})
	tap := s.Tap("t", TapOptions{Capture: true})
	ch, cancel := s.Subscribe()
	defer cancel()
	id := record(t, tap, 1)
	if e := <-ch; e.Type != EventRequest || e.Exchange.ID != id || e.Exchange.Done {
		t.Errorf("first event %+v", e)
	}
	if e := <-ch; e.Type != EventUpdate || e.Exchange.ID != id || !e.Exchange.Done || !s.Get(id).Done {
		t.Errorf("second event %+v", e)
	}
	// A subscriber that does not read is closed once its buffer is full.
	for range 150 {
		record(t, tap, 1)
	}
	n := 0
	for range ch {
		n++
	}
	if n != 256 {
		t.Errorf("slow subscriber got %d events before its channel closed", n)
	}
}

func TestIDsSortInCaptureOrder(t *testing.T) {
	s := NewStore(Config{})
	tap := s.Tap("t", TapOptions{Capture: true})
	prev := ""
	for range 20 {
		id := record(t, tap, 0)
		if id <= prev || len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "" {
			t.Fatalf("id %q after %q", id, prev)
		}
		prev = id
	}
	for _, id := range []string{formatID(uint64(s.epoch+1)<<32 | 1), s.id(21), "xyz", ""} {
		if s.Get(id) != nil {
			t.Errorf("id %q, which this store did not give, is found", id)
		}
	}
}

func TestMetricsRatesAndPercentiles(t *testing.T) {
	start := time.Unix(1000, 0)
	tm := newTimer(start)
	// 10 events a second for a minute, each lasting i ms.
	for i := range 600 {
		now := start.Add(time.Duration(i) * 100 * time.Millisecond)
		tm.mark(now)
		tm.observe(time.Duration(i%100+1) * time.Millisecond)
	}
	s := tm.stats(start.Add(60 * time.Second))
	if s.Count != 600 {
		t.Errorf("count %d", s.Count)
	}
	if s.Rate1 < 9.9 || s.Rate1 > 10.1 || s.Rate15 < 9.9 || s.Rate15 > 10.1 {
		t.Errorf("rates %v %v, want 10/s", s.Rate1, s.Rate15)
	}
	if s.P50 < float64(49*time.Millisecond) || s.P50 > float64(52*time.Millisecond) || s.P99 < float64(98*time.Millisecond) {
		t.Errorf("percentiles in ns: p50 %v p99 %v", s.P50, s.P99)
	}
	// Idle, the rates decay.
	later := tm.stats(start.Add(10 * time.Minute))
	if later.Rate1 > 0.01 || later.Rate15 >= s.Rate15 {
		t.Errorf("after 9 idle minutes: rate1 %v rate15 %v", later.Rate1, later.Rate15)
	}
}

// TestServeWarnsBeyondLoopback: an inspector listening on an address
// other machines can reach says so, since it has no authentication; one on
// loopback says nothing.
func TestServeWarnsBeyondLoopback(t *testing.T) {
	for _, c := range []struct {
		addr string
		warn bool
	}{{"127.0.0.1:0", false}, {"0.0.0.0:0", true}} {
		ln, err := net.Listen("tcp", c.addr)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		s := Serve(ln, http.NotFoundHandler(), slog.New(slog.NewTextHandler(&out, nil)))
		s.Close()
		if got := strings.Contains(out.String(), "level=WARN") && strings.Contains(out.String(), "without authentication"); got != c.warn {
			t.Errorf("%s: warned %v, want %v:\n%s", c.addr, got, c.warn, out.String())
		}
	}
}

func TestAllowedHost(t *testing.T) {
	for _, c := range []struct {
		host string
		ok   bool
	}{
		{"127.0.0.1:4040", true},
		{"localhost:4040", true},
		{"LOCALHOST.:4040", true},
		{"[::1]:4040", true},
		{"192.168.1.5:4040", true}, // an IP literal cannot be rebound
		{"127.0.0.1:4041", false},
		{"127.0.0.1", false},
		{"evil.example:4040", false},
		{"localhost.evil.example:4040", false},
		{"", false},
	} {
		if got := allowedHost(c.host, 4040); got != c.ok {
			t.Errorf("allowedHost(%q) = %v, want %v", c.host, got, c.ok)
		}
	}
}

func TestDefaultAddrMovesToTheNextFreePort(t *testing.T) {
	// Hold 4040 (unless something else already does), then ask for it.
	if held, err := net.Listen("tcp", DefaultAddr); err == nil {
		defer held.Close()
	}
	ln, err := Listen(DefaultAddr)
	if err != nil {
		t.Skipf("4040-4049 are all taken here: %v", err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	if port <= 4040 || port > LastDefaultPort {
		t.Errorf("listening on %d, want 4041-%d", port, LastDefaultPort)
	}
	// An address given explicitly does not move.
	if _, err := Listen(ln.Addr().String()); err == nil {
		t.Error("a taken explicit address was accepted")
	}
}

// TestConcurrentCapturesKeepEntriesWhole captures exchanges that finish
// out of order, from many goroutines, into a small store that evicts all
// the time, while others list, read and clear it: every exchange read back
// is whole (its URI, bodies and headers agree), lists are newest first,
// and the store stays within its budget.
func TestConcurrentCapturesKeepEntriesWhole(t *testing.T) {
	s := NewStore(Config{BodyCap: 4 << 10, Budget: 64 << 10})
	tap := s.Tap("t", TapOptions{Capture: true})
	h := tap.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Echo", r.URL.Path)
		if len(b)%3 == 0 {
			time.Sleep(time.Duration(len(b)%7) * time.Millisecond) // finish out of order
		}
		w.Write(b)
	}))
	check := func(x *Exchange) {
		n, err := strconv.Atoi(strings.TrimPrefix(x.Request.URI, "/n/"))
		if err != nil {
			t.Errorf("URI %q", x.Request.URI)
			return
		}
		want := bytes.Repeat([]byte{byte('a' + n%26)}, n%(6<<10))
		if !x.Done {
			if len(x.Request.Body) != 0 || x.Response != nil {
				t.Errorf("%s: in flight with a body or a response", x.Request.URI)
			}
			return
		}
		if !bytes.HasPrefix(want, x.Request.Body) || len(x.Request.Body) != min(len(want), 4<<10) || x.Request.BodySize != int64(len(want)) {
			t.Errorf("%s: request body of %d bytes (%d seen)", x.Request.URI, len(x.Request.Body), x.Request.BodySize)
		}
		if x.Response == nil || !bytes.Equal(x.Response.Body, x.Request.Body) || x.Response.Header().Get("X-Echo") != x.Request.URI {
			t.Errorf("%s: response does not match its request", x.Request.URI)
		}
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < 2000; i += 8 {
				body := bytes.Repeat([]byte{byte('a' + i%26)}, i%(6<<10))
				r := httptest.NewRequest("POST", "/n/"+strconv.Itoa(i), bytes.NewReader(body))
				h.ServeHTTP(httptest.NewRecorder(), r)
				if used := s.Used(); used > 64<<10 {
					t.Errorf("store uses %d bytes", used)
				}
			}
		})
	}
	var readers sync.WaitGroup
	readers.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			xs := s.List(0, "")
			for j, x := range xs {
				check(x)
				if j > 0 && x.ID >= xs[j-1].ID {
					t.Errorf("listed %s after %s", x.ID, xs[j-1].ID)
				}
				if y := s.Get(x.ID); y != nil {
					check(y)
				}
			}
			if i%50 == 49 {
				s.Clear()
			}
		}
	})
	wg.Wait()
	close(stop)
	readers.Wait()
	// The readers may have cleared the store after the last capture; one
	// more exchange, with nobody clearing, must be kept.
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/n/3", strings.NewReader("ddd")))
	if s.Len() == 0 {
		t.Error("nothing kept")
	}
	for _, x := range s.List(0, "") {
		check(x)
	}
}

// TestInFlightExchangesAreBounded holds more requests in flight than a
// small store has index slots for: it keeps the newest, drops the oldest
// (whose captures then finish into nothing), and stays within its budget.
func TestInFlightExchangesAreBounded(t *testing.T) {
	s := NewStore(Config{Budget: 10_000}) // 78 index slots
	tap := s.Tap("t", TapOptions{Capture: true})
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(200)
	h := tap.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Done()
		<-release
	}))
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() { h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)) })
	}
	started.Wait()
	if xs := s.List(0, ""); len(xs) != int(s.slots) || s.Len() != len(xs) || s.Used() > 10_000 {
		t.Errorf("200 requests in flight: %d listed (Len %d) in %d bytes, want the newest %d", len(xs), s.Len(), s.Used(), s.slots)
	}
	close(release)
	wg.Wait()
	if used := s.Used(); used > 10_000 {
		t.Errorf("after they finish: %d bytes used", used)
	}
	for _, x := range s.List(0, "") {
		if !x.Done {
			t.Errorf("%s is still in flight", x.ID)
		}
	}
	id := record(t, tap, 0)
	if xs := s.List(0, ""); len(xs) == 0 || xs[0].ID != id {
		t.Errorf("the store does not go on: %d kept", len(xs))
	}
}

func TestAnExchangeWhoseHeadsDoNotFitIsDropped(t *testing.T) {
	s := NewStore(Config{Budget: 1000})
	tap := s.Tap("t", TapOptions{Capture: true})
	record(t, tap, 0)
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Big", strings.Repeat("x", 2000))
	tap.Handler(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), r)
	if n, used := len(s.List(0, "")), s.Used(); n != 0 || s.Len() != 0 || used != 0 {
		t.Errorf("%d exchanges kept (Len %d) in %d bytes", n, s.Len(), used)
	}
	record(t, tap, 0) // and the store goes on
}
