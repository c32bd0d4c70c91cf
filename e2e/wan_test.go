package e2e

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"porthole/forwarder"
	"porthole/internal/linkemu"
	tt "porthole/internal/tunneltest"
	"porthole/wire"
)

// endless is an upstream that sends a download until its client goes away,
// and reports each request it gave up on.
func endless(t *testing.T) (*httptest.Server, chan struct{}) {
	gone := make(chan struct{}, 8)
	chunk := make([]byte, 32<<10)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { gone <- struct{}{} }()
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(up.Close)
	return up, gone
}

func TestStalledPublicConnectionIsClosed(t *testing.T) {
	up, gone := endless(t)
	cfg := tt.RelayConfig(t)
	cfg.StallTimeout = 300 * time.Millisecond
	cfg.StreamWindow = wire.MinStreamWindow
	srv := tt.StartRelay(t, cfg)
	acfg := tt.AgentConfig(t, srv, httpTunnel(up.URL))
	acfg.DrainTimeout = time.Minute
	a, st := tt.StartAgent(t, acfg)

	// A client that asks for the download and never reads it.
	c, err := net.Dial("tcp", srv.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /big HTTP/1.1\r\nHost: %s\r\n\r\n", tt.HostPort(tt.URL(t, st, "http")))

	// The relay closes the connection, the agent lets go of the request,
	// and the upstream sees its client leave.
	select {
	case <-gone:
	case <-time.After(30 * time.Second):
		t.Fatal("the stalled connection was not closed")
	}
	// The client, reading now, gets what was in flight, then the end.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, c); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the public connection is still open")
	}
	// The agent has nothing left in flight: it stops without waiting out
	// its drain timeout for a response stuck on a stream no one reads.
	go a.Stop()
	select {
	case <-a.Done:
	case <-time.After(30 * time.Second):
		t.Fatal("the agent is still writing to the closed stream")
	}
}

// TestSessionHoldsOverASlowLink runs a session over an emulated 10 Mbit/s
// path with a 300 ms round trip, loaded in both directions, with keepalive
// scaled down so that pings cross the link during the test, each behind a
// queue of data: the session must not be taken for dead, and the data must
// arrive whole. A ping waits behind at most about a megabyte here (the
// group writer, the kernel's unsent bytes, a frame per stream, the link's
// queue): about a second, against a 5 s timeout; at the default 15 s
// keepalive the margin is three times larger.
func TestSessionHoldsOverASlowLink(t *testing.T) {
	const keepAlive = 5 * time.Second
	echo := tt.EchoServer(t, nil)
	rcfg := tt.RelayConfig(t)
	rcfg.KeepAliveInterval = keepAlive
	srv := tt.StartRelay(t, rcfg)
	link := linkemu.Symmetric(linkemu.Path{Delay: 150 * time.Millisecond, Rate: 10e6, Queue: 64 << 10})
	proxy, err := link.Listen("127.0.0.1:0", srv.AgentAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	acfg := tt.AgentConfig(t, srv, forwarder.Tunnel{Proto: wire.ProtoTCP, Upstream: echo.Addr().String()})
	acfg.RelayAddr = proxy.Addr()
	acfg.KeepAliveInterval = keepAlive
	a, st := tt.StartAgent(t, acfg)

	// Two connections echo 6 MiB each through the tunnel: about 10 s of
	// traffic each way, two keepalive intervals.
	const conns, size = 2, 6 << 20
	errs := make(chan error, conns)
	for range conns {
		go func() { errs <- echoThrough(tt.HostPort(tt.URL(t, st, "tcp")), size) }()
	}
	for range conns {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	select {
	case s := <-a.States:
		t.Fatalf("the agent left the session: %v (%v)", s.Phase, s.Err)
	default:
	}
}

// echoThrough sends size random bytes to an echo server at addr while
// reading them back, and checks that they return whole.
func echoThrough(addr string, size int) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	data := make([]byte, size)
	rand.Read(data)
	sent := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		c.(*net.TCPConn).CloseWrite()
		sent <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if err := <-sent; err != nil {
		return err
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("echoed %d bytes that differ from the %d sent", len(got), size)
	}
	return nil
}
