package relay

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"porthole/internal/selfsigned"
	"porthole/wire"
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
	return &tls.Config{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &s.cert.Load().cert, nil },
		MinVersion:     minVersion,
		NextProtos:     protos,
	}
}

// servingCert is the certificate the relay serves without ACME, and its
// fingerprint; ReloadCertificate replaces it whole.
type servingCert struct {
	cert        tls.Certificate
	fingerprint string
}

func newServingCert(cert tls.Certificate) *servingCert {
	return &servingCert{cert: cert, fingerprint: wire.Fingerprint(cert.Certificate[0])}
}

// Errors of ReloadCertificate for a relay with no certificate files.
var (
	ErrReloadACME       = errors.New("the relay's certificates come from ACME and renew themselves")
	ErrReloadSelfSigned = errors.New("the relay serves its self-signed certificate: there are no certificate files to reload")
)

// ReloadCertificate reads Config.TLSCertFile and TLSKeyFile again (after a
// renewal) and serves the new certificate on new connections; connections
// already open keep theirs. A pair that does not load changes nothing. It
// returns the new certificate's fingerprint: agents that pin the old one
// need the new one.
func (s *Server) ReloadCertificate() (fingerprint string, err error) {
	switch {
	case s.acme != nil:
		return "", ErrReloadACME
	case s.cfg.TLSCertFile == "":
		return "", ErrReloadSelfSigned
	}
	cert, err := tls.LoadX509KeyPair(s.cfg.TLSCertFile, s.cfg.TLSKeyFile)
	if err != nil {
		return "", fmt.Errorf("TLS certificate: %w", err)
	}
	c := newServingCert(cert)
	old := s.cert.Swap(c)
	if old.fingerprint != c.fingerprint {
		s.log.Info("certificate reloaded", "fingerprint", c.fingerprint, "was", old.fingerprint)
	}
	return c.fingerprint, nil
}
