package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// options are the run's settings, from the command line.
type options struct {
	duration   time.Duration // length of each load run
	rounds     int           // direct/tunnel rounds per case
	idle       int           // idle connections to hold (loopback)
	loopback   bool          // run the loopback cases
	wan        bool          // run the emulated-link cases
	links      []linkCase
	download   int64         // bytes per HTTP transfer over a link
	stalled    int           // stalled public readers
	stallFor   time.Duration // how long they stall before the relay is measured
	relayFlags []string      // extra flags for the relay under test
	agentFlags []string      // extra flags for its agents
	baseline   string        // git revision to measure beside the working tree

	inspectorFill time.Duration // longest load that fills an inspector's store before it is measured
}

// harness holds the processes of one run: the upstreams, and one system
// per build under test.
type harness struct {
	opts             options
	dir              string
	upstream, iperfd *proc
	upHTTP, upEcho   int
	tcpTarget        int // iperf3's server, or the Go load server
	systems          []*system
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatalf("%v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// setup builds porthole and starts the upstreams and a relay per build.
// On failure it stops whatever it started.
func setup(opts options) (_ *harness, err error) {
	dir, err := os.MkdirTemp("", "porthole-bench")
	if err != nil {
		return nil, err
	}
	h := &harness{opts: opts, dir: dir}
	defer func() {
		if err != nil {
			h.close()
		}
	}()
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return nil, fmt.Errorf("find the module: %v", err)
	}
	moduleDir := strings.TrimSpace(string(root))
	log.Printf("building porthole (CGO_ENABLED=0)")
	bin := filepath.Join(dir, "porthole")
	if err := buildPorthole(moduleDir, bin); err != nil {
		return nil, err
	}
	var baseBin string
	if opts.baseline != "" {
		log.Printf("building porthole at %s", opts.baseline)
		baseBin = filepath.Join(dir, "porthole-baseline")
		if err := buildRevision(moduleDir, opts.baseline, baseBin); err != nil {
			return nil, err
		}
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if h.upstream, err = startProc("upstream", self, "-serve-upstream", "127.0.0.1"); err != nil {
		return nil, err
	}
	for _, name := range []string{"http", "echo", "tcpload"} {
		m, err := h.upstream.await(`^` + name + ` (\d+)$`)
		if err != nil {
			return nil, err
		}
		p, _ := strconv.Atoi(m[1])
		switch name {
		case "http":
			h.upHTTP = p
		case "echo":
			h.upEcho = p
		case "tcpload":
			h.tcpTarget = p
		}
	}
	if have("iperf3") {
		// iperf3 cannot pick its own port: try free ones until one sticks.
		_, err := retry(func() (struct{}, error) {
			h.tcpTarget = freePort()
			h.iperfd, err = startProc("iperf3", "iperf3", "-s", "--forceflush", "-B", "127.0.0.1", "-p", strconv.Itoa(h.tcpTarget))
			if err == nil {
				_, err = h.iperfd.await(`Server listening on`)
			}
			return struct{}{}, err
		})
		if err != nil {
			return nil, err
		}
	}
	s, err := newSystem("tunnel", bin, filepath.Join(dir, "new"), opts.relayFlags, opts.agentFlags)
	if err != nil {
		return nil, err
	}
	h.systems = append(h.systems, s)
	if baseBin != "" {
		s, err := newSystem("baseline ("+opts.baseline+")", baseBin, filepath.Join(dir, "baseline"), nil, nil)
		if err != nil {
			return nil, err
		}
		s.window = 0 // not known for another build
		h.systems = append(h.systems, s)
	}
	return h, nil
}

func (h *harness) names() []string {
	var out []string
	for _, s := range h.systems {
		out = append(out, s.name)
	}
	return out
}

func (h *harness) tools() string {
	http, tcp := "Go load generator", "Go load generator"
	if have("wrk") {
		http = "wrk"
	}
	if have("iperf3") {
		tcp = "iperf3"
	}
	return fmt.Sprintf("HTTP load: %s; TCP load: %s", http, tcp)
}

func (h *harness) close() {
	for _, s := range h.systems {
		s.close()
	}
	for _, p := range []*proc{h.iperfd, h.upstream} {
		if p != nil {
			p.stop()
		}
	}
	os.RemoveAll(h.dir)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// measure is one run of a case; it returns the figure.
type measure func() (float64, error)

// interleave runs direct, then each tunnel, once per round, and returns
// the medians. A nil direct is skipped.
func interleave(rounds int, direct measure, tunnels []measure) (float64, []float64) {
	var d []float64
	t := make([][]float64, len(tunnels))
	for range rounds {
		if direct != nil {
			d = append(d, must(retry(direct)))
		}
		for i, m := range tunnels {
			t[i] = append(t[i], must(retry(m)))
		}
	}
	out := make([]float64, len(t))
	for i := range t {
		out[i] = median(t[i])
	}
	return median(d), out
}

// retry runs a measurement up to five times: iperf3's server needs a
// moment between tests (more after a test over a slow link), and a loaded
// machine may drop a connection.
func retry[T any](f func() (T, error)) (T, error) {
	var v T
	var err error
	for i := range 5 {
		if v, err = f(); err == nil {
			return v, nil
		}
		log.Printf("retrying after: %v", err)
		time.Sleep(time.Duration(i+1) * 300 * time.Millisecond)
	}
	return v, err
}

// stopAll stops every process the run started; fatalf calls it, so that a
// failed run leaves nothing behind.
var stopAll = func() {}

// fatalf stops the run's processes, logs and exits.
func fatalf(format string, args ...any) {
	stopAll()
	log.Fatalf(format, args...)
}

func must[T any](v T, err error) T {
	if err != nil {
		fatalf("%v", err)
	}
	return v
}

func check(err error) {
	if err != nil {
		fatalf("%v", err)
	}
}

// loopbackAgents are one system's agents for the loopback cases.
type loopbackAgents struct {
	http, tcp, idle *proc
	host            string    // the HTTP tunnel's public host
	inspected       inspected // the same upstream through an agent with its inspector on, if the build has one
	tcpPort         int
	idlePort        int
}

// loopback measures every case on loopback and adds its sections.
func (h *harness) loopback(rep *report) {
	d, rounds := h.opts.duration, h.opts.rounds
	agents := make([]loopbackAgents, len(h.systems))
	for i, s := range h.systems {
		a := &agents[i]
		var url string
		a.http, url = must2(s.startAgent("http", h.upHTTP, s.agentAddr, "--name", "bench"))
		a.host = hostOf(url)
		if s.inspector {
			api := fmt.Sprintf("127.0.0.1:%d", freePort())
			a.inspected.agent, url = must2(s.startAgent("http", h.upHTTP, s.agentAddr, "--name", "inspected", "--web-addr", api))
			a.inspected.host, a.inspected.api = hostOf(url), "http://"+api
		}
		a.tcp, url = must2(s.startAgent("tcp", h.tcpTarget, s.agentAddr))
		a.tcpPort = urlPort(url)
		a.idle, url = must2(s.startAgent("tcp", h.upEcho, s.agentAddr))
		a.idlePort = urlPort(url)
	}
	defer func() {
		for _, s := range h.systems {
			s.stopAgents()
		}
	}()
	tbl := &table{title: "Loopback", systems: h.names()}

	for _, streams := range []int{1, 8} {
		tcp := func(port int) measure {
			return func() (float64, error) {
				r, err := tcpThroughput("127.0.0.1", port, streams, d, false)
				return r.bitsSec, err
			}
		}
		var tunnels []measure
		for _, a := range agents {
			tunnels = append(tunnels, tcp(a.tcpPort))
		}
		direct, vals := interleave(rounds, tcp(h.tcpTarget), tunnels)
		name := "TCP, 1 stream"
		if streams > 1 {
			name = fmt.Sprintf("TCP, %d parallel streams", streams)
		}
		tbl.add(row{name: name, unit: gbit, direct: direct, values: vals, target: atLeast(map[int]float64{1: 0.30, 8: 0.35}[streams])})
	}

	// HTTP: small and large responses, with the relay's and forwarder's use.
	res := &notes{title: "Resources during the loopback HTTP load"}
	for _, c := range []struct {
		name, path string
		conns      int
		target     float64
	}{{"HTTP /hello, 50 connections", "/hello", 50, 0.25}, {"HTTP /1m, 8 connections", "/1m", 8, 0.35}} {
		var direct []httpResult
		tunnel := make([][]httpResult, len(h.systems))
		before := make([][2]usage, len(h.systems))
		walls := make([]time.Duration, len(h.systems))
		for i, s := range h.systems {
			s.relay.resetPeak()
			agents[i].http.resetPeak()
			before[i] = [2]usage{s.relay.usage(), agents[i].http.usage()}
		}
		for range rounds {
			direct = append(direct, must(retry(func() (httpResult, error) {
				return httpLoad(fmt.Sprintf("http://127.0.0.1:%d%s", h.upHTTP, c.path), "", c.conns, d)
			})))
			for i, s := range h.systems {
				t0 := time.Now()
				tunnel[i] = append(tunnel[i], must(retry(func() (httpResult, error) {
					return httpLoad("http://"+s.httpAddr+c.path, agents[i].host, c.conns, d)
				})))
				walls[i] += time.Since(t0)
			}
		}
		pick := func(rs []httpResult, f func(httpResult) float64) float64 {
			var xs []float64
			for _, r := range rs {
				xs = append(xs, f(r))
			}
			return median(xs)
		}
		picks := func(f func(httpResult) float64) []float64 {
			var out []float64
			for _, rs := range tunnel {
				out = append(out, pick(rs, f))
			}
			return out
		}
		rps := func(r httpResult) float64 { return r.rps }
		tbl.add(row{name: c.name + ": requests/s", unit: perSec, direct: pick(direct, rps), values: picks(rps), target: atLeast(c.target)})
		if c.path == "/hello" {
			p50 := func(r httpResult) float64 { return float64(r.p50) }
			p99 := func(r httpResult) float64 { return float64(r.p99) }
			tbl.add(row{name: c.name + ": p50 latency", unit: duration, direct: pick(direct, p50), values: picks(p50)})
			tbl.add(row{name: c.name + ": p99 latency", unit: duration, direct: pick(direct, p99), values: picks(p99), target: atMost(3)})
		} else {
			bw := func(r httpResult) float64 { return r.bytesSec * 8 }
			tbl.add(row{name: c.name + ": throughput", unit: gbit, direct: pick(direct, bw), values: picks(bw)})
		}
		for i, s := range h.systems {
			r1, a1 := s.relay.usage(), agents[i].http.usage()
			res.add(fmt.Sprintf("%s, %s", c.name, s.name), fmt.Sprintf("relay peak %s, forwarder peak %s; CPU relay %.1f s, forwarder %.1f s in %.1f s",
				mib(r1.peakKiB), mib(a1.peakKiB), (r1.cpu-before[i][0].cpu).Seconds(), (a1.cpu-before[i][1].cpu).Seconds(), walls[i].Seconds()),
				fmt.Sprintf("≤ 40 MiB each (%s)", verdict(r1.peakKiB <= 40<<10 && a1.peakKiB <= 40<<10)))
		}
	}
	rep.add(tbl)
	rep.add(res)

	// The inspector's capture, against the same tunnel without it.
	for i, s := range h.systems {
		if agents[i].inspected.agent != nil {
			rep.add(inspectorCost(s, agents[i].http, agents[i].host, agents[i].inspected, max((d/2).Truncate(time.Second), time.Second), h.opts.inspectorFill, 4*rounds))
		}
	}

	conns := &notes{title: "Loopback connections and reconnects"}
	if h.opts.idle > 0 {
		for i, s := range h.systems {
			relayKiB, agentKiB := idleConns(s.relay, agents[i].idle, agents[i].idlePort, h.opts.idle)
			total := relayKiB + agentKiB
			conns.add(fmt.Sprintf("Idle tunneled connections (%d held), %s", h.opts.idle, s.name),
				fmt.Sprintf("relay %.1f KiB + forwarder %.1f KiB = %.1f KiB per connection", relayKiB, agentKiB, total),
				fmt.Sprintf("≤ 40 KiB (%s)", verdict(total <= 40)))
		}
	}
	for i, s := range h.systems {
		var ms []string
		worst := time.Duration(0)
		for range 3 {
			check(s.restartRelay())
			took := must(s.awaitTunnel(agents[i].host, "/hello", time.Minute))
			ms = append(ms, fmt.Sprintf("%.0f ms", took.Seconds()*1000))
			worst = max(worst, took)
		}
		conns.add("Reconnect after relay restart (from relay ready to a served request), "+s.name,
			strings.Join(ms, ", "), fmt.Sprintf("≤ 1 s (%s)", verdict(worst <= time.Second)))
	}
	rep.add(conns)
}

func must2[A, B any](a A, b B, err error) (A, B) {
	if err != nil {
		fatalf("%v", err)
	}
	return a, b
}

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

// idleConns opens n connections through the echo tunnel at port, makes sure
// each carries a byte end to end, and returns the growth in RSS per
// connection of the relay and the agent.
func idleConns(relay, agent *proc, port, n int) (relayKiB, agentKiB float64) {
	before := [2]usage{relay.usage(), agent.usage()}
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	one := make([]byte, 1)
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			conns = append(conns, c)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			_, err = c.Write([]byte{'x'})
		}
		if err == nil {
			_, err = io.ReadFull(c, one)
		}
		if err != nil {
			fatalf("idle connection %d of %d through %s: %v", i+1, n, addr, err)
		}
	}
	after := [2]usage{relay.usage(), agent.usage()}
	return float64(after[0].rssKiB-before[0].rssKiB) / float64(n), float64(after[1].rssKiB-before[1].rssKiB) / float64(n)
}
