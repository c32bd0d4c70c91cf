package relay_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"porthole/forwarder"
	tt "porthole/internal/tunneltest"
	"porthole/relay"
	"porthole/wire"
)

// The hostile agent of these tests is built on the wire package and does
// what a real agent would not. Every test asserts the relay's coded answer
// and a bound on what the attack cost the relay's heap.

const token = "s3cret"

// startRelay starts a relay that wants a token, with cfg edited by edit.
func startRelay(t *testing.T, edit func(*relay.Config)) *relay.Server {
	t.Helper()
	cfg := tt.RelayConfig(t)
	cfg.Tokens, cfg.NoAuth = []relay.Token{{Secret: token}}, false
	if edit != nil {
		edit(&cfg)
	}
	return tt.StartRelay(t, cfg)
}

// source returns the i-th loopback address after 127.0.0.1, so that tests
// can speak from many addresses.
func source(i int) string { return fmt.Sprintf("127.0.%d.%d", 1+i/250, 2+i%250) }

// dialAgentPort opens a TCP connection to the relay's agent port from
// the address, and sends nothing.
func dialAgentPort(t testing.TB, srv *relay.Server, from string) net.Conn {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", srv.AgentAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dialTLS connects to the relay's agent port from the address and speaks
// TLS offering the ALPN protocols (none if empty).
func dialTLS(t testing.TB, srv *relay.Server, from string, alpn ...string) *tls.Conn {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	raw, err := d.Dial("tcp", srv.AgentAddr())
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, NextProtos: alpn, MinVersion: tls.VersionTLS13})
	c.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { c.Close() })
	if err := c.Handshake(); err != nil {
		t.Fatalf("TLS from %s: %v", from, err)
	}
	return c
}

// refusal reads the relay's error message and returns its code.
func refusal(t testing.TB, r io.Reader) wire.Code {
	t.Helper()
	m, err := wire.ReadMessage(r)
	if err != nil {
		t.Fatalf("no coded refusal: %v", err)
	}
	if m.Type != wire.TypeError || m.Error == nil {
		t.Fatalf("got %q, want an error", m.Type)
	}
	return m.Error.Code
}

// v1Refusal reads the refusal a version 1 agent gets: a yamux data frame on
// its control stream, carrying an error message.
func v1Refusal(t testing.TB, r io.Reader) wire.Code {
	t.Helper()
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		t.Fatalf("no refusal frame: %v", err)
	}
	if id := binary.BigEndian.Uint32(hdr[4:]); hdr[1] != 0 || id != 1 {
		t.Fatalf("frame %x is not data on stream 1", hdr)
	}
	return refusal(t, io.LimitReader(r, int64(binary.BigEndian.Uint32(hdr[8:]))))
}

// yamuxFrame is a yamux data frame opening stream id with n bytes.
func yamuxFrame(id uint32, n int) []byte {
	f := make([]byte, 12+n)
	binary.BigEndian.PutUint16(f[2:], 1) // SYN
	binary.BigEndian.PutUint32(f[4:], id)
	binary.BigEndian.PutUint32(f[8:], uint32(n))
	return f
}

// heapInUse is the live heap after a collection.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

func checkGrowth(t *testing.T, before int64, limit int64) {
	t.Helper()
	grew := heapInUse() - before
	t.Logf("heap grew %d KiB (limit %d KiB)", grew>>10, limit>>10)
	if grew > limit {
		t.Errorf("heap grew %d KiB during the attack, limit %d KiB", grew>>10, limit>>10)
	}
}

func quietYamux() *yamux.Config {
	c := yamux.DefaultConfig()
	c.LogOutput, c.Logger = nil, log.New(io.Discard, "", 0)
	return c
}

// agent is an authenticated session speaking the wire protocol by hand.
type agent struct {
	conn *tls.Conn
	ys   *yamux.Session
	ctrl *yamux.Stream
}

