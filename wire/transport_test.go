package wire

import (
	"bytes"
	"io"
	"net"
	"testing"
)

func TestGroupConnKeepsOrderAndFlushesOnClose(t *testing.T) {
	a, b := net.Pipe()
	g := newGroupConn(a)
	var want bytes.Buffer
	got := make(chan []byte)
	go func() {
		data, _ := io.ReadAll(b)
		got <- data
	}()
	for i := range 1000 {
		chunk := bytes.Repeat([]byte{byte(i)}, i%97+1)
		want.Write(chunk)
		if _, err := g.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	// Close sends what is still pending before closing.
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if data := <-got; !bytes.Equal(data, want.Bytes()) {
		t.Fatalf("received %d bytes, want %d in order", len(data), want.Len())
	}
	if _, err := g.Write([]byte("late")); err == nil {
		t.Error("write after close succeeded")
	}
}

func TestGroupConnDeliversUnderBackpressure(t *testing.T) {
	a, b := net.Pipe() // unbuffered: nothing moves until b reads
	g := newGroupConn(a)
	defer g.Close()
	big := make([]byte, groupMax)
	if _, err := g.Write(big); err != nil { // taken by the flusher, which blocks in a.Write
		t.Fatal(err)
	}
	blocked := make(chan struct{})
	go func() {
		g.Write(big) // pending, up to the limit
		g.Write(big) // over the limit: waits for the flusher
		close(blocked)
	}()
	// The reader drains everything; only then can the last write finish.
	n, err := io.ReadFull(b, make([]byte, 3*groupMax))
	if err != nil || n != 3*groupMax {
		t.Fatalf("read %d, %v", n, err)
	}
	<-blocked
}
