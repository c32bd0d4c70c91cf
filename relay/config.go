// Package relay is the public side of Porthole. It accepts agent sessions,
// authenticates them, gives each tunnel a public address (a hostname under
// the relay's domain for HTTP and TLS, a port for TCP), and carries public
// traffic to the right agent as yamux streams.
package relay

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"porthole/internal/bytesize"
	"porthole/internal/metrics"
	"porthole/wire"
)

// PortRange is an inclusive range of TCP ports for TCP tunnels. The zero
// range means any port the operating system hands out.
type PortRange struct{ Lo, Hi int }

// ParsePortRange parses "20000-20100", a single port, or "0" for any port.
func ParsePortRange(s string) (PortRange, error) {
	lo, hi, found := strings.Cut(s, "-")
	if !found {
		hi = lo
	}
	l, err1 := strconv.Atoi(strings.TrimSpace(lo))
	h, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil || l < 0 || h > 65535 || l > h || (l == 0) != (h == 0) {
		return PortRange{}, fmt.Errorf("bad port range %q: want LO-HI within 1-65535, or 0", s)
	}
	return PortRange{l, h}, nil
}

// Any reports whether the range leaves the choice to the operating system.
func (r PortRange) Any() bool { return r.Lo == 0 }

// Contains reports whether p is in the range.
func (r PortRange) Contains(p int) bool {
	return r.Any() && p > 0 && p <= 65535 || p >= r.Lo && p <= r.Hi
}

func (r PortRange) String() string {
	if r.Any() {
		return "any"
	}
	return fmt.Sprintf("%d-%d", r.Lo, r.Hi)
}

// Config configures a relay. Start from DefaultConfig.
type Config struct {
	AgentAddr string // agent listener (TLS + yamux)
	HTTPAddr  string // public HTTP listener; empty disables it
	HTTPSAddr string // public HTTPS/TLS listener (SNI routed); empty disables it
	Domain    string // tunnels are NAME.Domain
	// PublicHost is the host printed in TCP tunnel URLs; Domain if empty.
	PublicHost string

	// Tokens are the accepted agent tokens. A relay without tokens must say
	// NoAuth, and may then listen on loopback addresses only.
	Tokens   []Token
	NoAuth   bool      // accept any agent; refused unless every listener is on loopback
	TCPPorts PortRange // ports for TCP tunnels

	TLSCertFile string // certificate for agents and HTTPS clients; self-signed if empty
	TLSKeyFile  string
	StateDir    string // where a self-signed certificate, or ACME's certificates and account, are kept
	// ACME, if set, gets certificates from an ACME CA instead of
	// TLSCertFile or a self-signed one.
	ACME *ACMEConfig

	// AdminAddr, if set, serves /metrics, /healthz and /readyz.
	AdminAddr string
	// MetricsTunnelLabels caps the tunnels with series of their own; the
	// rest share the label "other".
	MetricsTunnelLabels int

	Logger *slog.Logger

	NameGrace         time.Duration // how long a disconnected agent's names stay reserved for its token
	KeepAliveInterval time.Duration
	ReadHeaderTimeout time.Duration // to read a public request head (and route it)
	ShutdownGrace     time.Duration // how long Shutdown waits for in-flight requests

	// Before authentication: how long an agent connection may take for the
	// TLS handshake, its Hello and its control stream, and how many such
	// connections may be open at once, in all and from one address (IPv4
	// address or IPv6 /64). When MaxHandshakes is reached the oldest one of
	// the network (IPv4 /24, IPv6 /48) that holds the most is dropped, so
	// that a flood of slow peers cannot keep real agents out.
	HandshakeTimeout   time.Duration
	MaxHandshakes      int
	MaxHandshakesPerIP int

	// After authentication, per session.
	StreamsPerSession int     // streams the relay opens to the agent at once
	MaxTunnels        int     // tunnels bound at once
	MaxTCPPorts       int     // TCP ports held at once
	ControlRate       float64 // control messages per second, with a burst of max(ControlRate, MaxTunnels+1)

	// UnroutedConnsPerIP caps the public connections one client address
	// (IPv4 address or IPv6 /64) may have open on the HTTP and HTTPS
	// listeners that reach no tunnel: being routed (their first request
	// head or ClientHello not read yet) or answered by the relay's own
	// pages. One beyond is closed at once.
	UnroutedConnsPerIP int

	// ClientConnsPerTunnel caps the public connections one client address
	// (IPv4 address or IPv6 /64) may have open to one tunnel. Beyond it,
	// HTTP clients get 429 and TCP and TLS connections are closed.
	ClientConnsPerTunnel int

	// StreamWindow is the receive window the relay grants the agent on
	// each stream, in bytes: how much of a download may be on its way to a
	// public client before that client has taken it. One stream moves at
	// most a window per round trip to the agent, and a public client that
	// stops reading holds up to a window in the relay (see
	// wire.DefaultDownloadWindow).
	StreamWindow int64
	// StallTimeout closes a public connection that accepts no bytes for
	// this long while the relay has bytes for it, and frees what it held.
	// A client that keeps reading, however slowly, is not stalled (see
	// netutil.StallConn for how its progress is seen). Zero disables it.
	StallTimeout time.Duration

	// MaxBacklog bounds, in bytes, what the relay holds of downloads that
	// public clients have not taken yet: each stream holds what the agent
	// has sent ahead of its client, up to StreamWindow, and a client slower
	// than its agent keeps its stream full. ClientBacklog is one client
	// address's share (IPv4 address or IPv6 /64). When a client's streams
	// hold more than its share, its own stream that has been behind the
	// longest is closed; when all streams hold more than MaxBacklog, the
	// client holding the most, of the network (IPv4 /24, IPv6 /48) holding
	// the most, loses one the same way (see package backlog). The client's connection is closed and the stream reset, so
	// that the agent stops sending on it. ClientBacklog must be at least
	// StreamWindow, and MaxBacklog at least ClientBacklog. Zero MaxBacklog
	// turns the bound off.
	MaxBacklog    int64
	ClientBacklog int64
}

