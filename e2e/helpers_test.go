package e2e

import (
	"crypto/tls"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func writePEM(t *testing.T, der []byte) string {
	return writeFile(t, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
}

// peerCert returns the DER certificate a TLS server presents on conn.
func peerCert(t *testing.T, conn net.Conn) []byte {
	t.Helper()
	tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"porthole/1"}})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	return tc.ConnectionState().PeerCertificates[0].Raw
}
