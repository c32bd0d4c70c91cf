package forwarder

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"porthole/wire"
)

// loadCAs reads a PEM bundle. It fails with a *FileError when the file
// cannot be read or holds no certificate.
func loadCAs(what, path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is in the FileError
		}
		return nil, &FileError{What: what, Path: path, Err: err}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, &FileError{What: what, Path: path, Err: ErrNoCertificates}
	}
	return pool, nil
}

// upstreamTLSConfig builds the client TLS config for an https:// or tls://
// upstream. Verification is off unless asked for, because the agent's side
// of the network is assumed private; roots, if set, replace the system's.
func upstreamTLSConfig(u Upstream, verify bool, roots *x509.CertPool, nextProtos []string) *tls.Config {
	return &tls.Config{
		ServerName:         u.Host,
		InsecureSkipVerify: !verify,
		RootCAs:            roots,
		NextProtos:         nextProtos,
		MinVersion:         tls.VersionTLS12,
	}
}

// ErrRelayUntrusted wraps every failure to trust the relay's certificate.
// The forwarder never retries it.
var ErrRelayUntrusted = errors.New("relay certificate not trusted")

// relayTLSConfig builds the TLS config for dialing the relay: system roots,
// a CA file, or a pinned SHA-256 fingerprint of the leaf certificate. It is
// where the relay trust settings are checked and the CA file read, once.
func relayTLSConfig(serverName, caFile, fingerprint string) (*tls.Config, error) {
	cfg := &tls.Config{
		ServerName: serverName,
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{wire.ALPN},
	}
	switch {
	case fingerprint != "":
		want, err := wire.ParseFingerprint(fingerprint)
		if err != nil {
			return nil, err
		}
		cfg.InsecureSkipVerify = true // replaced by the pin check below
		cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return fmt.Errorf("%w: no certificate presented", ErrRelayUntrusted)
			}
			if got := wire.Fingerprint(raw[0]); got != want {
				return fmt.Errorf("%w: fingerprint mismatch: relay presented %s, pinned %s", ErrRelayUntrusted, got, want)
			}
			return nil
		}
	case caFile != "":
		pool, err := loadCAs("relay CA file", caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// isTrustError reports whether a TLS handshake error means the relay's
// certificate was rejected.
func isTrustError(err error) bool {
	var cve *tls.CertificateVerificationError
	var uae x509.UnknownAuthorityError
	var hne x509.HostnameError
	var cie x509.CertificateInvalidError
	return errors.Is(err, ErrRelayUntrusted) || errors.As(err, &cve) || errors.As(err, &uae) ||
		errors.As(err, &hne) || errors.As(err, &cie)
}