// Token is an accepted agent token and the names reserved for it.
type Token struct {
	Secret string
	Names  []string // names only this token may bind: labels under the domain, or full hostnames
}

// DefaultConfig returns the defaults of the command line. It has no tokens:
// set Tokens, or NoAuth for a relay on loopback.
func DefaultConfig() Config {
	return Config{
		AgentAddr:            "127.0.0.1:" + strconv.Itoa(wire.DefaultAgentPort),
		HTTPAddr:             "127.0.0.1:8080",
		Domain:               "localhost",
		TCPPorts:             PortRange{20000, 20100},
		NameGrace:            30 * time.Second,
		KeepAliveInterval:    wire.KeepAliveInterval,
		ReadHeaderTimeout:    10 * time.Second,
		ShutdownGrace:        10 * time.Second,
		HandshakeTimeout:     wire.HandshakeTimeout,
		MaxHandshakes:        256,
		MaxHandshakesPerIP:   8,
		StreamsPerSession:    wire.DefaultStreamsPerSession,
		MaxTunnels:           64,
		MaxTCPPorts:          16,
		ControlRate:          20,
		ClientConnsPerTunnel: 500,
		UnroutedConnsPerIP:   256,
		MetricsTunnelLabels:  metrics.DefaultTunnelLabels,
		StreamWindow:         wire.DefaultDownloadWindow,
		StallTimeout:         60 * time.Second,
		MaxBacklog:           DefaultMaxBacklog,
		ClientBacklog:        DefaultClientBacklog,
	}
}

// Backlog defaults. A client's share is eight default windows: one
// address may run eight downloads at full speed over a path slower than
// the agent's (each keeps up to a window in the relay), as a browser or a
// parallel download does, without losing one. The total is two such
// shares. What streams hold costs up to about three times as much heap
// (yamux grows a stream's buffer by doubling, past what it holds), so
// stalled and slow clients cost a relay about 750 MiB of resident memory
// at most by default, as measured; a relay with less than about 1.5 GiB
// should lower the total.
const (
	DefaultMaxBacklog    = 2 * DefaultClientBacklog
	DefaultClientBacklog = 8 * wire.DefaultDownloadWindow
)

// ConfigError is a Config that New refuses: the field at fault and why.
type ConfigError struct {
	Field string // the Config field, such as "TLSKeyFile" or "Tokens"
	Err   error
}

