package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"porthole/forwarder"
	"porthole/internal/acmetest"
	tt "porthole/internal/tunneltest"
	"porthole/relay"
	"porthole/wire"
)

const acmeDomain = "tunnels.test"

// startACMERelay starts a relay for acmeDomain that gets its certificates
// from a Pebble CA validating challenges on the relay's own listeners.
func startACMERelay(t *testing.T, httpAddr, httpsAddr string, edit ...func(*relay.Config)) (srv *relay.Server, ca *acmetest.CA, stateDir string) {
	t.Helper()
	ca = acmetest.Start(t)
	cfg := tt.RelayConfig(t)
	cfg.Domain = acmeDomain
	cfg.HTTPAddr, cfg.HTTPSAddr = httpAddr, httpsAddr
	a := relay.DefaultACMEConfig()
	a.CA, a.CARoots, a.Email = ca.Directory, ca.DirectoryRoots, "ops@tunnels.test"
	cfg.ACME = &a
	cfg.AdminAddr = "127.0.0.1:0"
	for _, e := range edit {
		e(&cfg)
	}
	srv = tt.StartRelay(t, cfg)
	// The CA answers nothing until Validate: no certificate, not ready.
	if got := adminGet(t, srv, "/readyz"); got != "no certificate for "+acmeDomain+" yet\n" {
		t.Errorf("/readyz before the certificate: %q", got)
	}
	ca.Validate(portNumber(srv.HTTPAddr()), portNumber(srv.HTTPSAddr()))
	if srv.Fingerprint() != "" {
		t.Errorf("ACME relay has a fingerprint to pin: %q", srv.Fingerprint())
	}
	return srv, ca, cfg.StateDir
}

// portNumber is the port of a listener address, or 0 for none.
func portNumber(addr string) int {
	n, _ := strconv.Atoi(port(addr))
	return n
}

// verifiedCert dials addr as name, trusting only roots, and returns the
// verified leaf certificate.
func verifiedCert(t *testing.T, addr, name string, roots *x509.CertPool, protos ...string) (*x509.Certificate, error) {
	t.Helper()
	d := &tls.Dialer{Config: &tls.Config{ServerName: name, RootCAs: roots, NextProtos: protos}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
}

// TestACMETLSALPN: a relay with only an HTTPS listener answers the CA's
// TLS-ALPN-01 challenges there. It gets a certificate for its own domain
// (which agents then trust by the CA's roots) and one for a tunnel's name at
// the first handshake for it; a name no tunnel holds gets none.
func TestACMETLSALPN(t *testing.T) {
	srv, ca, state := startACMERelay(t, "", "127.0.0.1:0")

	leaf, err := verifiedCert(t, srv.AgentAddr(), acmeDomain, ca.Roots, wire.ALPN)
	if err != nil {
		t.Fatalf("agent listener: %v", err)
	}
	if err := leaf.VerifyHostname(acmeDomain); err != nil {
		t.Fatal(err)
	}

	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello over "+r.Header.Get("X-Forwarded-Proto"))
	}))
	defer up.Close()
	acfg := tt.AgentConfig(t, srv, forwarder.Tunnel{Proto: wire.ProtoHTTP, Upstream: up.URL, Name: "app"})
	// The agent cannot resolve the test domain, so it dials the relay by
	// address and pins the certificate just verified against the CA.
	acfg.RelayFingerprint = wire.Fingerprint(leaf.Raw)
	_, st := tt.StartAgent(t, acfg)
	url := tt.URL(t, st, "https")
	if !strings.HasPrefix(url, "https://app."+acmeDomain+":") {
		t.Fatalf("tunnel URL %s", url)
	}

	// A browser-like client that trusts only the CA's root.
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return new(net.Dialer).DialContext(ctx, "tcp", srv.HTTPSAddr())
		},
		TLSClientConfig:   &tls.Config{RootCAs: ca.Roots},
		ForceAttemptHTTP2: true,
	}}
	resp, body := get(t, client, url+"/")
	if resp.StatusCode != 200 || body != "hello over https" || resp.ProtoMajor != 2 {
		t.Fatalf("got %s %d %q", resp.Proto, resp.StatusCode, body)
	}
	if got := resp.TLS.PeerCertificates[0].DNSNames; len(got) != 1 || got[0] != "app."+acmeDomain {
		t.Errorf("tunnel certificate names %v", got)
	}

	// Nobody holds this name: the handshake fails and nothing is stored.
	_, err = verifiedCert(t, srv.HTTPSAddr(), "nobody."+acmeDomain, ca.Roots)
	if err == nil {
		t.Fatal("got a certificate for a name no tunnel holds")
	}
	if !strings.Contains(err.Error(), "remote error: tls:") {
		t.Errorf("handshake error %v, want a TLS alert from the relay", err)
	}
	stored := storedCerts(t, state)
	for _, want := range []string{acmeDomain, "app." + acmeDomain} {
		if !stored[want] {
			t.Errorf("no stored certificate for %s (have %v)", want, stored)
		}
	}
	if stored["nobody."+acmeDomain] {
		t.Error("stored a certificate for a name no tunnel holds")
	}

	// The admin listener reports the issuances and when the domain's
	// certificate expires; the relay is ready now that it has one.
	m := scrape(t, srv)
	if got, _ := value(m, "porthole_acme_certificates_obtained_total"); got != 2 {
		t.Errorf("certificates obtained: %v, want 2 (domain and tunnel)", got)
	}
	if got, _ := value(m, "porthole_acme_certificate_failures_total"); got != 0 {
		t.Errorf("certificate failures: %v", got)
	}
	if got, _ := value(m, "porthole_certificate_expiry_timestamp_seconds", "name", acmeDomain); got != float64(leaf.NotAfter.Unix()) {
		t.Errorf("domain certificate expiry %v, want %v", got, leaf.NotAfter.Unix())
	}
	if got := adminGet(t, srv, "/readyz"); got != "ready\n" {
		t.Errorf("/readyz: %q", got)
	}
}

