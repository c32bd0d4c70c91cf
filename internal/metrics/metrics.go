// Package metrics holds the names of Porthole's Prometheus metrics, so that
// the relay's admin listener and the agent's inspector use the same name
// for the same thing, and the cap that keeps per-tunnel labels bounded.
// It imports nothing but the standard library, so that any binary, headless
// or not, may use it.
//
// A counter is counted by whoever does the work: the relay counts the
// public connections it routes and the HTTP requests it answers itself
// (unknown host, offline tunnel, refusals); an agent counts the requests it
// proxies. Summing a metric over the relay and its agents gives the whole.
package metrics

import "sync"

// Metric names, by Prometheus conventions: the porthole_ prefix, base
// units, _total on counters.
const (
	// Sessions is a gauge of connected agent sessions.
	Sessions = "porthole_sessions"
	// Tunnels is a gauge of bound tunnels, labelled by LabelProtocol.
	Tunnels = "porthole_tunnels"
	// PublicConnectionsTotal counts public connections carried to a
	// tunnel, labelled by LabelTunnel and LabelProtocol.
	PublicConnectionsTotal = "porthole_public_connections_total"
	// PublicConnectionsOpen is a gauge of public connections being
	// routed or carried.
	PublicConnectionsOpen = "porthole_public_connections_open"
	// HTTPRequestsTotal counts HTTP requests answered, labelled by
	// LabelTunnel and LabelStatus (the HTTP status code).
	HTTPRequestsTotal = "porthole_http_requests_total"
	// ErrorsTotal counts error pages sent to public clients, labelled by
	// LabelCode (a PH- code).
	ErrorsTotal = "porthole_errors_total"
	// ReceivedBytesTotal counts bytes received from public clients, and
	// SentBytesTotal bytes sent to them, labelled by LabelTunnel.
	ReceivedBytesTotal = "porthole_received_bytes_total"
	SentBytesTotal     = "porthole_sent_bytes_total"
	// RefusedConnectionsTotal counts public connections refused by a
	// tunnel's access rules, labelled by LabelTunnel and LabelReason.
	RefusedConnectionsTotal = "porthole_refused_connections_total"
	// HandshakeFailuresTotal counts agent connections that did not become
	// sessions, labelled by LabelReason.
	HandshakeFailuresTotal = "porthole_agent_handshake_failures_total"
	// BindRefusalsTotal counts refused tunnel binds, labelled by LabelCode
	// (a wire error code).
	BindRefusalsTotal = "porthole_bind_refusals_total"
	// CertificateExpiry is the expiry time (Unix seconds) of the relay's
	// own certificates, labelled by LabelName.
	CertificateExpiry = "porthole_certificate_expiry_timestamp_seconds"
	// CertificatesObtainedTotal and CertificateFailuresTotal count ACME
	// issuances and failed attempts.
	CertificatesObtainedTotal = "porthole_acme_certificates_obtained_total"
	CertificateFailuresTotal  = "porthole_acme_certificate_failures_total"
	// BacklogBytes is a gauge of the bytes streams hold for receivers that
	// have not taken them yet (public clients, on the relay).
	BacklogBytes = "porthole_backlog_bytes"
	// BacklogShedTotal counts streams closed to keep the backlog within
	// its bounds, labelled by LabelReason (client_share or total).
	BacklogShedTotal = "porthole_backlog_shed_total"
)

// Label names.
const (
	LabelTunnel   = "tunnel"   // a tunnel's name (http, tls) or "tcp:PORT"; see LabelCap
	LabelProtocol = "protocol" // http, tcp or tls
	LabelStatus   = "status"   // an HTTP status code
	LabelCode     = "code"     // a PH- code or a wire error code
	LabelReason   = "reason"   // why something failed or was refused
	LabelName     = "name"     // a certificate's DNS name
)

// Other is the LabelTunnel value shared by the tunnels beyond the cap.
const Other = "other"

// DefaultTunnelLabels is the default cap on distinct LabelTunnel values.
const DefaultTunnelLabels = 100

// LabelCap bounds the values of one label: up to Max values have their own
// series at a time; any other value reads as Other. A value keeps its slot
// until Forget, which its owner calls when the value goes away (and then
// deletes its series), so the slots follow the live tunnels.
type LabelCap struct {
	max  int
	mu   sync.Mutex
	held map[string]struct{}
}

// NewLabelCap returns a cap of max values.
func NewLabelCap(max int) *LabelCap {
	return &LabelCap{max: max, held: map[string]struct{}{}}
}

// Value returns v if it has, or can get, a slot, and Other if not.
func (c *LabelCap) Value(v string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.held[v]; ok {
		return v
	}
	if len(c.held) >= c.max {
		return Other
	}
	c.held[v] = struct{}{}
	return v
}

// Peek returns v if it has a slot, and Other if not, taking none.
func (c *LabelCap) Peek(v string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.held[v]; ok {
		return v
	}
	return Other
}

// Held returns the values that have a slot.
func (c *LabelCap) Held() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.held))
	for v := range c.held {
		out = append(out, v)
	}
	return out
}

// Forget frees v's slot, reporting whether it had one (and so series to
// delete).
func (c *LabelCap) Forget(v string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.held[v]
	delete(c.held, v)
	return ok
}
