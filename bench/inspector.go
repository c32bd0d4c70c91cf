package main

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"slices"
	"sync"
	"time"
)

// inspected is an agent with its inspector on, beside a system's plain
// HTTP agent for the same upstream.
type inspected struct {
	agent *proc
	host  string // its tunnel's public host
	api   string // its agent API, "http://127.0.0.1:PORT"
}

// storeStatus is the "inspect" part of GET /api/status.
type storeStatus struct {
	Requests int   `json:"requests"`
	Bytes    int64 `json:"bytes"`
	Budget   int64 `json:"budget"`
}

func (in inspected) status() (storeStatus, error) {
	var st struct{ Inspect storeStatus }
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(in.api + "/api/status")
	if err != nil {
		return st.Inspect, err
	}
	defer resp.Body.Close()
	return st.Inspect, json.NewDecoder(resp.Body).Decode(&st)
}

// run is one load run's requests/s and the agent's CPU seconds per request.
type run struct{ rps, cpu float64 }

func field(rs []run, f func(run) float64) []float64 {
	var out []float64
	for _, r := range rs {
		out = append(out, f(r))
	}
	return out
}

// pairRatios returns the median, least and greatest of on[i]/off[i].
func pairRatios(on, off []run, f func(run) float64) (mid, lo, hi float64) {
	var rs []float64
	for i := range off {
		rs = append(rs, f(on[i])/f(off[i]))
	}
	return median(rs), slices.Min(rs), slices.Max(rs)
}

// inspectorCost measures what the inspector costs on one system: /hello
// with 50 connections through the agent that captures every exchange,
// against the same tunnel through the agent without an inspector. Its
// store is filled first and turned over once (with load for at most
// fill), as a while of traffic does, so that eviction runs too. Then come
// pairs of runs of d (whole seconds, as wrk takes them), the order swapped
// from pair to pair, so that the two runs of a pair see the same load from
// the rest of the machine; then as many pairs run at the same time, which
// see the same machine at every moment. Both give requests/s, and each
// agent's CPU time per request (from /proc), which other load disturbs
// less than throughput; each figure is the median of the pairs' ratios,
// with their range. Last, both agents' resident memory.
func inspectorCost(s *system, off *proc, offHost string, on inspected, d, fill time.Duration, pairs int) *notes {
	n := &notes{title: "The inspector on loopback, " + s.name}
	url := "http://" + s.httpAddr + "/hello"
	// Fill the store to 90 % of its budget, then send as many requests
	// again as it holds then, so that it has turned over at least once
	// (its memory is all touched) and evicts as it goes.
	fillStart := time.Now()
	var sent, turn float64
	for time.Since(fillStart) < fill {
		st, err := on.status()
		check(err)
		if turn == 0 && st.Bytes >= st.Budget*9/10 {
			turn = float64(st.Requests)
		}
		if turn > 0 && sent >= turn {
			break
		}
		r := must(retry(func() (httpResult, error) { return httpLoad(url, on.host, 50, d) }))
		if turn > 0 {
			sent += r.rps * d.Seconds()
		}
	}
	st, err := on.status()
	check(err)
	full := float64(st.Bytes) / float64(st.Budget)
	log.Printf("%s: inspector store holds %d exchanges in %d of %d bytes after %v of load",
		s.name, st.Requests, st.Bytes, st.Budget, time.Since(fillStart).Round(time.Second))
	measure := func(p *proc, host string) run {
		before := p.usage().cpu
		r := must(retry(func() (httpResult, error) { return httpLoad(url, host, 50, d) }))
		return run{r.rps, (p.usage().cpu - before).Seconds() / (r.rps * d.Seconds())}
	}
	// Pairs of runs one after the other, then pairs of runs at the same
	// time (each agent with its own 50 connections), which see the same
	// machine at every moment.
	var offRuns, onRuns, offBoth, onBoth []run
	for i := range pairs {
		if i%2 == 0 {
			offRuns, onRuns = append(offRuns, measure(off, offHost)), append(onRuns, measure(on.agent, on.host))
		} else {
			onRuns, offRuns = append(onRuns, measure(on.agent, on.host)), append(offRuns, measure(off, offHost))
		}
	}
	for range pairs {
		var wg sync.WaitGroup
		var a, b run
		wg.Go(func() { a = measure(on.agent, on.host) })
		wg.Go(func() { b = measure(off, offHost) })
		wg.Wait()
		onBoth, offBoth = append(onBoth, a), append(offBoth, b)
	}
	rps := func(r run) float64 { return r.rps }
	cpu := func(r run) float64 { return r.cpu }
	for _, c := range []struct {
		how     string
		on, off []run
	}{{"one after the other", onRuns, offRuns}, {"both at once", onBoth, offBoth}} {
		ratio, lo, hi := pairRatios(c.on, c.off, rps)
		n.add(fmt.Sprintf("HTTP /hello, 50 connections: requests/s, inspector on vs off, %d pairs of %v %s (store %.0f %% full)", pairs, d, c.how, 100*full),
			fmt.Sprintf("%.0f/s vs %.0f/s; pairs %.2f × (%.2f–%.2f ×)", median(field(c.on, rps)), median(field(c.off, rps)), ratio, lo, hi),
			fmt.Sprintf("≥ 0.90 × (%s)", verdict(ratio >= 0.9)))
		ratio, lo, hi = pairRatios(c.on, c.off, cpu)
		n.add("Agent CPU time per /hello request, inspector on vs off, "+c.how,
			fmt.Sprintf("%.0f µs vs %.0f µs; pairs %+.0f %% (%+.0f to %+.0f %%)", 1e6*median(field(c.on, cpu)), 1e6*median(field(c.off, cpu)),
				100*(ratio-1), 100*(lo-1), 100*(hi-1)),
			fmt.Sprintf("≤ +10 %% (%s)", verdict(ratio <= 1.1)))
	}
	st, err = on.status()
	check(err)
	onRSS, offRSS := on.agent.usage().rssKiB, off.usage().rssKiB
	extra := float64(onRSS-offRSS) * 1024
	n.add(fmt.Sprintf("Agent resident memory, inspector on (store %.0f %% full) vs off", 100*float64(st.Bytes)/float64(st.Budget)),
		fmt.Sprintf("%s vs %s: %+.1f MiB for %d exchanges kept in %.1f of %.1f MiB", mib(onRSS), mib(offRSS),
			extra/(1<<20), st.Requests, float64(st.Bytes)/(1<<20), float64(st.Budget)/(1<<20)),
		fmt.Sprintf("≤ budget + 10 %% (%s)", verdict(extra <= 1.1*float64(st.Budget))))
	return n
}
