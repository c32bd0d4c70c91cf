package netutil

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection with fixed
// buffers: 4 MiB to send on the client, 256 KiB to receive on the server
// (more than a loopback segment, so that its window reopens in 64 KiB
// steps).
func tcpPair(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	c.(*net.TCPConn).SetWriteBuffer(2 << 20) // the kernel doubles both
	s.(*net.TCPConn).SetReadBuffer(128 << 10)
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

func TestStallConnClosesAStalledPeer(t *testing.T) {
	c, _ := tcpPair(t) // the server never reads
	sc := NewStallConn(c, 200*time.Millisecond)
	start := time.Now()
	var err error
	buf := make([]byte, 64<<10)
	for err == nil {
		_, err = sc.Write(buf)
	}
	if !errors.Is(err, ErrStalled) {
		t.Fatalf("Write: %v, want ErrStalled", err)
	}
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Errorf("gave up after %v, before the stall timeout", el)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("after a stall the connection is not closed: %v", err)
	}
}

// TestStallConnCountsAcknowledgementsAsProgress stands in for a client that
// reads slowly: its kernel acknowledges bytes now and then while the
// sender's Write stays blocked. The acknowledgements come from a counter
// here (TestAckedBytesCountsWhatThePeerReceived checks the real one), so
// that the test does not hang on the timing of TCP window updates.
func TestStallConnCountsAcknowledgementsAsProgress(t *testing.T) {
	c, _ := tcpPair(t) // the server never reads: the Write blocks
	sc := NewStallConn(c, 500*time.Millisecond)
	var acked atomic.Uint64
	sc.acked = func() (uint64, bool) { return acked.Load(), true }
	stopped := make(chan time.Time, 1)
	go func() {
		// Acknowledgements for two seconds, four stall timeouts.
		for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
			acked.Add(1)
			time.Sleep(20 * time.Millisecond)
		}
		stopped <- time.Now()
	}()
	var err error
	for err == nil {
		_, err = sc.Write(make([]byte, 1<<20))
	}
	gaveUp := time.Now()
	if !errors.Is(err, ErrStalled) {
		t.Fatalf("Write: %v, want ErrStalled once the acknowledgements stop", err)
	}
	if last := <-stopped; gaveUp.Before(last) {
		t.Errorf("gave up %v before the peer stopped acknowledging", last.Sub(gaveUp))
	}
}

func TestStallConnKeepsTheCallersDeadline(t *testing.T) {
	c, _ := tcpPair(t)
	sc := NewStallConn(c, time.Hour)
	sc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	var err error
	buf := make([]byte, 64<<10)
	for err == nil {
		_, err = sc.Write(buf)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write: %v, want the caller's deadline", err)
	}
	// The connection is still usable once the deadline is lifted.
	sc.SetWriteDeadline(time.Time{})
	if err := sc.CloseWrite(); err != nil {
		t.Errorf("CloseWrite: %v", err)
	}
	var _ io.Writer = sc
}

func TestAckedBytesCountsWhatThePeerReceived(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("read from Linux's TCP counters")
	}
	c, s := tcpPair(t)
	acked := ackedBytes(c)
	const n = 100 << 10
	go io.Copy(io.Discard, s)
	if _, err := c.Write(make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	// The acknowledgement follows the bytes by a loopback round trip.
	deadline := time.Now().Add(10 * time.Second)
	for {
		a, ok := acked()
		if !ok {
			t.Fatal("no acknowledged-bytes counter on a TCP connection")
		}
		if a >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("acknowledged %d of %d bytes", a, n)
		}
		time.Sleep(time.Millisecond)
	}
	if _, ok := ackedBytes(&net.UnixConn{})(); ok {
		t.Error("a counter for a connection that is not TCP")
	}
}
