package relay

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"porthole/internal/selfsigned"
)

// loadOrCreateCert returns the configured certificate, or the self-signed
// one kept in the state directory, making it on first use.
func loadOrCreateCert(c *Config, hosts []string) (tls.Certificate, error) {
	if c.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("TLS certificate: %w", err)
		}
		return cert, nil
	}
	certPath := filepath.Join(c.StateDir, "relay.crt")
	keyPath := filepath.Join(c.StateDir, "relay.key")
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err == nil {
		return cert, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return tls.Certificate{}, fmt.Errorf("state certificate %s: %w", certPath, err)
	}
	if err := os.MkdirAll(c.StateDir, 0o700); err != nil {
		return tls.Certificate{}, fmt.Errorf("state directory: %w", err)
	}
	certPEM, keyPEM, err := selfsigned.Generate("porthole relay", hosts, 10*365*24*time.Hour)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, fmt.Errorf("state directory: %w", err)
	}
	if err := os.WriteFile(certPath, certPEM, 0o644); err != nil {
		return tls.Certificate{}, fmt.Errorf("state directory: %w", err)
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

// serverTLS returns a TLS server config with the relay's certificate (or,
// with ACME, its certificates chosen by SNI), the minimum version and ALPN.
func (s *Server) serverTLS(minVersion uint16, protos ...string) *tls.Config {
	if s.acme != nil {
		return s.acme.tlsConfig(minVersion, protos...)
	}
	return &tls.Config{Certificates: []tls.Certificate{s.cert}, MinVersion: minVersion, NextProtos: protos}
}
