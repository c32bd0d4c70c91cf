package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"

	"porthole/wire"
)

// ACMEConfig makes the relay obtain and renew its certificates from an ACME
// certificate authority (Let's Encrypt by default): one for its own domain,
// used on the agent listener and the HTTPS listener, and one for each HTTP
// tunnel's hostname, obtained on demand at the first TLS handshake for it.
type ACMEConfig struct {
	Email string // contact address for the CA account; may be empty
	// CA is the ACME directory URL; Let's Encrypt's production directory
	// if empty.
	CA string
	// CARoots, if set, replaces the system roots for talking to the CA
	// (a private CA whose directory has its own certificate).
	CARoots *x509.CertPool

	// At most NewCerts certificates for tunnel names are obtained per
	// Window; renewals and the relay's own names do not count. It keeps an
	// agent that binds many names from spending the CA's rate limits.
	NewCerts int
	Window   time.Duration
}

// DefaultACMEConfig returns the command line's defaults.
func DefaultACMEConfig() ACMEConfig {
	return ACMEConfig{NewCerts: 20, Window: time.Hour}
}

// ErrNoCertificate is what a TLS handshake for a name the relay will not
// hold a certificate for fails with.
var ErrNoCertificate = errors.New("relay: no tunnel holds this name")

// errIssuanceRateLimited aborts an on-demand issuance beyond the rate limit.
var errIssuanceRateLimited = errors.New("relay: too many new certificates; try again later")

// acmeManager obtains, stores (in the state directory) and renews the
// relay's certificates.
type acmeManager struct {
	magic   *certmagic.Config
	issuer  *certmagic.ACMEIssuer
	cache   *certmagic.Cache
	limiter *certmagic.RingBufferRateLimiter
	own     []string // the relay's own names, managed from the start
	cancel  context.CancelFunc
	metrics *relayMetrics
	log     *slog.Logger
}

func validateACME(c *Config) error {
	a := c.ACME
	if a == nil {
		return nil
	}
	if c.TLSCertFile != "" {
		return fieldErr("TLSCertFile", "set together with ACME, which gets the certificates")
	}
	if c.StateDir == "" {
		return fieldErr("StateDir", "required to keep ACME's certificates")
	}
	if !certmagic.SubjectQualifiesForPublicCert(c.Domain) {
		return fieldErr("Domain", "ACME needs a public domain, not %q", c.Domain)
	}
	if c.HTTPAddr == "" && c.HTTPSAddr == "" {
		return fieldErr("ACME", "needs the public HTTP or HTTPS listener to answer the CA's challenges")
	}
	if a.NewCerts <= 0 || a.Window <= 0 {
		return fieldErr("ACME", "issuance rate must be positive (start from DefaultACMEConfig)")
	}
	return nil
}

// newACME sets up certificate management once the public listeners are
// bound: the CA's HTTP-01 and TLS-ALPN-01 challenges are answered on them.
// allowed reports whether a tunnel (live or reserved) holds a name.
func newACME(c *Config, httpLn, httpsLn net.Listener, allowed func(name string) bool, metrics *relayMetrics, log *slog.Logger) (*acmeManager, error) {
	a := c.ACME
	log = log.With("component", "acme")
	zl := zapToSlog(log)
	m := &acmeManager{limiter: certmagic.NewRateLimiter(a.NewCerts, a.Window), metrics: metrics, log: log}
	m.own = []string{c.Domain}
	if c.PublicHost != c.Domain && certmagic.SubjectQualifiesForPublicCert(c.PublicHost) {
		m.own = append(m.own, c.PublicHost)
	}
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return m.magic, nil },
		Logger:           zl,
	})
	m.magic = certmagic.New(m.cache, certmagic.Config{
		Storage:           &certmagic.FileStorage{Path: filepath.Join(c.StateDir, "acme")},
		DefaultServerName: c.Domain,
		Logger:            zl,
		OnDemand: &certmagic.OnDemandConfig{DecisionFunc: func(_ context.Context, name string) error {
			if m.isOwn(name) || allowed(name) {
				return nil
			}
			return ErrNoCertificate
		}},
		OnEvent: m.onEvent,
	})
	tmpl := certmagic.ACMEIssuer{
		CA:           a.CA,
		Email:        a.Email,
		Agreed:       true,
		TrustedRoots: a.CARoots,
		Logger:       zl,
	}
	// The relay's own listeners answer the challenges. Pointing the
	// library's fallback solvers at those same addresses keeps it from
	// binding ports of its own (it finds them taken).
	if httpLn != nil {
		host, port := splitAddr(httpLn.Addr())
		tmpl.ListenHost, tmpl.AltHTTPPort = host, port
	} else {
		tmpl.DisableHTTPChallenge = true
	}
	if httpsLn != nil {
		host, port := splitAddr(httpsLn.Addr())
		tmpl.ListenHost, tmpl.AltTLSALPNPort = host, port
	} else {
		tmpl.DisableTLSALPNChallenge = true
	}
	m.issuer = certmagic.NewACMEIssuer(m.magic, tmpl)
	m.magic.Issuers = []certmagic.Issuer{m.issuer}

	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	if err := m.magic.ManageAsync(ctx, m.own); err != nil {
		m.stop()
		return nil, fmt.Errorf("ACME: %w", err)
	}
	return m, nil
}

