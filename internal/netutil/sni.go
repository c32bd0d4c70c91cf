package netutil

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"time"
)

var errHelloRead = errors.New("client hello read")

// ClientHello is what a router needs from a TLS ClientHello.
type ClientHello struct {
	ServerName string   // SNI, lowercased by crypto/tls
	Protos     []string // ALPN protocols offered, in the client's order
}

// PeekClientHello reads a TLS ClientHello from c without answering it. It
// returns the server name and ALPN protocols the client asked for and the
// bytes it consumed, which the caller replays with NewPrefixConn.
func PeekClientHello(c net.Conn, timeout time.Duration) (hello ClientHello, consumed []byte, err error) {
	var buf bytes.Buffer
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return ClientHello{}, nil, err
	}
	defer c.SetReadDeadline(time.Time{})
	seen := false
	hsErr := tls.Server(readOnlyConn{r: io.TeeReader(c, &buf)}, &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			hello, seen = ClientHello{ServerName: h.ServerName, Protos: h.SupportedProtos}, true
			return nil, errHelloRead
		},
	}).Handshake()
	if !seen {
		return ClientHello{}, buf.Bytes(), hsErr
	}
	return hello, buf.Bytes(), nil
}

// readOnlyConn lets crypto/tls read a ClientHello and swallows its replies.
type readOnlyConn struct {
	net.Conn
	r io.Reader
}

func (c readOnlyConn) Read(p []byte) (int, error)         { return c.r.Read(p) }
func (c readOnlyConn) Write(p []byte) (int, error)        { return 0, io.ErrClosedPipe }
func (c readOnlyConn) Close() error                       { return nil }
func (c readOnlyConn) LocalAddr() net.Addr                { return nil }
func (c readOnlyConn) RemoteAddr() net.Addr               { return nil }
func (c readOnlyConn) SetDeadline(t time.Time) error      { return nil }
func (c readOnlyConn) SetReadDeadline(t time.Time) error  { return nil }
func (c readOnlyConn) SetWriteDeadline(t time.Time) error { return nil }
