package wire

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"porthole/internal/selfsigned"
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

// sessionPair returns a client SessionConn and the server's end of its TLS
// connection, over an in-memory pipe.
func sessionPair(t *testing.T) (*SessionConn, *tls.Conn) {
	t.Helper()
	certPEM, keyPEM, err := selfsigned.Generate("relay", []string{"relay"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	client := NewSessionConn(a, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}, false)
	server := tls.Server(b, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// header builds a yamux frame header.
func header(typ byte, length uint32) []byte {
	h := make([]byte, yamuxHeaderSize)
	h[1] = typ
	binary.BigEndian.PutUint32(h[4:], 7) // stream id
	binary.BigEndian.PutUint32(h[8:], length)
	return h
}

// reader reads what the peer receives, in the background.
func reader(c net.Conn) <-chan []byte {
	ch := make(chan []byte, 100)
	go func() {
		defer close(ch)
		for {
			buf := make([]byte, 64<<10)
			n, err := c.Read(buf)
			if n > 0 {
				ch <- buf[:n]
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

// receive waits for exactly want from the peer, failing on anything else.
func receive(t *testing.T, ch <-chan []byte, want []byte) {
	t.Helper()
	var got []byte
	for len(got) < len(want) {
		select {
		case b, ok := <-ch:
			if !ok {
				t.Fatalf("connection closed after %q, want %q", got, want)
			}
			got = append(got, b...)
		case <-time.After(10 * time.Second):
			t.Fatalf("received %q, then nothing; want %q", got, want)
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("received %q, want %q", got, want)
	}
}

func writeAll(t *testing.T, c *SessionConn, p []byte) {
	t.Helper()
	if n, err := c.Write(p); n != len(p) || err != nil {
		t.Fatalf("Write(%d bytes) = %d, %v", len(p), n, err)
	}
}

// TestSessionConnWrite checks the one thing SessionConn adds to TLS: a
// data frame's header is held until its body, so the two are sealed back
// to back, while every other frame goes out as it comes.
func TestSessionConnWrite(t *testing.T) {
	c, peer := sessionPair(t)
	got := reader(peer)

	// A data header waits for its body; both arrive, in order.
	dataHdr := header(yamuxTypeData, 5)
	writeAll(t, c, dataHdr)
	if !c.held {
		t.Fatal("the data header was sent without its body")
	}
	writeAll(t, c, []byte("hello"))
	receive(t, got, append(slices.Clone(dataHdr), "hello"...))

	// Window updates, pings and go-aways are never held: the peer gets
	// each with nothing after it.
	for _, typ := range []byte{1, 2, 3} {
		h := header(typ, 1024)
		writeAll(t, c, h)
		receive(t, got, h)
	}
	// Nor is a data frame without a body (a bare FIN or RST).
	empty := header(yamuxTypeData, 0)
	writeAll(t, c, empty)
	receive(t, got, empty)
	// A body that happens to be 12 bytes and looks like a data header is
	// sent as the body it is.
	writeAll(t, c, header(yamuxTypeData, 12))
	writeAll(t, c, header(yamuxTypeData, 99))
	if c.held {
		t.Fatal("a body was held as a header")
	}
	receive(t, got, append(header(yamuxTypeData, 12), header(yamuxTypeData, 99)...))
}

// TestSessionConnWriteAfterClose: once the connection is closed, a write
// fails and reports nothing written, even a body whose header was held.
func TestSessionConnWriteAfterClose(t *testing.T) {
	c, peer := sessionPair(t)
	got := reader(peer)
	writeAll(t, c, header(2, 0)) // completes the handshake
	receive(t, got, header(2, 0))

	writeAll(t, c, header(yamuxTypeData, 3)) // held: nothing to fail yet
	c.Close()
	if n, err := c.Write([]byte("abc")); n != 0 || err == nil {
		t.Errorf("body after close: %d, %v", n, err)
	}
	if n, err := c.Write(header(1, 0)); n != 0 || err == nil {
		t.Errorf("frame after close: %d, %v", n, err)
	}
}