func authenticate(t testing.TB, srv *relay.Server, from string) *agent {
	t.Helper()
	c := dialTLS(t, srv, from, wire.ALPN)
	hello := &wire.Hello{Version: wire.Version, Token: token, Instance: rand.Text()}
	if err := wire.WriteMessage(c, &wire.Message{Type: wire.TypeHello, Hello: hello}); err != nil {
		t.Fatal(err)
	}
	m, err := wire.ReadMessage(c)
	if err != nil || m.Welcome == nil {
		t.Fatalf("no welcome: %+v, %v", m, err)
	}
	c.SetDeadline(time.Time{})
	ys, err := yamux.Client(c, quietYamux())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ys.Close() })
	ctrl, err := ys.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	ctrl.SetDeadline(time.Now().Add(30 * time.Second))
	return &agent{conn: c, ys: ys, ctrl: ctrl}
}

func (a *agent) send(t testing.TB, m *wire.Message) {
	t.Helper()
	if err := wire.WriteMessage(a.ctrl, m); err != nil {
		t.Fatal(err)
	}
}

func (a *agent) bind(t testing.TB, b wire.Bind) *wire.Message {
	t.Helper()
	a.send(t, &wire.Message{Type: wire.TypeBind, Bind: &b})
	m, err := wire.ReadMessage(a.ctrl)
	if err != nil {
		t.Fatalf("bind %v: %v", b, err)
	}
	return m
}

// TestPreAuthStreamFlood opens many connections that, instead of a hello,
// open yamux streams and fill them: the relay must answer each with a code
// at once, and hold next to nothing for them.
func TestPreAuthStreamFlood(t *testing.T) {
	for _, c := range []struct {
		alpn string
		read func(testing.TB, io.Reader) wire.Code
		want wire.Code
	}{
		{wire.ALPN, refusal, wire.CodeBadRequest},
		{wire.ALPNv1, v1Refusal, wire.CodeBadVersion},
	} {
		t.Run(c.alpn, func(t *testing.T) {
			srv := startRelay(t, nil)
			const conns, streams = 32, 8
			before := heapInUse()
			var floods sync.WaitGroup
			defer floods.Wait()
			for i := range conns {
				conn := dialTLS(t, srv, source(i/4), c.alpn)
				defer conn.Close()
				floods.Go(func() {
					for s := range streams {
						if _, err := conn.Write(yamuxFrame(uint32(2*s+1), 256<<10)); err != nil {
							return
						}
					}
				})
				if got := c.read(t, conn); got != c.want {
					t.Errorf("connection %d: refused with %s, want %s", i, got, c.want)
				}
			}
			// Each connection wrote up to 2 MiB; the relay (and this
			// process's own TLS clients) may keep a few tens of KiB each.
			checkGrowth(t, before, conns*128<<10)
		})
	}
}

