package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// httpResult is one HTTP load run.
type httpResult struct {
	rps      float64
	p50, p99 time.Duration
	bytesSec float64
}

// tcpResult is one TCP throughput run.
type tcpResult struct {
	bitsSec float64
}

// httpLoad drives GET url (with a Host header) for d with conns connections.
func httpLoad(url, host string, conns int, d time.Duration) (httpResult, error) {
	if _, err := exec.LookPath("wrk"); err == nil {
		return wrk(url, host, conns, d)
	}
	return goHTTPLoad(url, host, conns, d)
}

var (
	wrkRPS     = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	wrkBytes   = regexp.MustCompile(`Transfer/sec:\s+([\d.]+)([KMG]?B)`)
	wrkPercent = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)`)
)

func wrk(url, host string, conns int, d time.Duration) (httpResult, error) {
	threads := min(2, conns)
	args := []string{"-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns), "-d", fmt.Sprintf("%ds", max(1, int(d.Seconds()))), "--latency"}
	if host != "" {
		args = append(args, "-H", "Host: "+host)
	}
	out, err := exec.Command("wrk", append(args, url)...).CombinedOutput()
	if err != nil {
		return httpResult{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	s := string(out)
	var r httpResult
	if m := wrkRPS.FindStringSubmatch(s); m != nil {
		r.rps, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := wrkBytes.FindStringSubmatch(s); m != nil {
		v, _ := strconv.ParseFloat(m[1], 64)
		r.bytesSec = v * map[string]float64{"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}[m[2]]
	}
	for _, m := range wrkPercent.FindAllStringSubmatch(s, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		dur := time.Duration(v * float64(map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[m[3]]))
		if m[1] == "50" {
			r.p50 = dur
		} else {
			r.p99 = dur
		}
	}
	if strings.Contains(s, "Non-2xx") || strings.Contains(s, "Socket errors") && !strings.Contains(s, "Socket errors: connect 0, read 0, write 0, timeout 0") {
		return r, fmt.Errorf("wrk saw errors:\n%s", s)
	}
	return r, nil
}

// goHTTPLoad is the fallback when wrk is missing.
func goHTTPLoad(url, host string, conns int, d time.Duration) (httpResult, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	var lat []time.Duration
	var bytes atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range conns {
		wg.Go(func() {
			var mine []time.Duration
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
				req.Host = host
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						firstErr.CompareAndSwap(nil, err)
					}
					break
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if ctx.Err() != nil {
					break
				}
				bytes.Add(n)
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	if err, _ := firstErr.Load().(error); err != nil {
		return httpResult{}, err
	}
	slices.Sort(lat)
	r := httpResult{rps: float64(len(lat)) / el, bytesSec: float64(bytes.Load()) / el}
	if len(lat) > 0 {
		r.p50, r.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return r, nil
}

// tcpThroughput sends to addr on streams parallel connections for d.
func tcpThroughput(host string, port, streams int, d time.Duration) (tcpResult, error) {
	if _, err := exec.LookPath("iperf3"); err == nil {
		return iperf(host, port, streams, d)
	}
	return goTCPLoad(net.JoinHostPort(host, strconv.Itoa(port)), streams, d)
}

func iperf(host string, port, streams int, d time.Duration) (tcpResult, error) {
	out, err := exec.Command("iperf3", "-c", host, "-p", strconv.Itoa(port), "-P", strconv.Itoa(streams),
		"-t", strconv.Itoa(max(1, int(d.Seconds()))), "-J").Output()
	if err != nil {
		return tcpResult{}, fmt.Errorf("iperf3: %v\n%s", err, out)
	}
	var r struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &r); err != nil || r.Error != "" {
		return tcpResult{}, fmt.Errorf("iperf3: %v %s", err, r.Error)
	}
	return tcpResult{bitsSec: r.End.SumReceived.BitsPerSecond}, nil
}

// goTCPLoad is the fallback when iperf3 is missing: it writes to a sink.
func goTCPLoad(addr string, streams int, d time.Duration) (tcpResult, error) {
	var total atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	buf := make([]byte, 128<<10)
	deadline := time.Now().Add(d)
	for range streams {
		wg.Go(func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
				return
			}
			defer c.Close()
			c.SetWriteDeadline(deadline)
			for {
				n, err := c.Write(buf)
				total.Add(int64(n))
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return tcpResult{}, err
	}
	return tcpResult{bitsSec: float64(total.Load()*8) / d.Seconds()}, nil
}
