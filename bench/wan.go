package main

import (
	"bufio"
	"fmt"
	"log"
	"net"
	"strings"
	"sync"
	"time"

	"porthole/internal/bytesize"
	"porthole/internal/linkemu"
)

// linkCase is an emulated agent–relay path.
type linkCase struct {
	name, label string
	delay       time.Duration // one way
	rate        int64         // bits per second
	reportOnly  bool          // measured, but with no target
	extras      bool          // also measure latency, first byte, reconnect and stalled readers
}

var allLinks = []linkCase{
	{name: "A", label: "same region", delay: 5 * time.Millisecond, rate: 1e9},
	{name: "B", label: "cross-continent", delay: 25 * time.Millisecond, rate: 1e9, extras: true},
	{name: "C", label: "home uplink far away", delay: 50 * time.Millisecond, rate: 100e6},
	{name: "D", label: "far and fast", delay: 100 * time.Millisecond, rate: 1e9, reportOnly: true},
}

// parseLinks picks links by name: "ABCD", "B", "A,C".
func parseLinks(s string) ([]linkCase, error) {
	var out []linkCase
	for _, r := range strings.ToUpper(strings.ReplaceAll(s, ",", "")) {
		found := false
		for _, l := range allLinks {
			if l.name == string(r) {
				out, found = append(out, l), true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown link %q (want letters of ABCD)", r)
		}
	}
	return out, nil
}

// queueTime is how much of the link's rate its queue holds.
const queueTime = 10 * time.Millisecond

func (l linkCase) path() linkemu.Path {
	return linkemu.Path{Delay: l.delay, Rate: l.rate, Queue: max(64<<10, int(l.rate/8*int64(queueTime)/int64(time.Second)))}
}

func (l linkCase) rtt() time.Duration { return 2 * l.delay }

func (l linkCase) title() string {
	return fmt.Sprintf("Link %s, %s: %v one way, %s", l.name, l.label, l.delay, linkemu.FormatRate(l.rate))
}

// wanSystem is one system's agents on the current link.
type wanSystem struct {
	*system
	proxy     *linkemu.Proxy // the link in front of the relay's agent listener
	http, tcp *proc
	host      string // the HTTP tunnel's public host
	tcpPort   int
}

// wan measures every emulated link and adds its sections.
func (h *harness) wan(rep *report) {
	emu := &notes{title: "The emulated links", note: fmt.Sprintf("Each link is emulated in user space (`internal/linkemu`) on the agent–relay path, and on the path of the direct runs: one-way delay, rate, and a queue of %v at the link's rate; a new connection pays one round trip for its handshake. The emulator is not the limit when a direct connection through it reaches the configured rate (the medians of the tables above vary with the machine's load; the best run shows what the emulator can carry).", queueTime)}
	for _, lc := range h.opts.links {
		tbl, extras, up, down := h.wanLink(lc)
		rep.add(tbl)
		if extras != nil {
			rep.add(extras)
		}
		r := float64(lc.rate)
		emu.add(fmt.Sprintf("Link %s: direct, 1 stream, up / down, best of %d runs", lc.name, h.opts.rounds),
			fmt.Sprintf("%s / %s of %s", mbit.format(up), mbit.format(down), linkemu.FormatRate(lc.rate)),
			fmt.Sprintf("≥ 0.90 × the rate (%s)", verdict(up >= 0.9*r && down >= 0.9*r)))
	}
	rep.add(emu)
}

// wanLink measures one link. It returns the link's table, its extra
// figures (if the link has them), and the best direct one-stream figures
// (upload, download), which show what the emulator itself can carry.
func (h *harness) wanLink(lc linkCase) (tbl *table, extras *notes, up, down float64) {
	log.Printf("link %s: %s", lc.name, lc.path())
	link := linkemu.Symmetric(lc.path())
	directTCP := must(link.Listen("127.0.0.1:0", fmt.Sprintf("127.0.0.1:%d", h.tcpTarget)))
	defer directTCP.Close()
	directHTTP := must(link.Listen("127.0.0.1:0", fmt.Sprintf("127.0.0.1:%d", h.upHTTP)))
	defer directHTTP.Close()
	var sys []*wanSystem
	// The links measure the working tree's build; -baseline is for the
	// loopback table, where a change must not cost.
	under := h.systems[:1]
	for _, s := range under {
		w := &wanSystem{system: s, proxy: must(link.Listen("127.0.0.1:0", s.agentAddr))}
		defer w.proxy.Close()
		var url string
		w.http, url = must2(s.startAgent("http", h.upHTTP, w.proxy.Addr(), "--name", "wan"))
		w.host = hostOf(url)
		w.tcp, url = must2(s.startAgent("tcp", h.tcpTarget, w.proxy.Addr()))
		w.tcpPort = urlPort(url)
		sys = append(sys, w)
	}
	defer func() {
		for _, s := range under {
			s.stopAgents()
		}
	}()

	bdp := float64(lc.rate) / 8 * lc.rtt().Seconds()
	tbl = &table{title: lc.title(), systems: []string{under[0].name},
		note: fmt.Sprintf("Round trip %v; bandwidth-delay product %.1f MiB.", lc.rtt(), bdp/(1<<20))}
	goal := atLeast(0.9)
	if lc.reportOnly {
		goal = nil
	}
	d, rounds := h.opts.duration, h.opts.rounds
	dir := map[bool]string{false: "upload", true: "download"}
	for _, streams := range []int{1, 8} {
		for _, download := range []bool{false, true} {
			tcp := func(port int) measure {
				return func() (float64, error) {
					r, err := tcpThroughput("127.0.0.1", port, streams, d, download)
					return r.bitsSec, err
				}
			}
			var tunnels []measure
			for _, w := range sys {
				tunnels = append(tunnels, tcp(w.tcpPort))
			}
			viaLink := tcp(portOf(directTCP.Addr()))
			if streams == 1 {
				// Keep the best direct run: what the emulator can carry.
				m, best := viaLink, &up
				if download {
					best = &down
				}
				viaLink = func() (float64, error) {
					v, err := m()
					*best = max(*best, v)
					return v, err
				}
			}
			direct, vals := interleave(rounds, viaLink, tunnels)
			name := fmt.Sprintf("TCP, %d stream, %s", streams, dir[download])
			if streams > 1 {
				name = fmt.Sprintf("TCP, %d streams, %s", streams, dir[download])
			}
			tbl.add(row{name: name, unit: mbit, direct: direct, values: vals, target: goal})
		}
	}
	size := h.opts.download
	for _, download := range []bool{true, false} {
		xfer := func(addr, host string) measure {
			return func() (float64, error) { return httpTransfer(addr, host, size, download) }
		}
		var tunnels []measure
		for _, w := range sys {
			tunnels = append(tunnels, xfer(w.httpAddr, w.host))
		}
		direct, vals := interleave(rounds, xfer(directHTTP.Addr(), "upstream"), tunnels)
		tbl.add(row{name: fmt.Sprintf("HTTP %s of %s", dir[download], sizeString(size)), unit: mbit, direct: direct, values: vals, target: goal})
	}
	if lc.extras {
		extras = h.wanExtras(lc, tbl, sys, directHTTP)
	}
	return tbl, extras, up, down
}

// wanExtras measures latency and the first byte of a new connection (rows
// of tbl), and the reconnect and stalled readers over one link.
func (h *harness) wanExtras(lc linkCase, tbl *table, sys []*wanSystem, directHTTP *linkemu.Proxy) *notes {
	var direct []httpResult
	tunnel := make([][]httpResult, len(sys))
	for range h.opts.rounds {
		direct = append(direct, must(retry(func() (httpResult, error) {
			return httpLoad("http://"+directHTTP.Addr()+"/hello", "", 8, h.opts.duration)
		})))
		for i, w := range sys {
			tunnel[i] = append(tunnel[i], must(retry(func() (httpResult, error) {
				return httpLoad("http://"+w.httpAddr+"/hello", w.host, 8, h.opts.duration)
			})))
		}
	}
	// One round trip, as measured: a request on a kept-alive direct
	// connection through the emulated link (its nominal delay plus the
	// emulator's own timer latency).
	var p50s []float64
	for _, r := range direct {
		p50s = append(p50s, float64(r.p50))
	}
	rtt := time.Duration(median(p50s))
	budget := below(rtt+2*time.Millisecond, fmt.Sprintf("one round trip + 2 ms = %v", (rtt+2*time.Millisecond).Round(100*time.Microsecond)))
	for _, p := range []struct {
		name string
		f    func(httpResult) float64
		goal target
	}{{"p50", func(r httpResult) float64 { return float64(r.p50) }, budget}, {"p99", func(r httpResult) float64 { return float64(r.p99) }, nil}} {
		var d []float64
		for _, r := range direct {
			d = append(d, p.f(r))
		}
		var vals []float64
		for _, rs := range tunnel {
			var xs []float64
			for _, r := range rs {
				xs = append(xs, p.f(r))
			}
			vals = append(vals, median(xs))
		}
		tbl.add(row{name: "HTTP /hello, 8 connections: " + p.name + " latency", unit: duration, direct: median(d), values: vals, target: p.goal})
	}

	// The first byte on a new public connection.
	var tunnels []measure
	for _, w := range sys {
		tunnels = append(tunnels, func() (float64, error) {
			d, err := firstByte(w.httpAddr, w.host)
			return float64(d), err
		})
	}
	fd, fv := interleave(max(9, 3*h.opts.rounds), func() (float64, error) {
		d, err := firstByte(directHTTP.Addr(), "upstream")
		return float64(d), err
	}, tunnels)
	tbl.add(row{name: "First byte on a new connection (median)", unit: duration, direct: fd, values: fv, target: budget})

	other := &notes{title: fmt.Sprintf("Link %s: reconnect and stalled readers", lc.name),
		note: fmt.Sprintf("The round trip of the targets above is the direct p50 (%v for a nominal %v). A new direct connection pays its own handshake across the link; a new public connection reaches the relay locally and rides the session that is already up.", rtt.Round(100*time.Microsecond), lc.rtt())}
	for _, w := range sys {
		var ms []string
		for range 3 {
			check(w.restartRelay())
			took := must(w.awaitTunnel(w.host, "/hello", time.Minute))
			ms = append(ms, fmt.Sprintf("%.0f ms", took.Seconds()*1000))
		}
		other.add("Reconnect after relay restart (from relay ready to a served request), "+w.name, strings.Join(ms, ", "), "")
	}
	// Stalled readers, on relays that have just restarted and carried
	// nothing else.
	for _, w := range sys {
		relayKiB, agentKiB := stalledReaders(w, h.opts.stalled, h.opts.stallFor)
		perStream := float64(relayKiB) / 1024 / float64(h.opts.stalled)
		result := fmt.Sprintf("relay RSS +%s, %.1f MiB per stalled stream", mib(relayKiB), perStream)
		if w.window > 0 {
			result += fmt.Sprintf(" (%.2f × its %s window)", perStream*(1<<20)/float64(w.window), bytesize.Format(w.window))
		}
		other.add(fmt.Sprintf("%d public clients read a large download at 1 KiB/s for %v, %s", h.opts.stalled, h.opts.stallFor, w.name),
			result+fmt.Sprintf("; forwarder RSS +%s", mib(agentKiB)), "")
	}
	return other
}

// stalledReaders starts n downloads through the system's HTTP tunnel whose
// clients then read 1 KiB a second, and returns how much the relay's and
// the forwarder's RSS grew after the given time.
func stalledReaders(w *wanSystem, n int, stall time.Duration) (relayKiB, agentKiB int64) {
	r0, a0 := w.relay.usage(), w.http.usage()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var conns []net.Conn
	for range n {
		c := must(net.Dial("tcp", w.httpAddr))
		conns = append(conns, c)
		fmt.Fprintf(c, "GET /bytes/%d HTTP/1.1\r\nHost: %s\r\n\r\n", int64(1)<<40, w.host)
		br := bufio.NewReaderSize(c, 1024)
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		line := must(br.ReadString('\n'))
		if !strings.Contains(line, " 200 ") {
			fatalf("stalled reader: %q", line)
		}
		c.SetReadDeadline(time.Time{})
		wg.Go(func() {
			buf := make([]byte, 1024)
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					if _, err := br.Read(buf); err != nil {
						return
					}
				}
			}
		})
	}
	time.Sleep(stall)
	r1, a1 := w.relay.usage(), w.http.usage()
	close(stop)
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	return r1.rssKiB - r0.rssKiB, a1.rssKiB - a0.rssKiB
}

func sizeString(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