// TestSlowHello holds many connections with most of a hello sent: each
// costs at most the hello, and is refused with a code at the deadline.
func TestSlowHello(t *testing.T) {
	srv := startRelay(t, func(c *relay.Config) { c.HandshakeTimeout = time.Second })
	const conns = 32
	before := heapInUse()
	var held []*tls.Conn
	for i := range conns {
		c := dialTLS(t, srv, source(i/4), wire.ALPN)
		partial := binary.BigEndian.AppendUint32(nil, wire.MaxHelloMessage)
		partial = append(partial, make([]byte, wire.MaxHelloMessage-1)...)
		if _, err := c.Write(partial); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	checkGrowth(t, before, conns*128<<10)
	for i, c := range held {
		if got := refusal(t, c); got != wire.CodeHandshakeTimeout {
			t.Errorf("connection %d: refused with %s, want %s", i, got, wire.CodeHandshakeTimeout)
		}
	}
}

// TestBadHellos sends what is not a valid hello, in many ways; each gets
// its code.
func TestBadHellos(t *testing.T) {
	srv := startRelay(t, nil)
	framed := func(body string) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	}
	hello := func(h wire.Hello) []byte {
		var b bytesBuffer
		wire.WriteMessage(&b, &wire.Message{Type: wire.TypeHello, Hello: &h})
		return b
	}
	garbage := make([]byte, 64)
	rand.Read(garbage)
	garbage[0] = 0xff // a length far over the limit
	for _, c := range []struct {
		name string
		send []byte
		alpn []string
		want wire.Code
	}{
		{"yamux frame", yamuxFrame(1, 0), []string{wire.ALPN}, wire.CodeBadRequest},
		{"oversized", binary.BigEndian.AppendUint32(nil, 1<<20), []string{wire.ALPN}, wire.CodeBadRequest},
		{"random bytes", garbage, []string{wire.ALPN}, wire.CodeBadRequest},
		{"not JSON", framed("hello, relay"), []string{wire.ALPN}, wire.CodeBadRequest},
		{"not a hello", framed(`{"type":"bind","bind":{"tunnel_id":1,"proto":"http"}}`), []string{wire.ALPN}, wire.CodeBadRequest},
		{"empty hello", framed(`{"type":"hello"}`), []string{wire.ALPN}, wire.CodeBadRequest},
		{"version 1 hello", hello(wire.Hello{Version: 1, Token: token}), []string{wire.ALPN}, wire.CodeBadVersion},
		{"wrong token", hello(wire.Hello{Version: wire.Version, Token: "guess"}), []string{wire.ALPN}, wire.CodeAuthFailed},
		{"no token", hello(wire.Hello{Version: wire.Version}), []string{wire.ALPN}, wire.CodeAuthFailed},
		{"long instance", hello(wire.Hello{Version: wire.Version, Token: token, Instance: string(make([]byte, 65))}), []string{wire.ALPN}, wire.CodeBadRequest},
		{"no ALPN", hello(wire.Hello{Version: wire.Version, Token: token}), nil, wire.CodeBadVersion},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn := dialTLS(t, srv, "127.0.0.1", c.alpn...)
			if _, err := conn.Write(c.send); err != nil {
				t.Fatal(err)
			}
			if got := refusal(t, conn); got != c.want {
				t.Errorf("refused with %s, want %s", got, c.want)
			}
		})
	}
}

type bytesBuffer []byte

func (b *bytesBuffer) Write(p []byte) (int, error) { *b = append(*b, p...); return len(p), nil }

// TestVersion1AgentIsToldToUpgrade runs what a version 1 agent ran against
// the relay: yamux straight after TLS, its hello on the first stream.
func TestVersion1AgentIsToldToUpgrade(t *testing.T) {
	srv := startRelay(t, nil)
	c := dialTLS(t, srv, "127.0.0.1", wire.ALPNv1)
	ys, err := yamux.Client(c, quietYamux())
	if err != nil {
		t.Fatal(err)
	}
	defer ys.Close()
	ctrl, err := ys.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	wire.WriteMessage(ctrl, &wire.Message{Type: wire.TypeHello, Hello: &wire.Hello{Version: 1, Token: token}})
	if got := refusal(t, ctrl); got != wire.CodeBadVersion {
		t.Errorf("refused with %s, want %s", got, wire.CodeBadVersion)
	}
}

// TestHandshakeCaps: one address may hold only a few connections in their
// handshake, and a flood from many addresses does not keep a real agent
// out: it comes online at its first attempt.
func TestHandshakeCaps(t *testing.T) {
	srv := startRelay(t, func(c *relay.Config) { c.MaxHandshakesPerIP, c.MaxHandshakes = 4, 16 })
	dial := func(from string) net.Conn { return dialAgentPort(t, srv, from) }
	// closedByRelay reports whether the relay closed c; one it keeps stays
	// silent, waiting for the TLS handshake, past the probe's deadline.
	closedByRelay := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
	var conns []net.Conn
	for range 6 {
		conns = append(conns, dial("127.0.0.2"))
	}
	for i, c := range conns {
		if got, want := closedByRelay(c), i >= 4; got != want {
			t.Errorf("connection %d from one address: closed %v, want %v", i+1, got, want)
		}
	}
	// Fill the relay's total from other addresses, and more.
	for i := range 24 {
		dial(source(10 + i/4))
	}
	cfg := tt.AgentConfig(t, srv, forwarder.Tunnel{Proto: wire.ProtoHTTP, Upstream: "8000"})
	cfg.Token = token
	a := tt.RunAgent(t, cfg)
	for s := range a.States {
		if s.Phase == forwarder.Reconnecting || s.Phase == forwarder.Failed {
			t.Fatalf("a real agent was kept out by the flood: %v", s)
		}
		if s.Phase == forwarder.Online {
			break
		}
	}
}

