package wire

import (
	"io"
	"log"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// yamuxPair returns a client and a server session over a loopback pipe,
// the server granting window on each stream.
func yamuxPair(t *testing.T, window int64) (client, server *yamux.Session) {
	t.Helper()
	a, b := net.Pipe()
	quiet := log.New(io.Discard, "", 0)
	var err error
	if client, err = yamux.Client(a, YamuxConfig(KeepAliveInterval, MinStreamWindow, quiet)); err != nil {
		t.Fatal(err)
	}
	if server, err = yamux.Server(b, YamuxConfig(KeepAliveInterval, window, quiet)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func TestCheckStreamWindow(t *testing.T) {
	for n, ok := range map[int64]bool{MinStreamWindow - 1: false, MinStreamWindow: true, 16 << 20: true, MaxStreamWindow: true, MaxStreamWindow + 1: false} {
		if err := CheckStreamWindow(n); (err == nil) != ok {
			t.Errorf("CheckStreamWindow(%d) = %v", n, err)
		}
	}
}

// TestIdleStreamGivesBackItsBuffer fills a stream's whole receive window
// while its reader waits, reads it all, and then lets the stream idle, as a
// kept-alive connection does after a download: the buffer yamux grew for
// the burst must be freed.
func TestIdleStreamGivesBackItsBuffer(t *testing.T) {
	const window = 16 << 20
	client, server := yamuxPair(t, window)
	base := liveHeap()

	out, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	// Written in 64 KiB pieces, as the relay and agent copy: yamux's send
	// loop keeps a buffer as large as the largest frame it sent.
	sent := make(chan error, 1)
	go func() {
		piece := make([]byte, 64<<10)
		for range window / len(piece) {
			if _, err := out.Write(piece); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	ys, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	in := NewStream(ys)
	defer in.Close()
	if err := <-sent; err != nil { // the whole window is buffered on the server
		t.Fatal(err)
	}
	if grown := liveHeap() - base; grown < window {
		t.Fatalf("the burst grew the heap by only %d bytes", grown)
	}
	if _, err := io.ReadFull(in, make([]byte, window)); err != nil {
		t.Fatal(err)
	}

	// Wait for the buffer to go: it is freed ShrinkAfter after the last read.
	deadline := time.Now().Add(10 * ShrinkAfter)
	for liveHeap() > base+window/4 {
		if time.Now().After(deadline) {
			t.Fatalf("an idle stream still holds %d MiB", (liveHeap()-base)>>20)
		}
		time.Sleep(ShrinkAfter / 10)
	}
	// The stream still works.
	go out.Write([]byte("more"))
	b := make([]byte, 4)
	if _, err := io.ReadFull(in, b); err != nil || string(b) != "more" {
		t.Errorf("after shrinking: %q, %v", b, err)
	}
}
