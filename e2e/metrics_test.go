package e2e

import (
	"bufio"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"porthole/forwarder"
	tt "porthole/internal/tunneltest"
	"porthole/relay"
	"porthole/wire"
)

// scrape fetches the relay's /metrics and parses it with the Prometheus
// text parser.
func scrape(t *testing.T, srv *relay.Server) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + srv.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families
}

// value returns the value of the series of name with exactly labels (in
// name=value pairs), and whether it exists.
func value(families map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := families[name]
	if f == nil {
		return 0, false
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
next:
	for _, m := range f.Metric {
		if len(m.Label) != len(want) {
			continue
		}
		for _, l := range m.Label {
			if v, ok := want[l.GetName()]; !ok || v != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// labelValues lists the values a label takes in a family.
func labelValues(families map[string]*dto.MetricFamily, name, label string) map[string]bool {
	out := map[string]bool{}
	if f := families[name]; f != nil {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == label {
					out[l.GetValue()] = true
				}
			}
		}
	}
	return out
}

// rawGet sends one request on a fresh connection to the relay's HTTP
// listener and reads the whole response; it returns both as sent and
// received on the wire.
func rawGet(t *testing.T, srv *relay.Server, host string) (request, response string) {
	t.Helper()
	c, err := net.Dial("tcp", srv.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	request = rawRequest(host)
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := http.ReadResponse(bufio.NewReader(strings.NewReader(string(b))), nil); err != nil {
		t.Fatalf("response from %s: %v", host, err)
	}
	return request, string(b)
}

// TestMetrics drives known traffic through a relay and checks the exact
// counts its admin listener reports, and that the tunnel label stays
// within its cap.
func TestMetrics(t *testing.T) {
	cfg := tt.RelayConfig(t)
	cfg.AdminAddr = "127.0.0.1:0"
	cfg.MetricsTunnelLabels = 2
	cfg.NoAuth, cfg.Tokens = false, []relay.Token{{Secret: "alpha"}, {Secret: "beta"}}
	srv := tt.StartRelay(t, cfg)

	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + srv.AdminAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %s", path, resp.Status)
		}
	}

	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer up.Close()
	echo := tt.EchoServer(t, nil)
	acfg := tt.AgentConfig(t, srv,
		forwarder.Tunnel{Proto: wire.ProtoHTTP, Upstream: up.URL, Name: "one"},
		forwarder.Tunnel{Proto: wire.ProtoHTTP, Upstream: up.URL, Name: "two"},
		forwarder.Tunnel{Proto: wire.ProtoHTTP, Upstream: up.URL, Name: "three"},
		forwarder.Tunnel{Proto: wire.ProtoTCP, Upstream: echo.Addr().String()},
	)
	acfg.Token = "alpha"
	_, st := tt.StartAgent(t, acfg)

	// Connections in this order: "one" and "two" take the two labels,
	// "three" and the TCP tunnel share "other".
	var sentOne, receivedOne int
	for range 3 {
		req, resp := rawGet(t, srv, "one.localhost")
		sentOne += len(req)
		receivedOne += len(resp)
	}
	for range 2 {
		rawGet(t, srv, "two.localhost")
	}
	rawGet(t, srv, "three.localhost")
	c, err := net.Dial("tcp", tt.HostPort(tt.URL(t, st, "tcp")))
	if err != nil {
		t.Fatal(err)
	}
	if got := tt.RoundTrip(t, c, "ping"); got != "ping" {
		t.Fatalf("echo %q", got)
	}
	c.Close()
	// The relay answers these itself.
	rawGet(t, srv, "nobody.localhost")
	rawGet(t, srv, "nobody.localhost")

	// A wrong token, and a connection that does not speak TLS.
	bad := tt.AgentConfig(t, srv, forwarder.Tunnel{Proto: wire.ProtoHTTP, Upstream: up.URL, Name: "x"})
	bad.Token = "wrong"
	if a := tt.RunAgent(t, bad); a.WaitPhase(t, forwarder.Failed).Err == nil {
		t.Fatal("wrong token accepted")
	}
	raw, err := net.Dial("tcp", srv.AgentAddr())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(raw, "GET / HTTP/1.0\r\n\r\n")
	io.Copy(io.Discard, raw)
	raw.Close()
	m := scrape(t, srv)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"porthole_sessions", nil, 1},
		{"porthole_tunnels", []string{"protocol", "http"}, 3},
		{"porthole_tunnels", []string{"protocol", "tcp"}, 1},
		{"porthole_tunnels", []string{"protocol", "tls"}, 0},
		{"porthole_public_connections_total", []string{"tunnel", "one", "protocol", "http"}, 3},
		{"porthole_public_connections_total", []string{"tunnel", "two", "protocol", "http"}, 2},
		{"porthole_public_connections_total", []string{"tunnel", "other", "protocol", "http"}, 1},
		{"porthole_public_connections_total", []string{"tunnel", "other", "protocol", "tcp"}, 1},
		{"porthole_received_bytes_total", []string{"tunnel", "one"}, float64(sentOne)},
		{"porthole_sent_bytes_total", []string{"tunnel", "one"}, float64(receivedOne)},
		{"porthole_received_bytes_total", []string{"tunnel", "other"}, float64(len(rawRequest("three.localhost")) + len("ping"))},
		{"porthole_http_requests_total", []string{"tunnel", "", "status", "404"}, 2},
		{"porthole_errors_total", []string{"code", "PH-404-TUNNEL-NOT-FOUND"}, 2},
		{"porthole_agent_handshake_failures_total", []string{"reason", "auth_failed"}, 1},
		{"porthole_agent_handshake_failures_total", []string{"reason", "tls"}, 1},
	} {
		got, ok := value(m, c.name, c.labels...)
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	for _, name := range []string{"porthole_public_connections_total", "porthole_received_bytes_total", "porthole_sent_bytes_total"} {
		if got := labelValues(m, name, "tunnel"); len(got) != 3 || !got["one"] || !got["two"] || !got["other"] {
			t.Errorf("%s tunnel labels %v, want one, two and other", name, got)
		}
	}

	// Another token asking for a name in use.
	taken := tt.AgentConfig(t, srv, forwarder.Tunnel{Proto: wire.ProtoHTTP, Upstream: up.URL, Name: "one"})
	taken.Token = "beta"
	if a := tt.RunAgent(t, taken); !wire.IsCode(a.WaitPhase(t, forwarder.Failed).Err, wire.CodeNameTaken) {
		t.Fatal("second agent got a name in use")
	}

	// The refusal is counted before the agent reads it.
	if got, _ := value(scrape(t, srv), "porthole_bind_refusals_total", "code", "name_taken"); got != 1 {
		t.Errorf("bind refusals %v, want 1", got)
	}

	leaf, err := x509.ParseCertificate(peerCert(t, dial(t, srv.AgentAddr())))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := value(m, "porthole_certificate_expiry_timestamp_seconds", "name", "localhost"); got != float64(leaf.NotAfter.Unix()) {
		t.Errorf("certificate expiry %v, want %v", got, leaf.NotAfter.Unix())
	}
}

func rawRequest(host string) string {
	return "GET / HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n"
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