// TestHandshakeFloodFromOneNetwork: a flood from the many addresses of one
// network, however fast it comes, pushes out only its own connections in
// their handshake, never a real agent's from elsewhere that is still in
// its own (as one on a slow path would be while the flood comes).
func TestHandshakeFloodFromOneNetwork(t *testing.T) {
	const perIP, total = 4, 16
	srv := startRelay(t, func(c *relay.Config) { c.MaxHandshakesPerIP, c.MaxHandshakes = perIP, total })
	dial := func(from string) net.Conn { return dialAgentPort(t, srv, from) }
	// Flood connections from 127.0.1.0/24 never send a byte; each closed
	// by the relay is counted.
	dropped := make(chan struct{}, 2*total)
	flood := func(first int) {
		for i := range total {
			c := dial(source(first + i/perIP))
			go func() {
				c.Read(make([]byte, 1))
				dropped <- struct{}{}
			}()
		}
	}
	flood(0)
	real := dial("127.0.0.1") // admitted: one flood connection makes room
	<-dropped
	gone := make(chan error, 1)
	go func() {
		_, err := real.Read(make([]byte, 1))
		gone <- err
	}()
	// Another whole relay's worth of flood while the real agent has sent
	// nothing yet. Each is admitted in turn and pushes one out: 16 more
	// from the flood if the real agent is spared.
	flood(total / perIP)
	for range total {
		select {
		case <-dropped:
		case err := <-gone:
			t.Fatalf("the real agent's connection was dropped for the flood (%v)", err)
		}
	}
	real.SetReadDeadline(time.Now()) // ends the watch above
	if err := <-gone; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the real agent's connection was dropped for the flood (%v)", err)
	}
	real.SetReadDeadline(time.Time{})
	c := tls.Client(real, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{wire.ALPN}})
	hello := &wire.Hello{Version: wire.Version, Token: token}
	if err := wire.WriteMessage(c, &wire.Message{Type: wire.TypeHello, Hello: hello}); err != nil {
		t.Fatalf("the real agent's handshake: %v", err)
	}
	if m, err := wire.ReadMessage(c); err != nil || m.Welcome == nil {
		t.Fatalf("the real agent was not welcomed: %+v, %v", m, err)
	}
}

// TestPostAuthStreamFlood: an authenticated agent that opens streams
// toward the relay breaks the protocol; its session ends with a code, and
// what it wrote is not kept.
func TestPostAuthStreamFlood(t *testing.T) {
	srv := startRelay(t, nil)
	before := heapInUse()
	a := authenticate(t, srv, "127.0.0.1")
	var floods sync.WaitGroup
	window := make([]byte, 256<<10) // each stream's whole window, written at once
	for range 200 {
		floods.Go(func() {
			st, err := a.ys.OpenStream()
			if err != nil {
				return
			}
			st.SetWriteDeadline(time.Now().Add(10 * time.Second))
			st.Write(window)
		})
	}
	if got := refusal(t, a.ctrl); got != wire.CodeProtocol {
		t.Errorf("session ended with %s, want %s", got, wire.CodeProtocol)
	}
	checkGrowth(t, before, 8<<20)
	a.ys.Close()
	floods.Wait()
}

