package relay

import (
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"porthole/internal/backlog"
	"porthole/internal/httperr"
	"porthole/internal/metrics"
	"porthole/internal/netutil"
	"porthole/wire"
)

// relayMetrics are the relay's Prometheus metrics. Counters are counted
// where things happen; gauges (sessions, tunnels, open connections,
// certificate expiry) are read from the relay's own state at scrape time,
// so they cannot drift from it. Names are shared with the agent through
// package metrics.
type relayMetrics struct {
	reg     *prometheus.Registry
	srv     *Server
	tunnels *metrics.LabelCap

	sweepMu   sync.Mutex
	lastSweep time.Time

	publicConns *prometheus.CounterVec // tunnel, protocol
	requests    *prometheus.CounterVec // tunnel, status
	errors      *prometheus.CounterVec // code
	received    *prometheus.CounterVec // tunnel
	sent        *prometheus.CounterVec // tunnel
	refused     *prometheus.CounterVec // tunnel, reason
	handshakes  *prometheus.CounterVec // reason
	binds       *prometheus.CounterVec // code
	certsOK     prometheus.Counter
	certsFailed prometheus.Counter
}

// Reasons an agent connection did not become a session, besides the wire
// error code it was refused with (auth_failed, bad_version, ...).
const (
	handshakeTLS    = "tls"     // TLS handshake failed or timed out
	handshakeHungUp = "hung_up" // the agent left before its hello
)

