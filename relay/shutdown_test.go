package relay_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"porthole/forwarder"
	tt "porthole/internal/tunneltest"
	"porthole/wire"
)

// TestShutdownJoinsEverythingWhileConnectionsArrive stops relays while
// agents connect and public clients send requests: every goroutine the
// relay started (accept loops, handshakes, sessions, public connections)
// is joined by Shutdown, which no connection arriving meanwhile can race.
func TestShutdownJoinsEverythingWhileConnectionsArrive(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	for range 3 {
		srv := startRelay(t, nil)
		cfg := tt.AgentConfig(t, srv, forwarder.Tunnel{Proto: wire.ProtoHTTP, Upstream: up.URL, Name: "app"})
		cfg.Token = token
		a, st := tt.StartAgent(t, cfg)
		url := tt.URL(t, st, "http")
		stop := make(chan struct{})
		served := make(chan struct{}, 1000)
		var arrivals sync.WaitGroup
		for i := range 4 {
			arrivals.Go(func() { // agent connections, some of which start TLS
				for {
					select {
					case <-stop:
						return
					default:
					}
					if c, err := net.Dial("tcp", srv.AgentAddr()); err == nil {
						if i%2 == 0 {
							c.Write([]byte{0x16, 0x03, 0x01})
						}
						c.Close()
					}
				}
			})
			arrivals.Go(func() { // public requests
				client := tt.Client(srv)
				defer client.CloseIdleConnections()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if resp, err := client.Get(url); err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						select {
						case served <- struct{}{}:
						default:
						}
					}
				}
			})
		}
		for range 50 { // shut down in the thick of it
			<-served
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		srv.Shutdown(ctx)
		cancel()
		close(stop)
		arrivals.Wait()
		a.Stop()
		tt.WaitNoGoroutinesIn(t, "porthole/relay.")
	}
}
