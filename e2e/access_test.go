package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"porthole/forwarder"
	tt "porthole/internal/tunneltest"
	"porthole/relay"
	"porthole/wire"
)

// Two loopback addresses stand for two public clients.
var (
	clientA = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}
	clientB = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}
)

// clientFrom returns an HTTP client whose connections come from local and
// go to the relay's HTTP listener.
func clientFrom(srv *relay.Server, local *net.TCPAddr) *http.Client {
	d := &net.Dialer{LocalAddr: local}
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", srv.HTTPAddr())
	}}}
}

func dialFrom(t *testing.T, local *net.TCPAddr, addr string) net.Conn {
	t.Helper()
	c, err := (&net.Dialer{LocalAddr: local}).Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// countingUpstream is an HTTP upstream that counts the requests reaching it.
func countingUpstream(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	return up, &n
}

// TestCIDRRulesAtTheRelay: a denied client gets the relay's 403 (HTTP) or a
// closed connection (TCP), and neither reaches the agent's upstream.
func TestCIDRRulesAtTheRelay(t *testing.T) {
	srv := tt.StartRelay(t, tt.RelayConfig(t))
	up, requests := countingUpstream(t)
	var accepted atomic.Int64
	echo := tt.Listen(t)
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	_, st := tt.StartAgent(t, tt.AgentConfig(t, srv,
		forwarder.Tunnel{Proto: wire.ProtoHTTP, Upstream: up.URL, Name: "web", CIDRDeny: []string{"127.0.0.3"}},
		forwarder.Tunnel{Proto: wire.ProtoTCP, Upstream: echo.Addr().String(), CIDRAllow: []string{"127.0.0.2/32"}},
	))

	resp, body := get(t, clientFrom(srv, clientA), "http://web.localhost/")
	if resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("allowed client: %d %q", resp.StatusCode, body)
	}
	resp, _ = get(t, clientFrom(srv, clientB), "http://web.localhost/")
	if resp.StatusCode != 403 || resp.Header.Get("Porthole-Error") != "PH-403-IP-DENIED" {
		t.Errorf("denied client: %d %q", resp.StatusCode, resp.Header.Get("Porthole-Error"))
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("upstream saw %d requests, want 1 (the denied one never left the relay)", n)
	}

	tcpAddr := tt.HostPort(tt.URL(t, st, "tcp"))
	if got := tt.RoundTrip(t, dialFrom(t, clientA, tcpAddr), "hello"); got != "hello" {
		t.Fatalf("allowed TCP client: %q", got)
	}
	denied := dialFrom(t, clientB, tcpAddr)
	denied.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(denied, "hello")
	if n, err := denied.Read(make([]byte, 8)); n != 0 || err == nil {
		t.Errorf("denied TCP client read %d bytes, %v; want the connection closed", n, err)
	}
	if n := accepted.Load(); n != 1 {
		t.Errorf("TCP upstream accepted %d connections, want 1", n)
	}
}

// TestRateLimit: each client address has its budget of requests, counted
// per request even on one kept-alive connection; beyond it the agent
// answers 429 with Retry-After, and after that wait the client gets through.
func TestRateLimit(t *testing.T) {
	srv := tt.StartRelay(t, tt.RelayConfig(t))
	up, requests := countingUpstream(t)
	tt.StartAgent(t, tt.AgentConfig(t, srv,
		forwarder.Tunnel{Proto: wire.ProtoHTTP, Upstream: up.URL, Name: "api", RateLimit: forwarder.RateLimit{Requests: 2, Per: time.Second}}))

	a := clientFrom(srv, clientA)
	for i := range 2 {
		if resp, _ := get(t, a, "http://api.localhost/"); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i+1, resp.StatusCode)
		}
	}
	resp, _ := get(t, a, "http://api.localhost/")
	if resp.StatusCode != 429 || resp.Header.Get("Porthole-Error") != "PH-429-RATE-LIMITED" {
		t.Fatalf("over the limit: %d %q", resp.StatusCode, resp.Header.Get("Porthole-Error"))
	}
	retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || retry != 1 {
		t.Fatalf("Retry-After %q, want 1", resp.Header.Get("Retry-After"))
	}
	if resp, _ := get(t, clientFrom(srv, clientB), "http://api.localhost/"); resp.StatusCode != 200 {
		t.Errorf("another client: %d", resp.StatusCode)
	}
	// A client honours Retry-After; the budget is back by then.
	time.Sleep(time.Duration(retry) * time.Second)
	if resp, _ := get(t, a, "http://api.localhost/"); resp.StatusCode != 200 {
		t.Errorf("after Retry-After: %d", resp.StatusCode)
	}
	if n := requests.Load(); n != 4 {
		t.Errorf("upstream saw %d requests, want 4", n)
	}
}

// TestProxyProtocol: a TCP upstream that reads the PROXY v2 header sees the
// public client's real address, not the agent's.
func TestProxyProtocol(t *testing.T) {
	srv := tt.StartRelay(t, tt.RelayConfig(t))
	ln := &proxyproto.Listener{Listener: tt.Listen(t), ConnPolicy: func(proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) { return proxyproto.REQUIRE, nil }}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.WriteString(c, c.RemoteAddr().String()+"\n") }()
		}
	}()
	_, st := tt.StartAgent(t, tt.AgentConfig(t, srv,
		forwarder.Tunnel{Proto: wire.ProtoTCP, Upstream: ln.Addr().String(), ProxyProtocol: true}))

	c := dialFrom(t, clientA, tt.HostPort(tt.URL(t, st, "tcp")))
	c.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), c.LocalAddr().String()+"\n"; got != want {
		t.Errorf("upstream saw the client as %q, want %q", got, want)
	}
}