// TestBindLimits: a session may hold only so many tunnels and TCP ports;
// the bind beyond gets a code and the session goes on.
func TestBindLimits(t *testing.T) {
	srv := startRelay(t, func(c *relay.Config) { c.MaxTunnels, c.MaxTCPPorts = 4, 2 })
	a := authenticate(t, srv, "127.0.0.1")
	bind := func(id uint32, p wire.Proto) *wire.Message {
		return a.bind(t, wire.Bind{TunnelID: id, Proto: p})
	}
	for id := uint32(1); id <= 2; id++ {
		if m := bind(id, wire.ProtoTCP); m.Bound == nil {
			t.Fatalf("tcp bind %d: %+v", id, m.Error)
		}
	}
	if m := bind(3, wire.ProtoTCP); m.Error == nil || m.Error.Code != wire.CodePortLimit || m.ErrorFor != 3 {
		t.Errorf("third TCP port: %+v, want %s for tunnel 3", m, wire.CodePortLimit)
	}
	for id := uint32(3); id <= 4; id++ {
		if m := bind(id, wire.ProtoHTTP); m.Bound == nil {
			t.Fatalf("http bind %d: %+v", id, m.Error)
		}
	}
	if m := bind(5, wire.ProtoHTTP); m.Error == nil || m.Error.Code != wire.CodeTunnelLimit {
		t.Errorf("fifth tunnel: %+v, want %s", m, wire.CodeTunnelLimit)
	}
	// An unbind makes room again.
	a.send(t, &wire.Message{Type: wire.TypeUnbind, Unbind: &wire.Unbind{TunnelID: 1}})
	if m, err := wire.ReadMessage(a.ctrl); err != nil || m.Type != wire.TypeUnbound {
		t.Fatalf("unbind: %+v, %v", m, err)
	}
	if m := bind(5, wire.ProtoTCP); m.Bound == nil {
		t.Errorf("bind after an unbind: %+v", m.Error)
	}
}

// countingHandler counts log records, to bound what an attack writes to
// the relay's log.
type countingHandler struct {
	slog.Handler
	n *atomic.Int64
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	h.n.Add(1)
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// TestBindFlood sends binds as fast as it can: the relay binds up to its
// limit, then ends the session for the rate, with little memory and log.
func TestBindFlood(t *testing.T) {
	var lines atomic.Int64
	srv := startRelay(t, func(c *relay.Config) {
		c.ControlRate = 50
		c.Logger = slog.New(countingHandler{slog.DiscardHandler, &lines})
	})
	before := heapInUse()
	a := authenticate(t, srv, "127.0.0.1")
	go func() {
		for id := range uint32(100_000) {
			if wire.WriteMessage(a.ctrl, &wire.Message{Type: wire.TypeBind, Bind: &wire.Bind{TunnelID: id + 1, Proto: wire.ProtoHTTP}}) != nil {
				return
			}
		}
	}()
	var bound, limited int
	for {
		m, err := wire.ReadMessage(a.ctrl)
		if err != nil {
			t.Fatalf("after %d bound: %v, want a %s error", bound, err, wire.CodeRateLimited)
		}
		switch {
		case m.Bound != nil:
			bound++
			continue
		case m.Error != nil && m.Error.Code == wire.CodeTunnelLimit:
			limited++
			continue
		case m.Error != nil && m.Error.Code == wire.CodeRateLimited && m.ErrorFor == 0:
		default:
			t.Fatalf("unexpected %+v", m)
		}
		break
	}
	t.Logf("%d bound, %d refused for the tunnel limit, then rate limited; %d log lines", bound, limited, lines.Load())
	if bound > relay.DefaultConfig().MaxTunnels {
		t.Errorf("%d tunnels bound, limit %d", bound, relay.DefaultConfig().MaxTunnels)
	}
	checkGrowth(t, before, 4<<20)
	if n := lines.Load(); n > 200 {
		t.Errorf("the flood wrote %d log lines", n)
	}
}

// TestBadControlMessages: after authentication, an oversized or malformed
// message ends the session with a code; an unknown one gets a coded reply.
func TestBadControlMessages(t *testing.T) {
	srv := startRelay(t, nil)
	for _, c := range []struct {
		name string
		send []byte
	}{
		{"oversized", binary.BigEndian.AppendUint32(nil, wire.MaxControlMessage+1)},
		{"not JSON", append(binary.BigEndian.AppendUint32(nil, 4), "}{}{"...)},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := heapInUse()
			a := authenticate(t, srv, "127.0.0.1")
			if _, err := a.ctrl.Write(c.send); err != nil {
				t.Fatal(err)
			}
			if got := refusal(t, a.ctrl); got != wire.CodeBadRequest {
				t.Errorf("session ended with %s, want %s", got, wire.CodeBadRequest)
			}
			if _, err := wire.ReadMessage(a.ctrl); err == nil {
				t.Error("the session went on")
			}
			checkGrowth(t, before, 1<<20)
		})
	}
	t.Run("unknown type", func(t *testing.T) {
		a := authenticate(t, srv, "127.0.0.1")
		a.send(t, &wire.Message{Type: "frobnicate"})
		if got := refusal(t, a.ctrl); got != wire.CodeBadRequest {
			t.Errorf("reply %s, want %s", got, wire.CodeBadRequest)
		}
		if m := a.bind(t, wire.Bind{TunnelID: 1, Proto: wire.ProtoHTTP}); m.Bound == nil {
			t.Errorf("bind after an unknown message: %+v", m.Error)
		}
	})
}

