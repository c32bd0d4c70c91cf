package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	tt "porthole/internal/tunneltest"
)

// TestAgentTrustsARelayByTheSystemRoots: a relay whose certificate chains
// to a root the system trusts needs no --relay-ca or --relay-fingerprint.
// The test stands in for the system's roots with SSL_CERT_FILE, which Go
// reads instead of the distribution's bundle; the agent is given the relay
// as a URL and as a bare host with a port.
func TestAgentTrustsARelayByTheSystemRoots(t *testing.T) {
	cert := tt.NewCert(t, "localhost")
	relay := start(t, nil, "relay", "--addr", "127.0.0.1:0", "--http", "127.0.0.1:0", "--state-dir", t.TempDir(),
		"--token", "s3cret", "--tls-cert", cert.CertFile, "--tls-key", cert.KeyFile)
	agentAddr := relay.line(t, `^agents: (\S+)$`)[1]
	httpAddr := relay.line(t, `^http: (\S+)$`)[1]
	_, port, _ := strings.Cut(agentAddr, ":")

	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "trusted") }))
	defer up.Close()
	system := []string{"PORTHOLE_TOKEN=s3cret", "SSL_CERT_FILE=" + cert.CertFile, "SSL_CERT_DIR=/nonexistent"}
	for i, relayArg := range []string{"https://localhost:" + port + "/", "localhost:" + port} {
		name := []string{"url", "hostport"}[i]
		agent := start(t, system, "http", up.URL, "--relay", relayArg, "--name", name, "--web-addr", "false")
		url := agent.line(t, `^forwarding (http://\S+) -> `)[1]
		if body := getVia(t, httpAddr, url+"/"); body != "trusted" {
			t.Errorf("--relay %s: body %q", relayArg, body)
		}
		agent.stop(t, syscall.SIGTERM)
	}

	// Without that root the same agent refuses the relay, for good.
	code, stderr := runExit(t, []string{"PORTHOLE_TOKEN=s3cret", "SSL_CERT_FILE=/nonexistent", "SSL_CERT_DIR=/nonexistent"},
		"http", up.URL, "--relay", "localhost:"+port, "--web-addr", "false")
	if code != 1 || !strings.Contains(stderr, "not trusted") {
		t.Errorf("untrusted relay: exit %d, stderr %q", code, stderr)
	}
}
