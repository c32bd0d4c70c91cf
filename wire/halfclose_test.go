package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// shortHalfClosedTimeout sets HalfClosedTimeout to d for one test.
func shortHalfClosedTimeout(t *testing.T, d time.Duration) {
	was := HalfClosedTimeout
	HalfClosedTimeout = d
	t.Cleanup(func() { HalfClosedTimeout = was })
}

// TestHalfClosedStreamKeepsReceiving: a stream this end closed goes on
// receiving for as long as the peer sends and its reader reads, however
// long past HalfClosedTimeout, as a TCP connection whose client
// half-closed and then downloads does.
func TestHalfClosedStreamKeepsReceiving(t *testing.T) {
	shortHalfClosedTimeout(t, 100*time.Millisecond)
	client, server, _, sl := ledgerPair(t, 1<<20, nil)
	out, in := openPair(t, client, server, sl)
	if err := in.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// The peer sends a piece every 20 ms for a second: ten timeouts.
	want := bytes.Repeat([]byte("piece of a long download\n"), 50)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for p := range bytes.Lines(want) {
			<-tick.C
			if _, err := out.Write(p); err != nil {
				return
			}
		}
		out.Close()
	}()
	got, err := io.ReadAll(in)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("received %d of %d bytes, then %v", len(got), len(want), err)
	}
	if in.Aborted() {
		t.Error("a stream that kept receiving was reset")
	}
}

// TestQuietHalfClosedStreamIsReset: a stream this end closed that
// receives nothing for HalfClosedTimeout is reset, at the peer and here,
// and both sessions let go of it: yamux would otherwise keep it until the
// peer closed its side, which it may never do.
func TestQuietHalfClosedStreamIsReset(t *testing.T) {
	shortHalfClosedTimeout(t, 100*time.Millisecond)
	client, server, _, sl := ledgerPair(t, 1<<20, nil)
	out, in := openPair(t, client, server, sl)
	aborted := make(chan struct{})
	in.OnAbort(func() { close(aborted) })
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	<-aborted
	// The peer learns of the reset: its writes fail.
	for {
		_, err := out.Write([]byte("x"))
		if errors.Is(err, yamux.ErrConnectionReset) {
			break
		}
		if err != nil {
			t.Fatalf("the peer's write failed with %v, want a reset", err)
		}
		client.Ping() // a round trip, for the reset to arrive
	}
	// Both sessions forget the stream; each ping is a frame after which
	// this end's reset reaches yamux.
	deadline := time.Now().Add(10 * time.Second)
	for server.NumStreams() != 0 || client.NumStreams() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("streams kept: %d here, %d at the peer", server.NumStreams(), client.NumStreams())
		}
		if _, err := client.Ping(); err != nil {
			t.Fatal(err)
		}
	}
	// The session goes on.
	out2, in2 := openPair(t, client, server, sl)
	go out2.Write([]byte("still here"))
	b := make([]byte, 10)
	if _, err := io.ReadFull(in2, b); err != nil || string(b) != "still here" {
		t.Fatalf("a new stream after the reset: %q, %v", b, err)
	}
}