// TestGarbageFrames writes bytes that are not yamux frames under an
// authenticated session: the session ends and its names are released for
// its token at once.
func TestGarbageFrames(t *testing.T) {
	srv := startRelay(t, nil)
	before := heapInUse()
	a := authenticate(t, srv, "127.0.0.1")
	if m := a.bind(t, wire.Bind{TunnelID: 1, Proto: wire.ProtoHTTP, Name: "garbage"}); m.Bound == nil {
		t.Fatalf("bind: %+v", m.Error)
	}
	junk := make([]byte, 64<<10)
	rand.Read(junk)
	junk[0] = 0x7f // not yamux's version
	a.conn.Write(junk)
	a.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.Copy(io.Discard, a.conn); err != nil {
		t.Logf("connection ended: %v", err)
	}
	checkGrowth(t, before, 1<<20)
	b := authenticate(t, srv, "127.0.0.1")
	if m := b.bind(t, wire.Bind{TunnelID: 1, Proto: wire.ProtoHTTP, Name: "garbage"}); m.Bound == nil {
		t.Errorf("the name was not released for its token: %+v", m.Error)
	}
}

// TestPingFlood: yamux answers every ping on a goroutine of its own, so an
// authenticated agent that sends pings as fast as it can must be stopped
// before the relay holds a goroutine for each; its session ends with a code.
func TestPingFlood(t *testing.T) {
	srv := startRelay(t, nil)
	a := authenticate(t, srv, "127.0.0.1")
	if m := a.bind(t, wire.Bind{TunnelID: 1, Proto: wire.ProtoHTTP}); m.Bound == nil {
		t.Fatalf("bind: %+v", m.Error)
	}
	before, goroutines := heapInUse(), runtime.NumGoroutine()
	const pings = 200_000
	flood := make([]byte, 0, 12*pings)
	for i := range uint32(pings) {
		flood = append(flood, 0, 2, 0, 1, 0, 0, 0, 0) // version 0, ping, SYN, session
		flood = binary.BigEndian.AppendUint32(flood, i)
	}
	a.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := a.conn.Write(flood); err != nil {
		t.Fatal(err)
	}
	grew := runtime.NumGoroutine() - goroutines
	t.Logf("%d goroutines more once the flood was written", grew)
	if grew > 2*wire.PingBurst {
		t.Errorf("%d pings left %d goroutines running", pings, grew)
	}
	if got := refusal(t, a.ctrl); got != wire.CodeRateLimited {
		t.Errorf("session ended with %s, want %s", got, wire.CodeRateLimited)
	}
	checkGrowth(t, before, 4<<20)
}