func (e *ConfigError) Error() string { return "relay config " + e.Field + ": " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

func fieldErr(field, format string, args ...any) error {
	return &ConfigError{Field: field, Err: fmt.Errorf(format, args...)}
}

// ErrNoTokens is the reason a Config without tokens and without NoAuth is refused.
var ErrNoTokens = errors.New("no tokens: give at least one, or set NoAuth to accept any agent on loopback")

func (c *Config) validate() error {
	if c.AgentAddr == "" {
		return fieldErr("AgentAddr", "required")
	}
	for _, a := range []struct{ field, addr string }{{"AgentAddr", c.AgentAddr}, {"HTTPAddr", c.HTTPAddr}, {"HTTPSAddr", c.HTTPSAddr}, {"AdminAddr", c.AdminAddr}} {
		if a.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			return fieldErr(a.field, "%q: want host:port", a.addr)
		}
	}
	c.Domain = strings.ToLower(strings.Trim(c.Domain, "."))
	if c.Domain == "" {
		return fieldErr("Domain", "required")
	}
	if c.TLSCertFile != "" && c.TLSKeyFile == "" {
		return fieldErr("TLSKeyFile", "required with a certificate file")
	}
	if c.TLSKeyFile != "" && c.TLSCertFile == "" {
		return fieldErr("TLSCertFile", "required with a key file")
	}
	if c.TLSCertFile == "" && c.StateDir == "" {
		return fieldErr("StateDir", "required to keep the self-signed certificate")
	}
	if err := validateACME(c); err != nil {
		return err
	}
	if err := c.validateAuth(); err != nil {
		return err
	}
	for _, d := range []struct {
		field string
		v     time.Duration
		zero  bool // zero is allowed
	}{
		{"NameGrace", c.NameGrace, true},
		{"KeepAliveInterval", c.KeepAliveInterval, false},
		{"ReadHeaderTimeout", c.ReadHeaderTimeout, false},
		{"ShutdownGrace", c.ShutdownGrace, true},
		{"HandshakeTimeout", c.HandshakeTimeout, false},
		{"StallTimeout", c.StallTimeout, true},
	} {
		if d.v < 0 || d.v == 0 && !d.zero {
			return fieldErr(d.field, "%v: must be positive", d.v)
		}
	}
	for _, n := range []struct {
		field string
		v     int
	}{
		{"MaxHandshakes", c.MaxHandshakes},
		{"MaxHandshakesPerIP", c.MaxHandshakesPerIP},
		{"StreamsPerSession", c.StreamsPerSession},
		{"MaxTunnels", c.MaxTunnels},
		{"MaxTCPPorts", c.MaxTCPPorts},
		{"ClientConnsPerTunnel", c.ClientConnsPerTunnel},
		{"UnroutedConnsPerIP", c.UnroutedConnsPerIP},
		{"MetricsTunnelLabels", c.MetricsTunnelLabels},
	} {
		if n.v <= 0 {
			return fieldErr(n.field, "%d: must be positive", n.v)
		}
	}
	if !(c.ControlRate > 0) {
		return fieldErr("ControlRate", "%v: must be positive", c.ControlRate)
	}
	if err := wire.CheckStreamWindow(c.StreamWindow); err != nil {
		return &ConfigError{Field: "StreamWindow", Err: err}
	}
	if err := checkBacklog(c.MaxBacklog, c.ClientBacklog, c.StreamWindow); err != nil {
		return err
	}
	if c.PublicHost == "" {
		c.PublicHost = c.Domain
	}
	return nil
}

// validateAuth checks the tokens, and that a relay without them listens on
// loopback only.
func (c *Config) validateAuth() error {
	if err := validateTokens(c.Tokens, c.Domain); err != nil {
		return err
	}
	switch {
	case c.NoAuth && len(c.Tokens) > 0:
		return fieldErr("NoAuth", "set together with tokens")
	case !c.NoAuth && len(c.Tokens) == 0:
		return &ConfigError{Field: "Tokens", Err: ErrNoTokens}
	case c.NoAuth:
		for _, a := range []struct{ field, addr string }{{"AgentAddr", c.AgentAddr}, {"HTTPAddr", c.HTTPAddr}, {"HTTPSAddr", c.HTTPSAddr}} {
			if a.addr != "" && !isLoopback(a.addr) {
				return fieldErr("NoAuth", "accepting any agent needs every listener on loopback, and %s is %q", a.field, a.addr)
			}
		}
	}
	return nil
}

// isLoopback reports whether host:port names a loopback address.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// checkBacklog refuses a backlog bound that one stream could break on its
// own: a client's share below the stream window would close every stream
// whose client falls a window behind.
func checkBacklog(total, share, window int64) error {
	switch {
	case total < 0:
		return fieldErr("MaxBacklog", "%s: must not be negative (zero turns it off)", bytesize.Format(total))
	case total == 0:
		return nil
	case share < window:
		return fieldErr("ClientBacklog", "%s: must be at least the stream window, %s", bytesize.Format(share), bytesize.Format(window))
	case total < share:
		return fieldErr("MaxBacklog", "%s: must be at least a client's share, %s", bytesize.Format(total), bytesize.Format(share))
	}
	return nil
}
