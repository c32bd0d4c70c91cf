package e2e

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"porthole/forwarder"
	tt "porthole/internal/tunneltest"
	"porthole/wire"
)

// TestSessionGoroutinesAreJoined stops an agent under load: finished
// requests, requests waiting on a slow upstream, and TCP connections whose
// upstream TLS handshake never ends. Everything the agent's session
// started must be over when Run returns (dials are cut short, not left to
// their hour-long timeout), and everything the relay's session started
// must end with it.
func TestSessionGoroutinesAreJoined(t *testing.T) {
	slowStarted := make(chan struct{}, 64)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		slowStarted <- struct{}{}
		<-r.Context().Done()
	}))
	defer slow.Close()
	// A TLS upstream that accepts connections and never answers.
	silent := tt.Listen(t)
	accepted := make(chan net.Conn, 64) // buffered beyond what the test opens
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			accepted <- c
		}
	}()

	// A TCP upstream that echoes, and keeps its connections open after the
	// other side's EOF.
	holder := tt.Listen(t)
	go func() {
		for {
			c, err := holder.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			go io.Copy(c, c)
		}
	}()

	srv := tt.StartRelay(t, tt.RelayConfig(t))
	fast := httpTunnel(okUpstream(t).URL)
	slowT := httpTunnel(slow.URL)
	slowT.Name = "slow"
	raw := forwarder.Tunnel{Proto: wire.ProtoTCP, Upstream: "tls://" + silent.Addr().String()}
	idle := forwarder.Tunnel{Proto: wire.ProtoTCP, Upstream: holder.Addr().String()}
	cfg := tt.AgentConfig(t, srv, fast, slowT, raw, idle)
	cfg.DialTimeout, cfg.ResponseTimeout, cfg.DrainTimeout = time.Hour, time.Hour, 100*time.Millisecond
	a, st := tt.StartAgent(t, cfg)

	client := tt.Client(srv)
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			if resp, _ := get(t, client, tt.URL(t, st, "http")); resp.StatusCode != 200 {
				t.Errorf("request: %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	var slowURL string
	for _, fw := range st.Forwarding {
		if strings.HasPrefix(fw.URL, "http://slow.") {
			slowURL = fw.URL
		}
	}
	for range 20 {
		go func() {
			if resp, err := client.Get(slowURL); err == nil {
				resp.Body.Close()
			}
		}()
		<-slowStarted
	}
	var tcpURLs []string
	for _, fw := range st.Forwarding {
		if strings.HasPrefix(fw.URL, "tcp://") {
			tcpURLs = append(tcpURLs, fw.URL)
		}
	}
	for range 20 {
		c, err := net.Dial("tcp", tt.HostPort(tcpURLs[0]))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "x")
		<-accepted // the agent is dialing the silent upstream for it
	}
	// Idle connections: one exchange, then nothing, with both ends open.
	for range 20 {
		c, err := net.Dial("tcp", tt.HostPort(tcpURLs[1]))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		tt.RoundTrip(t, c, "idle")
	}

	a.Stop()
	tt.WaitNoGoroutinesIn(t, "porthole/forwarder.")
	tt.WaitNoGoroutinesIn(t, "porthole/relay.(*session)", "porthole/relay.(*Server).serveAgent", "porthole/relay.(*Server).serveTCP")
}
