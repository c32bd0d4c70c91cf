package e2e

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"porthole/forwarder"
	tt "porthole/internal/tunneltest"
	"porthole/relay"
	"porthole/wire"
)

// publicConn dials the relay's public HTTP listener from a loopback
// address of its own, as a distinct client.
func publicConn(t testing.TB, srv *relay.Server, from string) net.Conn {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", srv.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(60 * time.Second))
	return c
}

// roundTrip sends one request on c and reads the response, leaving the
// connection open (kept alive) unless the server closes it.
func roundTrip(c net.Conn, host string) (*http.Response, error) {
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+host+"\r\n\r\n"); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

func okUpstream(t *testing.T) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(up.Close)
	return up
}

// TestOneAddressCannotStarveATunnel: one client address that holds
// thousands of idle keep-alive connections gets 429 beyond its share, and
// another client still gets through.
func TestOneAddressCannotStarveATunnel(t *testing.T) {
	rc := tt.RelayConfig(t)
	rc.StreamsPerSession = 1000
	rc.Logger = nil // thousands of refusals: keep the test output readable
	srv := tt.StartRelay(t, rc)
	_, st := tt.StartAgent(t, tt.AgentConfig(t, srv, httpTunnel(okUpstream(t).URL)))
	host := tt.HostPort(tt.URL(t, st, "http"))

	const attempts = 2000
	var ok, limited atomic.Int64
	var wg sync.WaitGroup
	work := make(chan int)
	for range 32 {
		wg.Go(func() {
			for range work {
				c := publicConn(t, srv, "127.0.0.2")
				resp, err := roundTrip(c, host)
				switch {
				case err != nil:
					t.Errorf("request: %v", err)
				case resp.StatusCode == 200:
					ok.Add(1) // stays open, idle
				case resp.StatusCode == 429 && resp.Header.Get("Porthole-Error") == "PH-429-TOO-MANY-CONNS" && resp.Header.Get("Retry-After") != "":
					limited.Add(1)
					c.Close()
				default:
					t.Errorf("got %d %q", resp.StatusCode, resp.Header.Get("Porthole-Error"))
					c.Close()
				}
			}
		})
	}
	for i := range attempts {
		work <- i
	}
	close(work)
	wg.Wait()
	per := int64(relay.DefaultConfig().ClientConnsPerTunnel)
	if ok.Load() != per || limited.Load() != attempts-per {
		t.Errorf("one address: %d served, %d refused with 429; want %d and %d", ok.Load(), limited.Load(), per, attempts-per)
	}
	resp, err := roundTrip(publicConn(t, srv, "127.0.0.3"), host)
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("another client while the first holds %d connections: %v %v", ok.Load(), resp, err)
	}
}

// TestIdleConnectionsCloseNearTheStreamCap: many clients' idle keep-alive
// connections cannot use up a session's streams; the agent closes them as
// the cap nears, and a new client still gets through.
func TestIdleConnectionsCloseNearTheStreamCap(t *testing.T) {
	rc := tt.RelayConfig(t)
	rc.StreamsPerSession = 40
	srv := tt.StartRelay(t, rc)
	_, st := tt.StartAgent(t, tt.AgentConfig(t, srv, httpTunnel(okUpstream(t).URL)))
	host := tt.HostPort(tt.URL(t, st, "http"))
	for i := range rc.StreamsPerSession {
		resp, err := roundTrip(publicConn(t, srv, source(i)), host)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("client %d: %v %v", i, resp, err)
		}
	}
	resp, err := roundTrip(publicConn(t, srv, "127.0.1.1"), host)
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("a new client after %d idle connections: %v %v", rc.StreamsPerSession, resp, err)
	}
}

func source(i int) string { return net.IPv4(127, 0, byte(2+i/250), byte(2+i%250)).String() }

// TestTCPConnectionsPerClient: a TCP tunnel closes a client's connection
// beyond its share; other clients are served.
func TestTCPConnectionsPerClient(t *testing.T) {
	rc := tt.RelayConfig(t)
	rc.ClientConnsPerTunnel = 3
	srv := tt.StartRelay(t, rc)
	echo := tt.EchoServer(t, nil)
	_, st := tt.StartAgent(t, tt.AgentConfig(t, srv, forwarder.Tunnel{Proto: wire.ProtoTCP, Upstream: echo.Addr().String()}))
	addr := tt.HostPort(tt.URL(t, st, "tcp"))
	_, port, _ := net.SplitHostPort(addr)
	dial := func(from string) net.Conn {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	for i := range 3 {
		if got := tt.RoundTrip(t, dial("127.0.0.2"), "hello"); got != "hello" {
			t.Fatalf("connection %d: %q", i, got)
		}
	}
	extra := dial("127.0.0.2")
	extra.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(extra, "hello")
	if n, err := extra.Read(make([]byte, 5)); err == nil {
		t.Errorf("a fourth connection from one address was served (%d bytes)", n)
	}
	if got := tt.RoundTrip(t, dial("127.0.0.3"), "other"); got != "other" {
		t.Errorf("another client: %q", got)
	}
}

// TestRequestHeadLimits: a head over the limit gets 431, one that does not
// arrive in time 408, a malformed one 400, each with its code; a head just
// under the limit reaches the upstream. HTTPS clients of an HTTP tunnel get
// the same answers as HTTP ones.
func TestRequestHeadLimits(t *testing.T) {
	rc := tt.RelayConfig(t)
	rc.ReadHeaderTimeout = time.Second
	srv := tt.StartRelay(t, rc)
	_, st := tt.StartAgent(t, tt.AgentConfig(t, srv, httpTunnel(okUpstream(t).URL)))
	for _, scheme := range []string{"http", "https"} {
		host := tt.HostPort(tt.URL(t, st, scheme))
		dial := func(t *testing.T) net.Conn {
			conn := publicConn(t, srv, "127.0.0.1")
			if scheme == "http" {
				return conn
			}
			conn.Close()
			name, _, _ := net.SplitHostPort(host)
			tc, err := tls.Dial("tcp", srv.HTTPSAddr(), &tls.Config{ServerName: name, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { tc.Close() })
			tc.SetDeadline(time.Now().Add(60 * time.Second))
			return tc
		}
		head := func(extra int) string {
			return "GET / HTTP/1.1\r\nHost: " + host + "\r\nX-Pad: " + strings.Repeat("a", extra) + "\r\n\r\n"
		}
		for _, c := range []struct {
			name   string
			send   string
			status int
			code   string
		}{
			{"just under 64 KiB", head(60 << 10), 200, ""},
			{"66 KiB", head(66 << 10), 431, "PH-431-HEAD-TOO-LARGE"},
			{"1 MiB", head(1 << 20), 431, "PH-431-HEAD-TOO-LARGE"},
			{"too slow", "GET / HTTP/1.1\r\nHost: " + host + "\r\nX-Slow: ", 408, "PH-408-HEAD-TIMEOUT"},
			{"malformed", "NOT HTTP AT ALL\r\n\r\n", 400, "PH-400-BAD-REQUEST"},
		} {
			t.Run(scheme+" "+c.name, func(t *testing.T) {
				conn := dial(t)
				go io.WriteString(conn, c.send) // the relay may answer before reading it all
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatalf("no response: %v", err)
				}
				resp.Body.Close()
				if resp.StatusCode != c.status || resp.Header.Get("Porthole-Error") != c.code {
					t.Errorf("got %d %q, want %d %q", resp.StatusCode, resp.Header.Get("Porthole-Error"), c.status, c.code)
				}
			})
		}
	}
}
