package wire

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"porthole/internal/selfsigned"
)

// TestSessionConnCloseSendsWhatIsPending: a message written just before
// Close reaches the peer. Over an unbuffered pipe the message is still
// waiting in the groupConn when Close begins; crypto/tls's Close would cut
// it off with a past write deadline if SessionConn did not drain first.
func TestSessionConnCloseSendsWhatIsPending(t *testing.T) {
	certPEM, keyPEM, err := selfsigned.Generate("relay", []string{"relay"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe() // unbuffered: nothing leaves until the peer reads
	server := NewSessionConn(a, &tls.Config{Certificates: []tls.Certificate{cert}}, true)
	client := tls.Client(b, &tls.Config{InsecureSkipVerify: true})
	handshake := make(chan error, 1)
	go func() { handshake <- client.Handshake() }()
	if err := server.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-handshake; err != nil {
		t.Fatal(err)
	}
	if _, err := server.Write([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() { server.Close(); close(closed) }()
	got := make([]byte, len("last words"))
	if _, err := io.ReadFull(client, got); err != nil || string(got) != "last words" {
		t.Errorf("peer read %q, %v", got, err)
	}
	go io.Copy(io.Discard, client)
	<-closed
}
