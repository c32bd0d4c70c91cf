package linkemu_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"porthole/internal/linkemu"
	tt "porthole/internal/tunneltest"
)

// proxy starts a proxy through link to target, closed when the test ends.
func proxy(t *testing.T, link *linkemu.Link, target string) *linkemu.Proxy {
	t.Helper()
	p, err := link.Listen("127.0.0.1:0", target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// atLeast fails unless got is at least want. Every bound on time in these
// tests is a lower bound: a busy machine makes the emulator slower, never
// faster, so they cannot fail by load.
func atLeast(t *testing.T, what string, got, want time.Duration) {
	t.Helper()
	if got < want {
		t.Errorf("%s took %v, want at least %v", what, got, want)
	}
}

func TestDelayAndHandshake(t *testing.T) {
	const delay = 30 * time.Millisecond
	echo := tt.EchoServer(t, nil)
	p := proxy(t, linkemu.Symmetric(linkemu.Path{Delay: delay}), echo.Addr().String())

	start := time.Now()
	c := dial(t, p.Addr())
	buf := make([]byte, 4)
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	// The handshake's round trip, then the request's.
	atLeast(t, "the first exchange", time.Since(start), 4*delay)

	start = time.Now()
	c.Write([]byte("pong"))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("read %q, %v", buf, err)
	}
	atLeast(t, "a later exchange", time.Since(start), 2*delay)
}

// sink accepts one connection at a time and reports how many bytes each
// delivered and when the last one came.
func sink(t *testing.T) (net.Listener, chan int) {
	l := tt.Listen(t)
	got := make(chan int, 8)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				n, _ := io.Copy(io.Discard, c)
				c.Close()
				got <- int(n)
			}()
		}
	}()
	return l, got
}

func TestRateIsSharedByConnections(t *testing.T) {
	const rate, size = 40e6, 1 << 20 // 40 Mbit/s; 1 MiB per connection
	l, got := sink(t)
	p := proxy(t, linkemu.Symmetric(linkemu.Path{Rate: rate, Queue: 64 << 10}), l.Addr().String())
	data := make([]byte, size)
	start := time.Now()
	var wg sync.WaitGroup
	for range 2 {
		c := dial(t, p.Addr())
		wg.Go(func() {
			if _, err := c.Write(data); err != nil {
				t.Error(err)
			}
			c.(*net.TCPConn).CloseWrite()
		})
	}
	wg.Wait()
	for range 2 {
		if n := <-got; n != size {
			t.Errorf("sink got %d bytes, want %d", n, size)
		}
	}
	// Two connections share one rate: 2 MiB at 40 Mbit/s.
	atLeast(t, "2 MiB over a shared 40 Mbit/s", time.Since(start), time.Duration(2*size*8*float64(time.Second)/rate))
}

func TestBackPressure(t *testing.T) {
	// A server that reads nothing until told to.
	l := tt.Listen(t)
	start := make(chan struct{})
	received := make(chan []byte, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		<-start
		b, _ := io.ReadAll(c)
		received <- b
	}()
	link := linkemu.Symmetric(linkemu.Path{Delay: 5 * time.Millisecond, Rate: 100e6, Queue: 128 << 10})
	p := proxy(t, link, l.Addr().String())
	c := dial(t, p.Addr())

	// Without back-pressure the sender would hand over all 64 MiB at
	// loopback speed. With it, it stops after the kernel's socket buffers,
	// the emulator's queue and one bandwidth-delay product are full.
	const total = 64 << 20
	data := make([]byte, total)
	rand.Read(data)
	c.SetWriteDeadline(time.Now().Add(time.Second))
	n, err := c.Write(data)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the sender wrote %d bytes without being held back (err %v)", n, err)
	}
	if n > 32<<20 {
		t.Errorf("the sender handed over %d MiB before being held back", n>>20)
	}
	// Once the server reads, every byte arrives, in order.
	close(start)
	c.SetWriteDeadline(time.Time{})
	c.(*net.TCPConn).CloseWrite()
	b := <-received
	if !bytes.Equal(b, data[:n]) {
		t.Errorf("server received %d bytes that differ from the %d sent", len(b), n)
	}
}

func TestHalfCloseAndClose(t *testing.T) {
	// The server reads the request to its end, then answers.
	l := tt.Listen(t)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		req, _ := io.ReadAll(c)
		c.Write(append([]byte("got "), req...))
	}()
	p := proxy(t, linkemu.Symmetric(linkemu.Path{Delay: time.Millisecond, Rate: 1e9, Queue: 64 << 10}), l.Addr().String())
	c := dial(t, p.Addr())
	io.WriteString(c, "request")
	c.(*net.TCPConn).CloseWrite()
	resp, err := io.ReadAll(c)
	if err != nil || string(resp) != "got request" {
		t.Fatalf("response %q, %v", resp, err)
	}

	// Close tears down open connections.
	idle := dial(t, p.Addr())
	io.WriteString(idle, "x")
	p.Close()
	idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(idle); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the connection is still open after Close")
	}
}
