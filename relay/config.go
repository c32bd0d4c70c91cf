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
	"strconv"
	"strings"
	"time"

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

	Tokens   []Token   // accepted tokens; none means any agent may connect
	TCPPorts PortRange // ports for TCP tunnels

	TLSCertFile string // certificate for agents and HTTPS clients; self-signed if empty
	TLSKeyFile  string
	StateDir    string // where a self-signed certificate, or ACME's certificates and account, are kept
	// ACME, if set, gets certificates from an ACME CA instead of
	// TLSCertFile or a self-signed one.
	ACME *ACMEConfig

	Logger *slog.Logger

	NameGrace         time.Duration // how long a disconnected agent's names stay reserved for its token
	KeepAliveInterval time.Duration
	StreamsPerSession int
	ReadHeaderTimeout time.Duration // to read a public request head (and route it)
	ShutdownGrace     time.Duration // how long Shutdown waits for in-flight requests
}

// Token is an accepted agent token and the names reserved for it.
type Token struct {
	Secret string
	Names  []string // names only this token may bind
}

// DefaultConfig returns the defaults of the command line.
func DefaultConfig() Config {
	return Config{
		AgentAddr:         "127.0.0.1:7835",
		HTTPAddr:          "127.0.0.1:8080",
		Domain:            "localhost",
		TCPPorts:          PortRange{20000, 20100},
		NameGrace:         30 * time.Second,
		KeepAliveInterval: wire.KeepAliveInterval,
		StreamsPerSession: wire.DefaultStreamsPerSession,
		ReadHeaderTimeout: 10 * time.Second,
		ShutdownGrace:     10 * time.Second,
	}
}

func (c *Config) validate() error {
	if c.AgentAddr == "" {
		return errors.New("agent address is required")
	}
	for name, a := range map[string]string{"agent": c.AgentAddr, "http": c.HTTPAddr, "https": c.HTTPSAddr} {
		if a == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("%s address %q: want host:port", name, a)
		}
	}
	c.Domain = strings.ToLower(strings.Trim(c.Domain, "."))
	if c.Domain == "" {
		return errors.New("domain is required")
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if c.TLSCertFile == "" && c.StateDir == "" {
		return errors.New("a state directory is required for the self-signed certificate")
	}
	if err := validateACME(c); err != nil {
		return err
	}
	if c.NameGrace < 0 || c.KeepAliveInterval <= 0 || c.StreamsPerSession <= 0 || c.ReadHeaderTimeout <= 0 || c.ShutdownGrace < 0 {
		return errors.New("limits must be positive (start from DefaultConfig)")
	}
	for i, t := range c.Tokens {
		if t.Secret == "" {
			return fmt.Errorf("token %d is empty", i+1)
		}
		for _, n := range t.Names {
			if err := wire.ValidName(n); err != nil {
				return fmt.Errorf("token %d: %w", i+1, err)
			}
		}
	}
	if c.PublicHost == "" {
		c.PublicHost = c.Domain
	}
	return nil
}