// TestUnroutedConnsPerAddress: one address may have only so many public
// connections that reach no tunnel (being routed, or kept alive by the
// relay's own pages); one beyond is closed at once, and one that closes
// makes room. Connections carried to a tunnel do not count.
func TestUnroutedConnsPerAddress(t *testing.T) {
	const limit = 4
	srv := startRelay(t, func(c *relay.Config) { c.UnroutedConnsPerIP = limit })
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "up") }))
	defer up.Close()
	cfg := tt.AgentConfig(t, srv, forwarder.Tunnel{Proto: wire.ProtoHTTP, Upstream: up.URL, Name: "app"})
	cfg.Token = token
	tt.StartAgent(t, cfg)

	dial := func(from string) (net.Conn, *bufio.Reader) {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", srv.HTTPAddr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(30 * time.Second))
		return c, bufio.NewReader(c)
	}
	// get sends a request on c and returns its status, or 0 if the
	// relay closed c instead of answering.
	get := func(c net.Conn, r *bufio.Reader, host string, close bool) int {
		req, _ := http.NewRequest("GET", "http://"+host+"/", nil)
		req.Close = close
		if err := req.Write(c); err != nil {
			return 0
		}
		resp, err := http.ReadResponse(r, req)
		if err != nil {
			return 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	// Carried to the tunnel, kept alive by the agent: not counted.
	for range limit {
		if c, r := dial("127.0.0.2"); get(c, r, "app.localhost", false) != http.StatusOK {
			t.Fatal("a request to the tunnel failed")
		}
	}
	// The relay's own 404 page, kept alive by the relay: counted.
	var own []net.Conn
	var ownR []*bufio.Reader
	for range limit {
		c, r := dial("127.0.0.2")
		if got := get(c, r, "nope.localhost", false); got != http.StatusNotFound {
			t.Fatalf("unknown host: %d", got)
		}
		own, ownR = append(own, c), append(ownR, r)
	}
	if c, r := dial("127.0.0.2"); get(c, r, "app.localhost", false) != 0 {
		t.Errorf("connection %d that reached no tunnel yet was answered", limit+1)
	}
	if c, r := dial("127.0.0.3"); get(c, r, "nope.localhost", false) != http.StatusNotFound {
		t.Error("another address was refused")
	}
	// The relay closes one, and the address may open another.
	if got := get(own[0], ownR[0], "nope.localhost", true); got != http.StatusNotFound {
		t.Fatalf("last request on a kept-alive connection: %d", got)
	}
	if _, err := ownR[0].ReadByte(); err != io.EOF {
		t.Fatalf("the relay did not close the connection: %v", err)
	}
	if c, r := dial("127.0.0.2"); get(c, r, "app.localhost", false) != http.StatusOK {
		t.Error("no room after a connection closed")
	}
}

// TestFailedAuthentications: an address that keeps failing to authenticate
// is refused before TLS, so that it can neither guess tokens nor write the
// relay's log at its own pace; other addresses are not affected.
func TestFailedAuthentications(t *testing.T) {
	const allowance = 10 // failures at once; then one per 10 s
	var lines atomic.Int64
	srv := startRelay(t, func(c *relay.Config) {
		c.Logger = slog.New(countingHandler{slog.DiscardHandler, &lines})
	})
	try := func(from, tok string) (*wire.Message, error) {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		raw, err := d.Dial("tcp", srv.AgentAddr())
		if err != nil {
			return nil, err
		}
		defer raw.Close()
		c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{wire.ALPN}})
		c.SetDeadline(time.Now().Add(30 * time.Second))
		hello := &wire.Hello{Version: wire.Version, Token: tok}
		if err := wire.WriteMessage(c, &wire.Message{Type: wire.TypeHello, Hello: hello}); err != nil {
			return nil, err
		}
		return wire.ReadMessage(c)
	}
	before := lines.Load()
	for i := range allowance {
		m, err := try("127.0.0.2", "guess")
		if err != nil || m.Error == nil || m.Error.Code != wire.CodeAuthFailed {
			t.Fatalf("guess %d: %+v, %v; want %s", i+1, m, err, wire.CodeAuthFailed)
		}
	}
	for _, tok := range []string{"guess", token} {
		if m, err := try("127.0.0.2", tok); err == nil {
			t.Errorf("after %d failures the address was answered %+v", allowance, m)
		}
	}
	if m, err := try("127.0.0.3", "guess"); err != nil || m.Error == nil || m.Error.Code != wire.CodeAuthFailed {
		t.Errorf("another address: %+v, %v; want %s", m, err, wire.CodeAuthFailed)
	}
	if m, err := try("127.0.0.3", token); err != nil || m.Welcome == nil {
		t.Errorf("another address with the token: %+v, %v; want a welcome", m, err)
	}
	if n := lines.Load() - before; n > 2*allowance+4 {
		t.Errorf("%d failed authentications wrote %d log lines", allowance+3, n)
	}
}
