package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// bench holds the processes of one run.
type bench struct {
	dir                 string
	porthole            string
	upstream, relay     *proc
	iperfd              *proc
	httpAgent, tcpAgent *proc
	idleAgent           *proc
	inspectedAgent      *proc // an HTTP agent with its inspector on
	relayArgs           []string
	fingerprint         string
	agentAddr, httpAddr string
	upHTTP, upEcho      int
	tcpTarget           int // iperf3 server, or the sink
	tunnelHTTP          string
	tunnelInspected     string
	tunnelTCP           int
	tunnelIdle          int
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func setup() (*bench, error) {
	dir, err := os.MkdirTemp("", "porthole-bench")
	if err != nil {
		return nil, err
	}
	b := &bench{dir: dir, porthole: filepath.Join(dir, "porthole")}
	log.Printf("building porthole (CGO_ENABLED=0)")
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return nil, fmt.Errorf("find the module: %v", err)
	}
	build := exec.Command("go", "build", "-o", b.porthole, "./cmd/porthole")
	build.Dir = strings.TrimSpace(string(root))
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build: %v\n%s", err, out)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if b.upstream, err = startProc("upstream", self, "-serve-upstream", "127.0.0.1"); err != nil {
		return nil, err
	}
	for _, name := range []string{"http", "echo", "sink"} {
		m, err := b.upstream.await(`^` + name + ` (\d+)$`)
		if err != nil {
			return nil, err
		}
		p, _ := strconv.Atoi(m[1])
		switch name {
		case "http":
			b.upHTTP = p
		case "echo":
			b.upEcho = p
		case "sink":
			b.tcpTarget = p
		}
	}
	if _, err := exec.LookPath("iperf3"); err == nil {
		// iperf3 cannot pick its own port: try free ones until one sticks.
		_, err := retry(func() (struct{}, error) {
			b.tcpTarget = freePort()
			b.iperfd, err = startProc("iperf3", "iperf3", "-s", "--forceflush", "-B", "127.0.0.1", "-p", strconv.Itoa(b.tcpTarget))
			if err == nil {
				_, err = b.iperfd.await(`Server listening on`)
			}
			return struct{}{}, err
		})
		if err != nil {
			return nil, err
		}
	}
	// The relay picks its ports; restarts reuse them.
	b.relayArgs = []string{b.porthole, "relay", "--addr", "127.0.0.1:0", "--http", "127.0.0.1:0", "--tcp-ports", "0",
		"--state-dir", filepath.Join(dir, "relay"), "--token", "bench", "--log-level", "error"}
	if err := b.startRelay(); err != nil {
		return nil, err
	}
	b.relayArgs[3], b.relayArgs[5] = b.agentAddr, b.httpAddr
	agent := func(kind string, upstream int, extra ...string) (*proc, string, error) {
		args := append([]string{b.porthole, kind, strconv.Itoa(upstream), "--relay", b.agentAddr, "--token", "bench",
			"--relay-fingerprint", b.fingerprint, "--log-level", "error"}, extra...)
		p, err := startProc(kind+" agent", args...)
		if err != nil {
			return nil, "", err
		}
		m, err := p.await(`^forwarding (\S+) -> `)
		if err != nil {
			return nil, "", err
		}
		return p, m[1], nil
	}
	var url string
	if b.httpAgent, url, err = agent("http", b.upHTTP, "--name", "bench", "--web-addr=false"); err != nil {
		return nil, err
	}
	b.tunnelHTTP = url
	if b.inspectedAgent, url, err = agent("http", b.upHTTP, "--name", "inspected", "--web-addr", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	b.tunnelInspected = url
	if b.tcpAgent, url, err = agent("tcp", b.tcpTarget); err != nil {
		return nil, err
	}
	b.tunnelTCP = urlPort(url)
	if b.idleAgent, url, err = agent("tcp", b.upEcho); err != nil {
		return nil, err
	}
	b.tunnelIdle = urlPort(url)
	return b, nil
}

func (b *bench) startRelay() error {
	var err error
	if b.relay, err = startProc("relay", b.relayArgs...); err != nil {
		return err
	}
	for _, line := range []struct {
		re  string
		dst *string
	}{{`^agents: (\S+)$`, &b.agentAddr}, {`^http: (\S+)$`, &b.httpAddr}, {`^fingerprint: (\S+)$`, &b.fingerprint}} {
		m, err := b.relay.await(line.re)
		if err != nil {
			return err
		}
		*line.dst = m[1]
	}
	return nil
}

func urlPort(u string) int {
	_, p, _ := net.SplitHostPort(u[len("tcp://"):])
	n, _ := strconv.Atoi(p)
	return n
}

func (b *bench) tools() string {
	http, tcp := "Go load generator", "Go load generator"
	if _, err := exec.LookPath("wrk"); err == nil {
		http = "wrk"
	}
	if _, err := exec.LookPath("iperf3"); err == nil {
		tcp = "iperf3"
	}
	return fmt.Sprintf("HTTP load: %s; TCP load: %s", http, tcp)
}

