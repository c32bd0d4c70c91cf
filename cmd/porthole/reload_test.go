package main

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"porthole/internal/selfsigned"
	"porthole/wire"
)

// TestSIGHUPReloadsTokens runs the built relay with a tokens file and two
// live agents, removes one agent's token from the file and sends SIGHUP:
// the kept token's session goes on untouched, the removed token's agent is
// told auth_failed and exits 1, and a token added to the file works.
func TestSIGHUPReloadsTokens(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens")
	writeTokens := func(lines ...string) {
		if err := os.WriteFile(tokens, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeTokens("keep-token keep", "drop-token")
	relay := start(t, nil, "relay", "--addr", "127.0.0.1:0", "--http", "127.0.0.1:0", "--admin", "127.0.0.1:0",
		"--state-dir", t.TempDir(), "--tokens-file", tokens)
	agentAddr := relay.line(t, `^agents: (\S+)$`)[1]
	httpAddr := relay.line(t, `^http: (\S+)$`)[1]
	adminAddr := relay.line(t, `^admin: (\S+)$`)[1]
	fp := relay.line(t, `^fingerprint: ([0-9a-f]{64})$`)[1]

	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "kept") }))
	defer up.Close()
	agent := func(token, name string) (*proc, string) {
		p := start(t, []string{"PORTHOLE_TOKEN=" + token}, "http", up.URL, "--relay", agentAddr, "--relay-fingerprint", fp, "--name", name, "--web-addr=false")
		return p, p.line(t, `^forwarding (http://\S+) -> `)[1]
	}
	keep, keepURL := agent("keep-token", "keep")
	drop, _ := agent("drop-token", "drop")

	writeTokens("keep-token keep", "new-token")
	relay.cmd.Process.Signal(syscall.SIGHUP)
	relay.line(t, `^tokens reloaded: 2 \(1 added, 1 removed\), 1 sessions ended$`)

	if code := drop.wait(t); code != 1 || !strings.Contains(drop.stderr.String(), "auth_failed") {
		t.Errorf("removed token's agent: exit %d, stderr %q; want 1 and auth_failed", code, drop.stderr.String())
	}
	if body := getVia(t, httpAddr, keepURL+"/"); body != "kept" {
		t.Errorf("kept tunnel answers %q", body)
	}
	if _, newURL := agent("new-token", "fresh"); !strings.Contains(newURL, "fresh.") {
		t.Errorf("new token's tunnel at %s", newURL)
	}
	// The relay ended one session (above); the kept agent did not see
	// its session end, or it would have announced its address again.
	for drained := false; !drained; {
		select {
		case l := <-keep.stdout:
			if strings.HasPrefix(l, "forwarding ") {
				t.Errorf("kept agent printed %q again (it reconnected)", l)
			}
		default:
			drained = true
		}
	}
	// A tokens file that no longer parses changes nothing.
	writeTokens("# nothing")
	relay.cmd.Process.Signal(syscall.SIGHUP)
	if body := getVia(t, httpAddr, keepURL+"/"); body != "kept" {
		t.Errorf("after a bad reload the kept tunnel answers %q", body)
	}
	if got := adminGet(t, adminAddr, "/readyz"); got != "ready\n" {
		t.Errorf("/readyz: %q", got)
	}
	if got := adminGet(t, adminAddr, "/metrics"); !strings.Contains(got, "\nporthole_tunnels{protocol=\"http\"}") {
		t.Errorf("/metrics lacks the relay's metrics:\n%s", got)
	}
	if code := relay.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("relay exit %d", code)
	}
	if !strings.Contains(relay.stderr.String(), "tokens not reloaded") {
		t.Error("a bad tokens file was not reported")
	}
}

// wait waits for the process to exit by itself and returns its code.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	return p.stop(t, syscall.Signal(0))
}

// adminGet returns the body of a GET on the relay's admin listener.
func adminGet(t *testing.T, adminAddr, path string) string {
	t.Helper()
	resp, err := http.Get((&url.URL{Scheme: "http", Host: adminAddr, Path: path}).String())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestSIGHUPReloadsCertificate runs the built relay with certificate files,
// replaces them (as a renewal does) and sends SIGHUP: new connections get
// the new certificate and the relay prints its fingerprint. Files that do
// not load change nothing.
func TestSIGHUPReloadsCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, tokens := filepath.Join(dir, "relay.crt"), filepath.Join(dir, "relay.key"), filepath.Join(dir, "tokens")
	os.WriteFile(tokens, []byte("a-token\n"), 0o600)
	issue := func() string {
		t.Helper()
		certPEM, keyPEM, err := selfsigned.Generate("relay", []string{"127.0.0.1"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(certFile, certPEM, 0o644)
		os.WriteFile(keyFile, keyPEM, 0o600)
		cert, _ := tls.X509KeyPair(certPEM, keyPEM)
		return wire.Fingerprint(cert.Certificate[0])
	}
	first := issue()
	relay := start(t, nil, "relay", "--addr", "127.0.0.1:0", "--http", "127.0.0.1:0",
		"--state-dir", t.TempDir(), "--tokens-file", tokens, "--tls-cert", certFile, "--tls-key", keyFile)
	agentAddr := relay.line(t, `^agents: (\S+)$`)[1]
	if fp := relay.line(t, `^fingerprint: ([0-9a-f]{64})$`)[1]; fp != first {
		t.Fatalf("relay serves %s, the file holds %s", fp, first)
	}
	served := func() string {
		t.Helper()
		c, err := tls.Dial("tcp", agentAddr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{wire.ALPN}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return wire.Fingerprint(c.ConnectionState().PeerCertificates[0].Raw)
	}
	if got := served(); got != first {
		t.Fatalf("served %s before the reload, want %s", got, first)
	}

	second := issue()
	relay.cmd.Process.Signal(syscall.SIGHUP)
	if fp := relay.line(t, `^certificate reloaded: fingerprint ([0-9a-f]{64})$`)[1]; fp != second {
		t.Errorf("reloaded %s, the file holds %s", fp, second)
	}
	if got := served(); got != second {
		t.Errorf("served %s after the reload, want %s", got, second)
	}

	// A key that does not match changes nothing. The tokens are reloaded
	// after the certificate, so their line says the attempt is over.
	certPEM, _, _ := selfsigned.Generate("relay", []string{"127.0.0.1"}, time.Hour)
	os.WriteFile(certFile, certPEM, 0o644)
	relay.cmd.Process.Signal(syscall.SIGHUP)
	relay.line(t, `^tokens reloaded: `)
	if got := served(); got != second {
		t.Errorf("served %s after a failed reload, want %s", got, second)
	}
	if code := relay.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("relay exit %d", code)
	}
	if !strings.Contains(relay.stderr.String(), "certificate not reloaded") {
		t.Error("a bad certificate pair was not reported")
	}
}
