package inspect

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

// TestCaptureAllocations bounds what capturing costs the request path in
// allocations, beside the same tunnel counted only, into a full store: a
// small exchange is captured without allocating (the capture's buffers are
// pooled, the store writes into memory of its own), one with a request body
// allocates the body's tee.
func TestCaptureAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items at random")
	}
	for _, c := range []struct {
		name  string
		body  string
		extra float64 // allocations the capture may add
	}{{"GET", "", 0}, {"POST", `{"a":1}`, 1}} {
		t.Run(c.name, func(t *testing.T) {
			perRequest := func(capture bool) float64 {
				s := NewStore(Config{Budget: 1 << 20})
				h := s.Tap("web", TapOptions{Capture: capture}).Handler(helloHandler)
				r := helloRequest()
				w := &nopWriter{h: http.Header{}}
				body := strings.NewReader(c.body)
				serve := func() {
					clear(w.h)
					if c.body != "" {
						body.Reset(c.body)
						r.Body = io.NopCloser(body)
					}
					h.ServeHTTP(w, r)
				}
				for s.Used() < s.Config().Budget*9/10 && capture {
					serve()
				}
				return testing.AllocsPerRun(2000, serve)
			}
			counted, captured := perRequest(false), perRequest(true)
			t.Logf("allocations per request: %.0f counted, %.0f captured", counted, captured)
			if captured > counted+c.extra {
				t.Errorf("capturing adds %.0f allocations per request, want at most %.0f", captured-counted, c.extra)
			}
		})
	}
}

// TestFullStoreMemoryIsItsBudget fills a store at the default budget
// several times over with exchanges of mixed sizes and checks the
// accounting against what the process holds: Used stays within the
// budget and near it when full; the Go heap (runtime.MemStats) does not
// grow with the exchanges kept, by at most 1 % of the budget, because
// they live in the store's own region; and the process's resident memory
// grows by the budget, give or take 4 MiB.
func TestFullStoreMemoryIsItsBudget(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector adds memory of its own")
	}
	if testing.Short() {
		t.Skip("fills 50 MB")
	}
	heap0, rss0 := memory(t)
	s := NewStore(DefaultConfig())
	budget := s.Config().Budget
	taps := []*Tap{s.Tap("a", TapOptions{Capture: true}), s.Tap("b", TapOptions{Capture: true})}
	handler := func(tap *Tap) http.Handler {
		return tap.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, _ := io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(make([]byte, n/2))
		}))
	}
	hs := []http.Handler{handler(taps[0]), handler(taps[1])}
	w := &nopWriter{h: http.Header{}}
	var sent int64
	for i := 0; sent < 3*budget; i++ {
		// Three in four exchanges are small; the rest carry up to 16 KiB.
		n := 0
		if i%4 == 3 {
			n = i * 7919 % (16 << 10)
		}
		r := helloRequest()
		r.RequestURI = "/item/" + strconv.Itoa(i)
		r.Body = io.NopCloser(bytes.NewReader(make([]byte, n)))
		clear(w.h)
		hs[i%2].ServeHTTP(w, r)
		sent += int64(300 + n + n/2)
		if used := s.Used(); used > budget {
			t.Fatalf("after %d exchanges the store uses %d bytes, over its budget of %d", i+1, used, budget)
		}
	}
	used := s.Used()
	if used < budget*95/100 {
		t.Errorf("a full store uses %d bytes of its budget of %d", used, budget)
	}
	heap1, rss1 := memory(t)
	t.Logf("%d exchanges kept in %d bytes; heap grew by %d bytes, resident memory by %d", s.Len(), used, heap1-heap0, rss1-rss0)
	if s.offHeap {
		if grew := heap1 - heap0; grew > budget/100 {
			t.Errorf("the Go heap grew by %d bytes with a full store, want at most %d: exchanges are kept on the heap", grew, budget/100)
		}
	} else if grew := heap1 - heap0; grew > budget+budget/100 {
		t.Errorf("the Go heap grew by %d bytes with a full store, over its budget of %d", grew, budget)
	}
	if rss0 >= 0 {
		const slack = 4 << 20
		if grew := rss1 - rss0; grew > budget+slack || grew < used-slack {
			t.Errorf("resident memory grew by %d bytes with a full store of %d bytes, want its budget %d ± %d", grew, used, budget, slack)
		}
	}
	// Listing a full store, which it does in batches, gives every
	// exchange once, newest first.
	xs := s.List(0, "")
	if len(xs) != s.Len() {
		t.Errorf("listed %d of %d exchanges", len(xs), s.Len())
	}
	for i := 1; i < len(xs); i++ {
		if xs[i].ID >= xs[i-1].ID {
			t.Fatalf("listed %s after %s", xs[i].ID, xs[i-1].ID)
		}
	}
	if a := s.List(0, "a"); len(a) != (len(xs)+1)/2 && len(a) != len(xs)/2 || len(a) == 0 || a[0].Tunnel != "a" {
		t.Errorf("listed %d exchanges of tunnel a, of %d", len(a), len(xs))
	}
}

// memory returns the live Go heap after a collection and the process's
// resident memory once the heap's free pages are returned (-1 where /proc
// does not tell).
func memory(t *testing.T) (heap, rss int64) {
	t.Helper()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss = -1
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		var size, resident int64
		if _, err := fmt.Sscan(string(b), &size, &resident); err == nil {
			rss = resident * int64(os.Getpagesize())
		}
	}
	return int64(ms.HeapAlloc), rss
}
