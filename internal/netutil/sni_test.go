package netutil

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"
)

// bytesConn is a net.Conn that reads from a byte slice and discards writes.
type bytesConn struct {
	net.Conn
	r *bytes.Reader
}

func (c bytesConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c bytesConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c bytesConn) SetReadDeadline(time.Time) error  { return nil }
func (c bytesConn) SetWriteDeadline(time.Time) error { return nil }
func (c bytesConn) SetDeadline(time.Time) error      { return nil }
func (c bytesConn) Close() error                     { return nil }

// clientHello records the ClientHello a TLS client sends for name.
func clientHello(t testing.TB, name string, protos ...string) []byte {
	a, b := net.Pipe()
	go func() {
		tls.Client(a, &tls.Config{ServerName: name, NextProtos: protos, InsecureSkipVerify: true}).Handshake()
		a.Close()
	}()
	b.SetReadDeadline(time.Now().Add(10 * time.Second))
	var buf [16 << 10]byte
	n, err := io.ReadAtLeast(b, buf[:], 5)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	return buf[:n]
}

func TestPeekClientHello(t *testing.T) {
	in := clientHello(t, "app.localhost", "h2", "http/1.1")
	hello, consumed, err := PeekClientHello(bytesConn{r: bytes.NewReader(in)}, time.Second)
	if err != nil || hello.ServerName != "app.localhost" || len(hello.Protos) != 2 {
		t.Fatalf("hello %+v, %v", hello, err)
	}
	if !bytes.Equal(consumed, in[:len(consumed)]) {
		t.Error("consumed bytes are not the input's prefix")
	}
}

// FuzzPeekClientHello feeds the relay's SNI routing read what a public
// client could send: no panic, and the bytes it reports consumed are
// exactly those it read, to be replayed.
func FuzzPeekClientHello(f *testing.F) {
	f.Add(clientHello(f, "app.localhost", "h2", "http/1.1"))
	f.Add(clientHello(f, "x.example", "acme-tls/1"))
	f.Add(clientHello(f, ""))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: app.localhost\r\n\r\n"))
	f.Add([]byte{0x16, 0x03, 0x01, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		_, consumed, _ := PeekClientHello(bytesConn{r: r}, time.Second)
		if n := len(in) - r.Len(); !bytes.Equal(consumed, in[:n]) {
			t.Fatalf("reported %d consumed bytes, read %d", len(consumed), n)
		}
	})
}