func adminGet(t *testing.T, srv *relay.Server, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + srv.AdminAddr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestACMETLSALPNWithoutAChallenge: a handshake that offers only the
// TLS-ALPN-01 protocol for a name the relay is not validating is refused
// like any other, and does not write the relay's log: strangers would
// otherwise fill it at their own pace.
func TestACMETLSALPNWithoutAChallenge(t *testing.T) {
	var logged atomic.Int64
	srv, _, _ := startACMERelay(t, "", "127.0.0.1:0", func(c *relay.Config) {
		c.Logger = slog.New(namesHandler{Handler: c.Logger.Handler(), suffix: ".nobody." + acmeDomain, n: &logged})
	})
	const tries = 50
	for i := range tries {
		name := fmt.Sprintf("n%d.nobody.%s", i, acmeDomain)
		c, err := tls.Dial("tcp", srv.HTTPSAddr(), &tls.Config{ServerName: name, InsecureSkipVerify: true, NextProtos: []string{"acme-tls/1"}})
		if err == nil {
			c.Close()
			t.Fatalf("TLS-ALPN-01 handshake for %s succeeded", name)
		}
	}
	if n := logged.Load(); n > 0 {
		t.Errorf("%d handshakes for names under no challenge wrote %d log lines above debug", tries, n)
	}
}

// namesHandler counts the records above debug that mention a name ending
// in suffix, and passes every record on.
type namesHandler struct {
	slog.Handler
	suffix string
	n      *atomic.Int64
}

func (h namesHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level > slog.LevelDebug {
		r.Attrs(func(a slog.Attr) bool {
			if strings.HasSuffix(a.Value.String(), h.suffix) {
				h.n.Add(1)
				return false
			}
			return true
		})
	}
	return h.Handler.Handle(ctx, r)
}

func (h namesHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return namesHandler{Handler: h.Handler.WithAttrs(as), suffix: h.suffix, n: h.n}
}

func (h namesHandler) WithGroup(g string) slog.Handler {
	return namesHandler{Handler: h.Handler.WithGroup(g), suffix: h.suffix, n: h.n}
}

// TestACMEHTTP01: a relay with only a public HTTP listener answers the CA's
// HTTP-01 challenges there, ahead of any tunnel, and gets its domain's
// certificate for the agent listener.
func TestACMEHTTP01(t *testing.T) {
	srv, ca, state := startACMERelay(t, "127.0.0.1:0", "")
	if _, err := verifiedCert(t, srv.AgentAddr(), acmeDomain, ca.Roots, wire.ALPN); err != nil {
		t.Fatalf("agent listener: %v", err)
	}
	if !storedCerts(t, state)[acmeDomain] {
		t.Error("domain certificate not stored in the state directory")
	}
}

// storedCerts lists the names with a certificate in the relay's state
// directory.
func storedCerts(t *testing.T, stateDir string) map[string]bool {
	t.Helper()
	found := map[string]bool{}
	err := filepath.WalkDir(filepath.Join(stateDir, "acme", "certificates"), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".crt") {
			found[strings.TrimSuffix(d.Name(), ".crt")] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
