package e2e

import (
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"porthole/forwarder"
	"porthole/inspect"
	tt "porthole/internal/tunneltest"
	"porthole/wire"
)

// BenchmarkHTTPRoundTrip measures small requests through a relay and a
// forwarder in this process, over loopback, against the same requests sent
// directly (see the "direct" sub-benchmark) for a ratio.
func BenchmarkHTTPRoundTrip(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello\n") }))
	defer up.Close()
	srv := tt.StartRelay(b, tt.RelayConfig(b))
	cfg := tt.AgentConfig(b, srv, httpTunnel(up.URL))
	cfg.Logger = nil
	_, st := tt.StartAgent(b, cfg)
	// The same tunnel with the inspector capturing every exchange.
	inspected := httpTunnel(up.URL)
	inspected.Name = "inspected"
	icfg := tt.AgentConfig(b, srv, inspected)
	icfg.Logger = nil
	icfg.Inspect = inspect.NewStore(inspect.DefaultConfig())
	_, ist := tt.StartAgent(b, icfg)
	run := func(b *testing.B, url string, client *http.Client) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := client.Get(url)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	b.Run("direct", func(b *testing.B) { run(b, up.URL, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}) })
	b.Run("tunnel", func(b *testing.B) {
		c := tt.Client(srv)
		c.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
		run(b, tt.URL(b, st, "http"), c)
	})
	b.Run("tunnel, inspected", func(b *testing.B) {
		c := tt.Client(srv)
		c.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
		run(b, tt.URL(b, ist, "http"), c)
	})
}

// BenchmarkTCPThroughput streams through a TCP tunnel to a sink.
func BenchmarkTCPThroughput(b *testing.B) {
	sink := tt.Listen(b)
	go func() {
		for {
			c, err := sink.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	srv := tt.StartRelay(b, tt.RelayConfig(b))
	cfg := tt.AgentConfig(b, srv, forwarder.Tunnel{Proto: wire.ProtoTCP, Upstream: sink.Addr().String()})
	cfg.Logger = nil
	_, st := tt.StartAgent(b, cfg)
	chunk := make([]byte, 128<<10)
	rand.Read(chunk)
	run := func(b *testing.B, addr string) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.SetBytes(int64(len(chunk)))
		for b.Loop() {
			if _, err := c.Write(chunk); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("direct", func(b *testing.B) { run(b, sink.Addr().String()) })
	b.Run("tunnel", func(b *testing.B) { run(b, tt.HostPort(tt.URL(b, st, "tcp"))) })
}
