package inspect

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

func exchange(tunnel string, body int) *Exchange {
	return &Exchange{Tunnel: tunnel, Start: time.Now(), Request: Message{
		Method: "GET", URI: "/", Proto: "HTTP/1.1", header: []byte("A: b\r\n"),
		Body: make([]byte, body), BodySize: int64(body)}}
}

func TestStoreStaysWithinItsBudgetOldestFirst(t *testing.T) {
	s := NewStore(Config{BodyCap: 1000, Budget: 10_000})
	var ids []string
	for i := range 100 {
		x := exchange(fmt.Sprint("t", i%2), 1000)
		s.add(x)
		ids = append(ids, x.ID)
		if s.Used() > 10_000 {
			t.Fatalf("after %d exchanges %d bytes are kept, over the budget", i+1, s.Used())
		}
	}
	kept := s.List(0, "")
	if len(kept) == 0 || len(kept) >= 10 {
		t.Fatalf("%d exchanges kept", len(kept))
	}
	// The newest are kept, newest first; the oldest are gone.
	for i, x := range kept {
		if want := ids[len(ids)-1-i]; x.ID != want {
			t.Errorf("kept[%d] = %s, want %s", i, x.ID, want)
		}
	}
	if s.Get(ids[0]) != nil {
		t.Error("the oldest exchange is still kept")
	}
	if got := s.List(2, "t1"); len(got) != 2 || got[0].Tunnel != "t1" || got[1].Tunnel != "t1" {
		t.Errorf("filtered list: %+v", got)
	}
	// One exchange larger than the budget is kept alone rather than lost.
	big := exchange("t0", 20_000)
	s.add(big)
	if got := s.List(0, ""); len(got) != 1 || got[0] != big {
		t.Errorf("after a huge exchange: %d kept", len(got))
	}
	s.Clear()
	if s.Used() != 0 || len(s.List(0, "")) != 0 {
		t.Error("clear left something")
	}
}

func TestSubscribersFollowAndASlowOneIsDropped(t *testing.T) {
	s := NewStore(Config{})
	ch, cancel := s.Subscribe()
	defer cancel()
	x := exchange("t", 1)
	s.add(x)
	done := *x
	done.Done = true
	s.replace(x, &done)
	if e := <-ch; e.Type != EventRequest || e.Exchange.ID != x.ID {
		t.Errorf("first event %+v", e)
	}
	if e := <-ch; e.Type != EventUpdate || !e.Exchange.Done || s.Get(x.ID) != &done {
		t.Errorf("second event %+v", e)
	}
	// A subscriber that does not read is closed once its buffer is full.
	for range 300 {
		s.add(exchange("t", 1))
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
	prev := ""
	for range 20 {
		x := exchange("t", 0)
		s.add(x)
		if x.ID <= prev || len(x.ID) != 16 || strings.Trim(x.ID, "0123456789abcdef") != "" {
			t.Fatalf("id %q after %q", x.ID, prev)
		}
		prev = x.ID
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
