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

// PeekClientHello reads a TLS ClientHello from c without answering it. It
// returns the server name the client asked for and the bytes it consumed,
// which the caller replays with NewPrefixConn.
func PeekClientHello(c net.Conn, timeout time.Duration) (serverName string, consumed []byte, err error) {
	var buf bytes.Buffer
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return "", nil, err
	}
	defer c.SetReadDeadline(time.Time{})
	var name string
	seen := false
	hsErr := tls.Server(readOnlyConn{r: io.TeeReader(c, &buf)}, &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			name, seen = h.ServerName, true
			return nil, errHelloRead
		},
	}).Handshake()
	if !seen {
		return "", buf.Bytes(), hsErr
	}
	return name, buf.Bytes(), nil
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
