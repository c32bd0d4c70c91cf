package inspect

import (
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Metrics counts one tunnel's connections and HTTP requests in ngrok's
// units: counts, the open-connection gauge, 1, 5 and 15 minute moving
// average rates per second, and duration percentiles in nanoseconds. It
// also counts bytes in and out and HTTP error responses (5xx).
type Metrics struct {
	bytesIn, bytesOut atomic.Int64

	mu       sync.Mutex
	conns    timer
	http     timer
	open     int64
	errors   int64
	statuses map[int]int64 // HTTP responses by status code (at most 500 keys)
	changed  chan struct{} // closed at the next change; nil when nobody waits
}

// Changed returns a channel that is closed at the next change of the
// metrics, for views that show them live.
func (m *Metrics) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.changed == nil {
		m.changed = make(chan struct{})
	}
	return m.changed
}

// notify wakes the waiters of Changed; called with m.mu held.
func (m *Metrics) notify() {
	if m.changed != nil {
		close(m.changed)
		m.changed = nil
	}
}

func newMetrics() *Metrics {
	now := time.Now()
	return &Metrics{conns: newTimer(now), http: newTimer(now), statuses: map[int]int64{}}
}

// ConnOpened counts a new public connection. Call the function it returns
// once, when the connection ends: its duration goes into the percentiles.
func (m *Metrics) ConnOpened() (closed func()) {
	start := time.Now()
	m.mu.Lock()
	m.conns.mark(start)
	m.open++
	m.notify()
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		m.open--
		m.conns.observe(time.Since(start))
		m.notify()
		m.mu.Unlock()
	}
}

// Received counts bytes read from a public client.
func (m *Metrics) Received(n int) { m.bytesIn.Add(int64(n)) }

// Sent counts bytes written to a public client.
func (m *Metrics) Sent(n int) { m.bytesOut.Add(int64(n)) }

func (m *Metrics) request(d time.Duration, status int) {
	now := time.Now()
	m.mu.Lock()
	m.http.mark(now)
	m.http.observe(d)
	if status >= 500 {
		m.errors++
	}
	if status >= 100 && status <= 599 {
		m.statuses[status]++
	}
	m.notify()
	m.mu.Unlock()
}

// Snapshot is the metrics at one moment, in the agent API's shape.
type Snapshot struct {
	Conns ConnStats `json:"conns"`
	HTTP  HTTPStats `json:"http"`
}

// TimerStats are ngrok's fields for a series of events with durations.
type TimerStats struct {
	Count  int64   `json:"count"`
	Rate1  float64 `json:"rate1"`
	Rate5  float64 `json:"rate5"`
	Rate15 float64 `json:"rate15"`
	P50    float64 `json:"p50"`
	P90    float64 `json:"p90"`
	P95    float64 `json:"p95"`
	P99    float64 `json:"p99"`
}

// ConnStats are the connection metrics: ngrok's, then bytes in and out.
type ConnStats struct {
	Count    int64   `json:"count"`
	Gauge    int64   `json:"gauge"`
	Rate1    float64 `json:"rate1"`
	Rate5    float64 `json:"rate5"`
	Rate15   float64 `json:"rate15"`
	P50      float64 `json:"p50"`
	P90      float64 `json:"p90"`
	P95      float64 `json:"p95"`
	P99      float64 `json:"p99"`
	BytesIn  int64   `json:"bytes_in"`
	BytesOut int64   `json:"bytes_out"`
}

// HTTPStats are the request metrics: ngrok's, then error responses.
type HTTPStats struct {
	TimerStats
	Errors int64 `json:"errors"`
}

// Snapshot returns the current values.
func (m *Metrics) Snapshot() Snapshot {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.conns.stats(now)
	return Snapshot{
		Conns: ConnStats{Count: c.Count, Gauge: m.open, Rate1: c.Rate1, Rate5: c.Rate5, Rate15: c.Rate15,
			P50: c.P50, P90: c.P90, P95: c.P95, P99: c.P99, BytesIn: m.bytesIn.Load(), BytesOut: m.bytesOut.Load()},
		HTTP: HTTPStats{TimerStats: m.http.stats(now), Errors: m.errors},
	}
}

