package netutil

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
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

func TestIsClosedByIdentity(t *testing.T) {
	op := func(err error) error {
		return &net.OpError{Op: "read", Net: "tcp", Err: &os.SyscallError{Syscall: "read", Err: err}}
	}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, true},
		{io.EOF, true},
		{fmt.Errorf("copy: %w", io.EOF), true},
		{net.ErrClosed, true},
		{op(syscall.ECONNRESET), true},
		{op(syscall.EPIPE), true},
		{yamux.ErrStreamClosed, true},
		{yamux.ErrConnectionReset, true},
		{fmt.Errorf("stream: %w", yamux.ErrSessionShutdown), true},
		// Failures are not closes, even as *net.OpError.
		{op(syscall.ECONNREFUSED), false},
		{op(syscall.ETIMEDOUT), false},
		{&net.OpError{Op: "dial", Err: errors.New("no route to host")}, false},
		{yamux.ErrTimeout, false},
		{os.ErrDeadlineExceeded, false},
		{errors.New("stream reset"), false},
		{errors.New("tls: bad record MAC"), false},
	} {
		if got := IsClosed(c.err); got != c.want {
			t.Errorf("IsClosed(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// sizes records the size of each buffer Copy reads into.
type sizes struct {
	net.Conn
	reads chan int
}

func (s sizes) Read(p []byte) (int, error) {
	s.reads <- len(p)
	return s.Conn.Read(p)
}

func TestCopyGivesBackItsBigBufferWhenTheSourceIdles(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	src := sizes{Conn: b, reads: make(chan int, 1024)}
	go Copy(io.Discard, src)
	// A burst: Copy moves to its large buffer.
	if _, err := a.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	sawBig := false
	timeout := time.After(30 * time.Second)
	for {
		select {
		case n := <-src.reads:
			switch {
			case n == bigBuf:
				sawBig = true
			case n == smallBuf && sawBig:
				return // the source went quiet; Copy waits on its small buffer
			}
		case <-timeout:
			t.Fatal("Copy still waits on its large buffer")
		}
	}
}
