// Package acmetest runs Pebble, the ACME test CA, in the test process, with
// a DNS server that resolves every name to 127.0.0.1, so that a relay on
// loopback can obtain real ACME certificates in tests.
package acmetest

import (
	"crypto/x509"
	"encoding/pem"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
)

// CA is a running Pebble.
type CA struct {
	// Directory is the ACME directory URL.
	Directory string
	// DirectoryRoots trusts the directory's own HTTPS certificate.
	DirectoryRoots *x509.CertPool
	// Roots trusts the certificates Pebble issues (and nothing else).
	Roots *x509.CertPool
	// RootFile is Roots as a PEM file.
	RootFile string

	ready   chan struct{}
	handler http.Handler
	t       testing.TB
}

// Start starts Pebble's directory at once; it answers requests only after
// Validate tells it where to validate challenges, so a relay can be started
// (and learn the directory URL) before its ports are known. Requests that
// arrive earlier wait.
func Start(t testing.TB) *CA {
	t.Helper()
	// No random validation delays, no deliberately rejected nonces.
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	c := &CA{ready: make(chan struct{}), t: t}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-c.ready:
			c.handler.ServeHTTP(w, r)
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	c.Directory = srv.URL + wfe.DirectoryPath
	c.DirectoryRoots = x509.NewCertPool()
	c.DirectoryRoots.AddCert(srv.Certificate())
	return c
}

// Validate builds the CA, whose validation authority checks HTTP-01
// challenges on httpPort and TLS-ALPN-01 challenges on tlsPort (of
// 127.0.0.1, whatever the name), and lets waiting requests through.
func (c *CA) Validate(httpPort, tlsPort int) {
	t := c.t
	t.Helper()
	logger := log.New(t.Output(), "pebble ", 0)
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "default"}})
	validator := va.New(logger, httpPort, tlsPort, false, startDNS(t), store)
	frontEnd := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	c.handler = frontEnd.Handler()

	root := authority.GetRootCert(0)
	c.Roots = x509.NewCertPool()
	c.Roots.AddCert(root.Cert)
	c.RootFile = filepath.Join(t.TempDir(), "pebble-root.pem")
	if err := os.WriteFile(c.RootFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.DER}), 0o644); err != nil {
		t.Fatal(err)
	}
	close(c.ready)
}

// startDNS serves DNS over TCP on loopback (Pebble's resolver speaks TCP),
// answering A 127.0.0.1 for every name and nothing else.
func startDNS(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, question := range q.Question {
			if question.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 0},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return ln.Addr().String()
}