// Statuses returns the number of HTTP responses by status code.
func (m *Metrics) Statuses() map[int]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.statuses)
}

// Totals are a tunnel's running totals, cheap to read often.
type Totals struct {
	Requests, Errors  int64 // HTTP requests, and 5xx answers among them
	Conns, Open       int64 // connections since the start, and open now
	BytesIn, BytesOut int64 // from and to public clients
}

// Totals returns the running totals.
func (m *Metrics) Totals() Totals {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Totals{Requests: m.http.count, Errors: m.errors, Conns: m.conns.count, Open: m.open,
		BytesIn: m.bytesIn.Load(), BytesOut: m.bytesOut.Load()}
}

// Open returns the number of open connections.
func (m *Metrics) Open() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.open
}

// Requests returns the number of HTTP requests seen.
func (m *Metrics) Requests() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.http.count
}

// timer counts events, their moving-average rates, and a window of their
// most recent durations for percentiles.
type timer struct {
	count   int64
	rates   [3]ewma
	last    time.Time // start of the current tick
	pending int64     // events in the current tick
	window  []time.Duration
	next    int
}

const (
	tickInterval = 5 * time.Second
	windowSize   = 1024
)

func newTimer(now time.Time) timer {
	return timer{
		last: now,
		rates: [3]ewma{
			{alpha: 1 - math.Exp(-5.0/60/1)},
			{alpha: 1 - math.Exp(-5.0/60/5)},
			{alpha: 1 - math.Exp(-5.0/60/15)},
		},
	}
}

// tick folds the events of every tick that ended before now into the
// rates; rates move in 5 s steps, like the usual Unix load averages.
func (t *timer) tick(now time.Time) {
	for now.Sub(t.last) >= tickInterval {
		for i := range t.rates {
			t.rates[i].tick(t.pending)
		}
		t.pending = 0
		t.last = t.last.Add(tickInterval)
		if now.Sub(t.last) > time.Hour {
			// Long idle: the averages have decayed to nothing.
			for i := range t.rates {
				t.rates[i] = ewma{alpha: t.rates[i].alpha, init: t.rates[i].init}
			}
			t.last = now
		}
	}
}

// mark counts an event.
func (t *timer) mark(now time.Time) {
	t.tick(now)
	t.count++
	t.pending++
}

// observe records an event's duration.
func (t *timer) observe(d time.Duration) {
	if len(t.window) < windowSize {
		t.window = append(t.window, d)
	} else {
		t.window[t.next] = d
		t.next = (t.next + 1) % windowSize
	}
}

func (t *timer) stats(now time.Time) TimerStats {
	t.tick(now)
	s := TimerStats{Count: t.count, Rate1: t.rates[0].rate, Rate5: t.rates[1].rate, Rate15: t.rates[2].rate}
	if len(t.window) > 0 {
		sorted := slices.Clone(t.window)
		slices.Sort(sorted)
		s.P50, s.P90, s.P95, s.P99 = percentile(sorted, .5), percentile(sorted, .9), percentile(sorted, .95), percentile(sorted, .99)
	}
	return s
}

// percentile interpolates between the two nearest ranks, in nanoseconds.
func percentile(sorted []time.Duration, p float64) float64 {
	pos := p * float64(len(sorted)+1)
	switch {
	case pos < 1:
		return float64(sorted[0])
	case pos >= float64(len(sorted)):
		return float64(sorted[len(sorted)-1])
	}
	lo := float64(sorted[int(pos)-1])
	hi := float64(sorted[int(pos)])
	return lo + (pos-math.Floor(pos))*(hi-lo)
}

// ewma is an exponentially weighted moving average of a rate per second.
type ewma struct {
	alpha float64
	rate  float64
	init  bool
}

func (e *ewma) tick(events int64) {
	instant := float64(events) / tickInterval.Seconds()
	if e.init {
		e.rate += e.alpha * (instant - e.rate)
	} else {
		e.rate, e.init = instant, true
	}
}