func (b *bench) close() {
	for _, p := range []*proc{b.httpAgent, b.inspectedAgent, b.tcpAgent, b.idleAgent, b.relay, b.iperfd, b.upstream} {
		if p != nil {
			p.stop()
		}
	}
	os.RemoveAll(b.dir)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// run measures every case and fills the report.
func (b *bench) run(rep *report, d time.Duration, rounds, idle int) {
	// TCP throughput.
	for _, streams := range []int{1, 8} {
		var direct, tunnel []float64
		for range rounds {
			r, err := retry(func() (tcpResult, error) { return tcpThroughput("127.0.0.1", b.tcpTarget, streams, d) })
			check(err)
			direct = append(direct, r.bitsSec)
			r, err = retry(func() (tcpResult, error) { return tcpThroughput("127.0.0.1", b.tunnelTCP, streams, d) })
			check(err)
			tunnel = append(tunnel, r.bitsSec)
		}
		target := map[int]float64{1: 0.30, 8: 0.35}[streams]
		name := "TCP, 1 stream"
		if streams > 1 {
			name = fmt.Sprintf("TCP, %d parallel streams", streams)
		}
		rep.ratio(name, median(direct), median(tunnel), gbit, target)
	}

	// HTTP: small and large responses, with the relay's and forwarder's use.
	type httpCase struct {
		name, path string
		conns      int
		target     float64
	}
	for _, c := range []httpCase{{"HTTP /hello, 50 connections", "/hello", 50, 0.25}, {"HTTP /1m, 8 connections", "/1m", 8, 0.35}} {
		var direct, tunnel []httpResult
		b.relay.resetPeak()
		b.httpAgent.resetPeak()
		r0, a0 := b.relay.usage(), b.httpAgent.usage()
		var tunnelTime time.Duration
		for range rounds {
			r, err := retry(func() (httpResult, error) {
				return httpLoad(fmt.Sprintf("http://127.0.0.1:%d%s", b.upHTTP, c.path), "", c.conns, d)
			})
			check(err)
			direct = append(direct, r)
			t0 := time.Now()
			r, err = retry(func() (httpResult, error) {
				return httpLoad("http://"+b.httpAddr+c.path, hostOf(b.tunnelHTTP), c.conns, d)
			})
			check(err)
			tunnelTime += time.Since(t0)
			tunnel = append(tunnel, r)
		}
		r1, a1 := b.relay.usage(), b.httpAgent.usage()
		pick := func(rs []httpResult, f func(httpResult) float64) float64 {
			var xs []float64
			for _, r := range rs {
				xs = append(xs, f(r))
			}
			return median(xs)
		}
		rps := func(r httpResult) float64 { return r.rps }
		rep.ratio(c.name+": requests/s", pick(direct, rps), pick(tunnel, rps), perSec, c.target)
		if c.path == "/hello" {
			p99 := func(r httpResult) float64 { return float64(r.p99) }
			p50 := func(r httpResult) float64 { return float64(r.p50) }
			rep.latency(c.name+": p50 latency", pick(direct, p50), pick(tunnel, p50), 0)
			rep.latency(c.name+": p99 latency", pick(direct, p99), pick(tunnel, p99), 3)
		} else {
			bw := func(r httpResult) float64 { return r.bytesSec * 8 }
			rep.ratio(c.name+": throughput", pick(direct, bw), pick(tunnel, bw), gbit, 0)
		}
		rep.resources(c.name, r1.peakKiB, a1.peakKiB, r1.cpu-r0.cpu, a1.cpu-a0.cpu, tunnelTime)
	}

	// The inspector's capture, against the same tunnel without it.
	var plain, inspected []float64
	for range rounds {
		for _, c := range []struct {
			url string
			to  *[]float64
		}{{b.tunnelHTTP, &plain}, {b.tunnelInspected, &inspected}} {
			r, err := retry(func() (httpResult, error) { return httpLoad("http://"+b.httpAddr+"/hello", hostOf(c.url), 50, d) })
			check(err)
			*c.to = append(*c.to, r.rps)
		}
	}
	rep.ratio("HTTP /hello, 50 connections: requests/s, inspector on (tunnel) vs off (direct column)", median(plain), median(inspected), perSec, 0.90)

	// Idle connections held through a tunnel.
	if idle > 0 {
		relayKiB, agentKiB := b.idleConns(idle)
		rep.idle(idle, relayKiB, agentKiB)
	}

	// Reconnect after a relay restart.
	var ms []float64
	for range 3 {
		ms = append(ms, float64(b.reconnect())/float64(time.Millisecond))
	}
	rep.reconnect(ms)
}

func hostOf(url string) string { return url[len("http://"):] }

// retry runs a measurement up to three times: iperf3's server needs a moment
// between tests, and a loaded machine may drop a connection.
func retry[T any](f func() (T, error)) (T, error) {
	var v T
	var err error
	for i := range 3 {
		if v, err = f(); err == nil {
			return v, nil
		}
		log.Printf("retrying after: %v", err)
		time.Sleep(time.Duration(i+1) * 200 * time.Millisecond)
	}
	return v, err
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

// idleConns opens n connections through the echo tunnel, makes sure each
// carries a byte end to end, and returns the growth in RSS per connection.
func (b *bench) idleConns(n int) (relayKiB, agentKiB float64) {
	before := [2]usage{b.relay.usage(), b.idleAgent.usage()}
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	addr := fmt.Sprintf("127.0.0.1:%d", b.tunnelIdle)
	one := make([]byte, 1)
	for range n {
		c, err := net.Dial("tcp", addr)
		check(err)
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = c.Write([]byte{'x'})
		check(err)
		_, err = io.ReadFull(c, one)
		check(err)
	}
	after := [2]usage{b.relay.usage(), b.idleAgent.usage()}
	return float64(after[0].rssKiB-before[0].rssKiB) / float64(n), float64(after[1].rssKiB-before[1].rssKiB) / float64(n)
}

// reconnect kills the relay, starts it again on the same addresses and
// state, and returns the time from the relay being ready until a request
// through the tunnel succeeds.
func (b *bench) reconnect() time.Duration {
	b.relay.kill()
	check(b.startRelay())
	ready := time.Now()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := ready.Add(60 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("GET", "http://"+b.httpAddr+"/hello", nil)
		req.Host = hostOf(b.tunnelHTTP)
		if resp, err := client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return time.Since(ready)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	log.Fatal("the tunnel did not come back within a minute")
	return 0
}