func newRelayMetrics(s *Server, tunnelLabels int) *relayMetrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	m := &relayMetrics{
		reg:     prometheus.NewRegistry(),
		srv:     s,
		tunnels: metrics.NewLabelCap(tunnelLabels),
		publicConns: counter(metrics.PublicConnectionsTotal, "Public connections carried to a tunnel's agent.",
			metrics.LabelTunnel, metrics.LabelProtocol),
		requests: counter(metrics.HTTPRequestsTotal, "HTTP requests the relay answered itself (agents count the requests they proxy).",
			metrics.LabelTunnel, metrics.LabelStatus),
		errors:   counter(metrics.ErrorsTotal, "Error pages sent to public clients, by PH- code.", metrics.LabelCode),
		received: counter(metrics.ReceivedBytesTotal, "Bytes received from public clients.", metrics.LabelTunnel),
		sent:     counter(metrics.SentBytesTotal, "Bytes sent to public clients.", metrics.LabelTunnel),
		refused: counter(metrics.RefusedConnectionsTotal, "Public connections refused by a tunnel's access rules.",
			metrics.LabelTunnel, metrics.LabelReason),
		handshakes: counter(metrics.HandshakeFailuresTotal, "Agent connections that did not become a session: tls, hung_up, or the wire code they were refused with.", metrics.LabelReason),
		binds:      counter(metrics.BindRefusalsTotal, "Tunnel binds refused, by wire error code.", metrics.LabelCode),
		certsOK:    prometheus.NewCounter(prometheus.CounterOpts{Name: metrics.CertificatesObtainedTotal, Help: "Certificates obtained from the ACME CA."}),
		certsFailed: prometheus.NewCounter(prometheus.CounterOpts{Name: metrics.CertificateFailuresTotal,
			Help: "Failed attempts to obtain a certificate from the ACME CA."}),
	}
	m.reg.MustRegister(m.publicConns, m.requests, m.errors, m.received, m.sent, m.refused, m.handshakes, m.binds,
		m.certsOK, m.certsFailed, stateCollector{s},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// handshakeFailed counts an agent connection that did not become a session.
func (s *Server) handshakeFailed(reason string) {
	s.metrics.handshakes.WithLabelValues(reason).Inc()
}

// Reasons a tunnel's rules refuse a public connection.
const refusedCIDR = "cidr"

// refusedClient counts a public connection refused by b's access rules.
func (m *relayMetrics) refusedClient(b *binding, reason string) {
	m.refused.WithLabelValues(m.tunnelLabel(b), reason).Inc()
}

// tunnelLabel is a binding's LabelTunnel value, within the cap; "" for
// none.
func (m *relayMetrics) tunnelLabel(b *binding) string {
	if b == nil {
		return ""
	}
	v := m.tunnels.Value(bindingLabel(b))
	if v == metrics.Other && m.sweepStale() {
		v = m.tunnels.Value(bindingLabel(b))
	}
	return v
}

// sweepInterval is how often, at most, a full label cap is checked for
// tunnels that are gone.
const sweepInterval = time.Second

// sweepStale frees the labels of tunnels that are no longer bound but kept
// their slot (one labelled just as it was released), at most once per
// sweepInterval, and reports whether it ran. Release frees labels as
// tunnels go; this catches the stragglers, so that a long-running relay's
// labels keep following its live tunnels.
func (m *relayMetrics) sweepStale() bool {
	m.sweepMu.Lock()
	defer m.sweepMu.Unlock()
	if time.Since(m.lastSweep) < sweepInterval {
		return false
	}
	m.lastSweep = time.Now()
	live := map[string]bool{}
	for _, b := range m.srv.liveBindings() {
		live[bindingLabel(b)] = true
	}
	for _, v := range m.tunnels.Held() {
		if !live[v] {
			m.forget(v)
		}
	}
	return true
}

func bindingLabel(b *binding) string {
	if b.proto == wire.ProtoTCP {
		return "tcp:" + strconv.Itoa(b.port)
	}
	return b.name
}

// answered counts a request the relay answered itself, and its error code.
func (m *relayMetrics) answered(tunnel string, status int, code httperr.Code) {
	m.requests.WithLabelValues(tunnel, strconv.Itoa(status)).Inc()
	if code != "" {
		m.errors.WithLabelValues(string(code)).Inc()
	}
}

// released frees a tunnel's label and deletes its series when its binding
// goes, so that the cap follows the live tunnels.
func (m *relayMetrics) released(b *binding) {
	m.forget(bindingLabel(b))
}

// forget frees a tunnel label's slot and deletes its series.
func (m *relayMetrics) forget(v string) {
	if m.tunnels.Forget(v) {
		for _, vec := range []*prometheus.CounterVec{m.publicConns, m.requests, m.received, m.sent, m.refused} {
			vec.DeletePartialMatch(prometheus.Labels{metrics.LabelTunnel: v})
		}
	}
}

// liveBindings returns every bound tunnel of every session.
func (s *Server) liveBindings() []*binding {
	s.mu.Lock()
	sessions := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	var out []*binding
	for _, sess := range sessions {
		sess.mu.Lock()
		for _, b := range sess.bindings {
			out = append(out, b)
		}
		sess.mu.Unlock()
	}
	return out
}

// countingConn counts a public connection's bytes into a tunnel's series.
type countingConn struct {
	net.Conn
	in, out prometheus.Counter
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.Add(float64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.Add(float64(n))
	return n, err
}

// CloseWrite keeps half-closes working through the wrapper.
func (c *countingConn) CloseWrite() error { return netutil.CloseWrite(c.Conn) }

// carried counts a public connection routed to b's agent and returns it
// wrapped to count its bytes.
func (m *relayMetrics) carried(b *binding, c net.Conn) net.Conn {
	t := m.tunnelLabel(b)
	m.publicConns.WithLabelValues(t, b.proto.String()).Inc()
	return &countingConn{Conn: c, in: m.received.WithLabelValues(t), out: m.sent.WithLabelValues(t)}
}

// stateCollector reports the gauges read from the relay's state.
type stateCollector struct{ s *Server }

var (
	sessionsDesc = prometheus.NewDesc(metrics.Sessions, "Agent sessions connected.", nil, nil)
	tunnelsDesc  = prometheus.NewDesc(metrics.Tunnels, "Tunnels bound, by protocol.", []string{metrics.LabelProtocol}, nil)
	openDesc     = prometheus.NewDesc(metrics.PublicConnectionsOpen, "Public connections being routed or carried.", nil, nil)
	expiryDesc   = prometheus.NewDesc(metrics.CertificateExpiry, "When the relay's own certificate for a name expires (Unix seconds).",
		[]string{metrics.LabelName}, nil)
	backlogDesc = prometheus.NewDesc(metrics.BacklogBytes, "Bytes of downloads the relay holds for public clients that have not taken them yet.", nil, nil)
	shedDesc    = prometheus.NewDesc(metrics.BacklogShedTotal, "Public connections closed to keep the backlog within its bounds: a client's share (client_share), or the relay's (total).",
		[]string{metrics.LabelReason}, nil)
)

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- sessionsDesc
	ch <- tunnelsDesc
	ch <- openDesc
	ch <- expiryDesc
	ch <- backlogDesc
	ch <- shedDesc
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	s.mu.Lock()
	sessions, open := len(s.sessions), len(s.open)
	s.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(sessionsDesc, prometheus.GaugeValue, float64(sessions))
	ch <- prometheus.MustNewConstMetric(openDesc, prometheus.GaugeValue, float64(open))
	byProto := map[wire.Proto]int{wire.ProtoHTTP: 0, wire.ProtoTCP: 0, wire.ProtoTLS: 0}
	for _, b := range s.liveBindings() {
		byProto[b.proto]++
	}
	for p, n := range byProto {
		ch <- prometheus.MustNewConstMetric(tunnelsDesc, prometheus.GaugeValue, float64(n), p.String())
	}
	bl := s.Backlog()
	ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(bl.Held))
	for _, r := range []backlog.Reason{backlog.OverShare, backlog.OverTotal} {
		ch <- prometheus.MustNewConstMetric(shedDesc, prometheus.CounterValue, float64(bl.Shed[r]), r.String())
	}
	for name, notAfter := range s.certificateExpiry() {
		ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, float64(notAfter.Unix()), name)
	}
}

// certificateExpiry returns when the relay's own certificates expire, by
// name: the configured or self-signed one under the domain, or each
// ACME-managed name that has a certificate yet.
func (s *Server) certificateExpiry() map[string]time.Time {
	out := map[string]time.Time{}
	if s.acme != nil {
		for _, name := range s.acme.own {
			if leaf := s.acme.leaf(name); leaf != nil {
				out[name] = leaf.NotAfter
			}
		}
		return out
	}
	if leaf, err := x509.ParseCertificate(s.cert.Load().cert.Certificate[0]); err == nil {
		out[s.cfg.Domain] = leaf.NotAfter
	}
	return out
}

// metricsHandler serves the relay's metrics in the Prometheus formats.
func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)})
}