func splitAddr(a net.Addr) (string, int) {
	host, port, _ := net.SplitHostPort(a.String())
	p, _ := strconv.Atoi(port)
	return host, p
}

func (m *acmeManager) isOwn(name string) bool {
	for _, n := range m.own {
		if n == name {
			return true
		}
	}
	return false
}

// onEvent rate-limits new certificates for tunnel names and logs what the
// library obtained or failed to obtain.
func (m *acmeManager) onEvent(_ context.Context, event string, data map[string]any) error {
	name, _ := data["identifier"].(string)
	switch event {
	case "cert_obtaining":
		if renewal, _ := data["renewal"].(bool); renewal || m.isOwn(name) {
			return nil
		}
		if !m.limiter.Allow() {
			m.log.Warn("certificate not requested: rate limit", "name", name)
			return errIssuanceRateLimited
		}
	case "cert_obtained":
		m.metrics.certsOK.Inc()
		m.log.Info("certificate obtained", "name", name)
	case "cert_failed":
		m.metrics.certsFailed.Inc()
		m.log.Warn("certificate not obtained", "name", name, "err", data["error"])
	}
	return nil
}

// tlsConfig returns a server config that picks certificates by SNI,
// obtaining them on demand, with the given minimum version and ALPN.
func (m *acmeManager) tlsConfig(minVersion uint16, protos ...string) *tls.Config {
	return &tls.Config{GetCertificate: m.getCertificate, MinVersion: minVersion, NextProtos: protos}
}

// getCertificate picks (or obtains) the certificate for a handshake. An
// issuance outlives the handshake that started it: a client that gives up
// after the relay's handshake deadline, while the CA is still validating,
// must not cancel it, or a slow CA would never finish one.
func (m *acmeManager) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return m.magic.GetCertificateWithContext(context.WithoutCancel(hello.Context()), hello)
}

// solveTLSALPN answers a CA's TLS-ALPN-01 challenge on c (a ClientHello
// that offers only the acme-tls/1 protocol), then closes c.
func (m *acmeManager) solveTLSALPN(c net.Conn) {
	defer c.Close()
	tc := tls.Server(c, m.tlsConfig(tls.VersionTLS12, acmez.ACMETLS1Protocol))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		m.log.Debug("tls-alpn-01 challenge handshake failed", "err", err)
	}
}

// handleHTTPChallenge answers a CA's HTTP-01 challenge request, reporting
// whether r was one.
func (m *acmeManager) handleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	return m.issuer.HandleHTTPChallenge(w, r)
}

// challengePending reports whether the relay is validating name with the
// CA right now. Only then does a TLS-ALPN-01 handshake for it go to the
// library, which logs an error for each one it has no challenge for: a
// stranger's handshakes would otherwise write the relay's log at their own
// pace (a thousand lines a second from one client); they get the relay's
// ordinary TLS instead, which names no protocol they asked for.
func (m *acmeManager) challengePending(name string) bool {
	_, ok := certmagic.GetACMEChallenge(name)
	return ok
}

// isTLSALPNChallenge reports whether a ClientHello's ALPN list is that of a
// TLS-ALPN-01 validation (RFC 8737: exactly acme-tls/1).
func isTLSALPNChallenge(protos []string) bool {
	return len(protos) == 1 && protos[0] == acmez.ACMETLS1Protocol
}

func (m *acmeManager) stop() {
	m.cancel()
	m.cache.Stop()
	m.limiter.Stop()
}

// holdsName reports whether a live or reserved HTTP tunnel holds host: the
// relay asks for a certificate on demand only for such names, so a stranger
// who sends a made-up SNI cannot make it call the CA.
func (s *Server) holdsName(host string) bool {
	name, ok := s.nameFromHost(host)
	if !ok {
		return false
	}
	b, offline := s.reg.lookup(name)
	return offline || b != nil && b.proto == wire.ProtoHTTP
}

// isACMEChallenge reports whether a public HTTP request is a CA's HTTP-01
// validation, which the relay answers itself whatever tunnel holds the host.
func (s *Server) isACMEChallenge(r *http.Request) bool {
	return s.acme != nil && certmagic.LooksLikeHTTPChallenge(r)
}

// leaf returns the certificate the relay holds for name, or nil.
func (m *acmeManager) leaf(name string) *x509.Certificate {
	var newest *x509.Certificate
	for _, c := range m.cache.AllMatchingCertificates(name) {
		if c.Leaf != nil && (newest == nil || c.Leaf.NotAfter.After(newest.NotAfter)) {
			newest = c.Leaf
		}
	}
	return newest
}
