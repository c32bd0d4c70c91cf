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

// goLoad makes the run use its Go load generators even where wrk and
// iperf3 are installed (as they are not in CI), so that those paths can be
// tested anywhere.
var goLoad bool

// have reports whether a load tool is installed and may be used.
func have(tool string) bool {
	if goLoad {
		return false
	}
	_, err := exec.LookPath(tool)
	return err == nil
}

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
	if have("wrk") {
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

// tcpThroughput moves data over streams parallel connections to the TCP
// load server at host:port for d: uploads to it, or downloads from it.
func tcpThroughput(host string, port, streams int, d time.Duration, download bool) (tcpResult, error) {
	if have("iperf3") {
		return iperf(host, port, streams, d, download)
	}
	return goTCPLoad(net.JoinHostPort(host, strconv.Itoa(port)), streams, d, download)
}

func iperf(host string, port, streams int, d time.Duration, download bool) (tcpResult, error) {
	args := []string{"-c", host, "-p", strconv.Itoa(port), "-P", strconv.Itoa(streams),
		"-t", strconv.Itoa(max(1, int(d.Seconds()))), "-J"}
	if download {
		args = append(args, "-R")
	}
	out, err := exec.Command("iperf3", args...).Output()
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

// goTCPLoad is the fallback when iperf3 is missing; it talks to the bench's
// own TCP load server (see serveTCPLoad). Like iperf3 it reports what the
// receiving end got: downloads count what the client reads in d, uploads
// take the server's count and time, which include the bytes still in
// flight when the client stopped writing.
func goTCPLoad(addr string, streams int, d time.Duration, download bool) (tcpResult, error) {
	var mu sync.Mutex
	var bitsSec float64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	deadline := time.Now().Add(d)
	for range streams {
		wg.Go(func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
				return
			}
			defer c.Close()
			buf := make([]byte, 128<<10)
			var rate float64
			if download {
				c.SetDeadline(deadline)
				c.Write([]byte{'d'})
				var n int64
				for {
					k, err := c.Read(buf)
					n += int64(k)
					if err != nil {
						break
					}
				}
				rate = float64(n*8) / d.Seconds()
			} else {
				c.SetWriteDeadline(deadline)
				c.Write([]byte{'u'})
				for {
					if _, err := c.Write(buf); err != nil {
						break
					}
				}
				c.(*net.TCPConn).CloseWrite()
				c.SetReadDeadline(time.Now().Add(time.Minute))
				var n, ns int64
				if _, err := fmt.Fscan(c, &n, &ns); err != nil || ns <= 0 {
					firstErr.CompareAndSwap(nil, fmt.Errorf("tcp load server: no count (%v)", err))
					return
				}
				rate = float64(n*8) / time.Duration(ns).Seconds()
			}
			mu.Lock()
			bitsSec += rate
			mu.Unlock()
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return tcpResult{}, err
	}
	return tcpResult{bitsSec: bitsSec}, nil
}

// dialVia returns an HTTP client whose connections all go to addr,
// whatever the URL says (the relay's public listener, or an emulated link
// in front of the upstream).
func dialVia(addr string) *http.Client {
	var d net.Dialer
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		DisableCompression: true,
		DisableKeepAlives:  true,
	}
	return &http.Client{Transport: tr}
}

// httpTransfer downloads size bytes from /bytes/N, or uploads them to
// /sink, over one new connection to addr with the Host header host, and
// returns the rate in bits per second from the request to the last byte.
func httpTransfer(addr, host string, size int64, download bool) (float64, error) {
	client := dialVia(addr)
	var req *http.Request
	if download {
		req, _ = http.NewRequest("GET", fmt.Sprintf("http://%s/bytes/%d", host, size), nil)
	} else {
		req, _ = http.NewRequest("POST", "http://"+host+"/sink", io.LimitReader(repeatReader{}, size))
		req.ContentLength = size
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return 0, err
	}
	el := time.Since(start)
	if resp.StatusCode != 200 || download && n != size {
		return 0, fmt.Errorf("%s: status %d, %d bytes", req.URL, resp.StatusCode, n)
	}
	return float64(size*8) / el.Seconds(), nil
}

// repeatReader is an endless source of bytes.
type repeatReader struct{}

func (repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		n += copy(p[n:], oneMiB)
	}
	return n, nil
}

// firstByte opens a new connection to addr, sends GET /hello for host and
// returns the time from the dial to the first byte of the response.
func firstByte(addr, host string) (time.Duration, error) {
	start := time.Now()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(start.Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "GET /hello HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host); err != nil {
		return 0, err
	}
	var one [1]byte
	if _, err := io.ReadFull(c, one[:]); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// httpGetStatus sends one GET over a new connection and returns the status.
func httpGetStatus(url, host string) (int, error) {
	req, _ := http.NewRequest("GET", url, nil)
	req.Host = host
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}
