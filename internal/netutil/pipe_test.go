package netutil

import (
	"bytes"
	"io"
	"net"
	"testing"
)

func TestPipeHalfCloses(t *testing.T) {
	a1, a2 := net.Pipe()
	b1, b2 := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- Pipe(a2, b1) }()
	go func() {
		io.WriteString(a1, "request")
		a1.Close()
	}()
	got, _ := io.ReadAll(b2)
	b2.Close()
	if string(got) != "request" {
		t.Errorf("got %q", got)
	}
	if err := <-done; err != nil {
		t.Errorf("Pipe: %v", err)
	}
}

func BenchmarkCopy(b *testing.B) {
	src := bytes.Repeat([]byte("x"), 1<<20)
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		Copy(io.Discard, bytes.NewReader(src))
	}
}
