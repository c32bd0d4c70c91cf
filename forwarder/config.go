// Package forwarder is the agent: it dials a relay, binds tunnels, and
// forwards every stream the relay opens to the tunnel's upstream under the
// upstream rules (normalization, TLS verification, HTTP/2, forwarded headers).
package forwarder

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"porthole/inspect"
	"porthole/internal/bytesize"
	"porthole/wire"
)

// Tunnel describes one tunnel: its public side and its upstream.
type Tunnel struct {
	// Label names the tunnel in the agent API and the inspector; it is
	// unique within a forwarder. Empty means the subdomain, else the
	// protocol and a number ("tcp-2").
	Label    string
	Proto    wire.Proto
	Upstream string // URL, host:port or bare port; see ParseUpstream
	Name     string // requested subdomain (http, tls); random if empty
	// Hostname asks for a full hostname instead of a subdomain (http,
	// tls): one the relay's tokens file gives to this agent's token, with
	// its DNS pointing at the relay.
	Hostname   string
	RemotePort int // requested public port (tcp); any if zero

	UpstreamHTTP2     bool   // speak HTTP/2 to the upstream (h2c prior knowledge, or ALPN over TLS)
	UpstreamTLSVerify bool   // verify the upstream's certificate
	UpstreamCAFile    string // PEM bundle to verify against instead of the system roots
	HostHeader        string // "" keeps the public host, "rewrite" uses the upstream's, else a literal value
	BasicAuth         string // "user:password" required from public clients (http)

	TerminateCertFile string // terminate public TLS at the agent (tls)
	TerminateKeyFile  string

	// Access rules. The relay refuses public clients in CIDRDeny, or
	// outside CIDRAllow when it is not empty, before they reach the agent
	// (CIDRs, or single addresses). RateLimit caps each client address's
	// HTTP requests, counted here since only the agent sees every request
	// of a connection. ProxyProtocol sends a PROXY v2 header with the
	// client's address to a tcp or tls upstream.
	CIDRAllow     []string
	CIDRDeny      []string
	RateLimit     RateLimit
	ProxyProtocol bool

	// NoInspect keeps this tunnel's HTTP exchanges out of Config.Inspect;
	// they are still counted.
	NoInspect bool
}

// Config configures a Forwarder. Start from DefaultConfig.
type Config struct {
	RelayAddr        string // the relay's agent listener: host:port, or a form ParseRelayAddr reads
	Token            string
	RelayCAFile      string // trust the relay by this CA bundle
	RelayFingerprint string // or by this pinned SHA-256 certificate fingerprint

	// InstanceID identifies this agent to the relay across reconnects, so
	// that after a link dies unnoticed the agent's new session replaces
	// its old one at once. Random if empty; two agents must never share one.
	InstanceID string

	Tunnels []Tunnel

	// Inspect, if set, counts every tunnel's connections and requests and
	// keeps their HTTP exchanges (see Tunnel.NoInspect), for the agent API
	// and the web inspector.
	Inspect *inspect.Store

	Logger *slog.Logger
	// OnState, if set, is called with every state change, in order, from the
	// forwarder's goroutine. It must not block for long.
	OnState func(State)

	KeepAliveInterval time.Duration // yamux pings; a dead link is detected after about twice this
	ReconnectMin      time.Duration // first retry delay (before jitter)
	ReconnectMax      time.Duration // backoff cap
	DialTimeout       time.Duration // for the relay and for upstreams
	ResponseTimeout   time.Duration // upstream response header timeout, then 504
	DrainTimeout      time.Duration // how long Run waits for in-flight work on stop

	// StreamWindow is the receive window the agent grants the relay on
	// each stream, in bytes: how much of an upload may be on its way to the
	// upstream before the upstream has taken it. One stream moves at most
	// a window per round trip to the relay (see wire.DefaultUploadWindow).
	StreamWindow int64

	// MaxBacklog bounds, in bytes, what the agent holds of uploads that
	// its upstreams have not taken yet: each stream holds what the relay
	// has sent ahead of the upstream, up to StreamWindow, and an upstream
	// slower than its public client keeps its stream full. ClientBacklog
	// is one public client address's share (IPv4 address or IPv6 /64).
	// When a client's streams hold more than its share, its own stream
	// that has been behind the longest is closed; when all streams hold
	// more than MaxBacklog, the client holding the most, of the network
	// (IPv4 /24, IPv6 /48) holding the most, loses one the same way. The stream is reset, so that the relay stops sending on it and
	// closes the client's connection, and the upstream request or
	// connection is ended. ClientBacklog must be at least StreamWindow, and
	// MaxBacklog at least ClientBacklog. Zero MaxBacklog turns the bound
	// off.
	MaxBacklog    int64
	ClientBacklog int64
}

// Backlog defaults. A public client address's share is eight default
// windows, so that eight uploads from one client to an upstream slower
// than the path to the relay all go on; the total is two such shares, a
// quarter of a gigabyte, which a desktop can spare.
const (
	DefaultMaxBacklog    = 2 * DefaultClientBacklog
	DefaultClientBacklog = 8 * wire.DefaultUploadWindow
)

// DefaultConfig returns a Config with the default limits and no tunnels.
func DefaultConfig() Config {
	return Config{
		KeepAliveInterval: wire.KeepAliveInterval,
		ReconnectMin:      200 * time.Millisecond,
		ReconnectMax:      15 * time.Second,
		DialTimeout:       10 * time.Second,
		ResponseTimeout:   60 * time.Second,
		DrainTimeout:      10 * time.Second,
		StreamWindow:      wire.DefaultUploadWindow,
		MaxBacklog:        DefaultMaxBacklog,
		ClientBacklog:     DefaultClientBacklog,
	}
}

// tunnel is a validated Tunnel, ready to serve.
type tunnel struct {
	Tunnel
	id          uint32
	upstream    Upstream
	upstreamCAs *x509.CertPool // from UpstreamCAFile, or nil for the system roots
	terminate   *tls.Config    // for tls tunnels terminated at the agent
	http        *httpTunnel
	raw         *rawTunnel
	tap         *inspect.Tap // nil without Config.Inspect
	bound       wire.Bound   // the relay's last reply, reused to re-bind the same name or port

	cidrAllow, cidrDeny []string // the access prefixes, normalized for the bind
}

// Validate checks the configuration without touching the network; it reads
// the CA and certificate files it names. Its errors are *FieldError, name
// the offending field and never include secrets.
func (c *Config) Validate() error {
	cfg := *c
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	_, _, err := cfg.prepare()
	return err
}

// FieldError is a Config that Validate refuses, with the field at fault:
// Field is the Go name of a Config field (such as "RelayCAFile"), or, when
// Tunnel is not negative, of a field of Config.Tunnels[Tunnel] (such as
// "UpstreamCAFile"). Callers that show a form map Field to their own input.
// The error never includes a secret.
type FieldError struct {
	Field  string
	Tunnel int // index in Config.Tunnels (0 from AddTunnel), or -1 for a field of Config itself
	Err    error
}

func (e *FieldError) Error() string { return e.Err.Error() }

// FileError is a file named in a Config that cannot be used: unreadable,
// or without what it should hold. Unlike other refusals it depends on the
// file system rather than on the Config alone; it comes wrapped in a
// *FieldError.
type FileError struct {
	What string // such as "upstream CA file"
	Path string
	Err  error
}

func (e *FileError) Error() string { return fmt.Sprintf("%s %s: %v", e.What, e.Path, e.Err) }
func (e *FileError) Unwrap() error { return e.Err }

// ErrNoCertificates is why a CA file that holds no PEM certificate is refused.
var ErrNoCertificates = errors.New("no PEM certificates found")

func (e *FieldError) Unwrap() error { return e.Err }

func configError(field string, err error) error {
	return &FieldError{Field: field, Tunnel: -1, Err: err}
}

// prepare validates the configuration and builds what New needs: the
// tunnels and the TLS config for the relay. Every file it names is read here,
// once. Every error it returns is a *FieldError.
func (c *Config) prepare() ([]*tunnel, *tls.Config, error) {
	if c.RelayAddr == "" {
		return nil, nil, configError("RelayAddr", errors.New("relay address is required"))
	}
	addr, err := ParseRelayAddr(c.RelayAddr)
	if err != nil {
		return nil, nil, configError("RelayAddr", err)
	}
	c.RelayAddr = addr
	host, _, _ := net.SplitHostPort(addr)
	if len(c.Token) > wire.MaxToken {
		return nil, nil, configError("Token", fmt.Errorf("token is longer than %d bytes", wire.MaxToken))
	}
	if len(c.InstanceID) > wire.MaxInstanceID {
		return nil, nil, configError("InstanceID", fmt.Errorf("instance id is longer than %d bytes", wire.MaxInstanceID))
	}
	if c.RelayCAFile != "" && c.RelayFingerprint != "" {
		return nil, nil, configError("RelayFingerprint", errors.New("relay CA file and relay fingerprint are mutually exclusive"))
	}
	relayTLS, err := relayTLSConfig(host, c.RelayCAFile, c.RelayFingerprint)
	if err != nil {
		field := "RelayCAFile"
		if c.RelayFingerprint != "" {
			field = "RelayFingerprint"
		}
		return nil, nil, configError(field, err)
	}
	if len(c.Tunnels) == 0 {
		return nil, nil, configError("Tunnels", errors.New("no tunnels configured"))
	}
	if err := c.checkTimeouts(); err != nil {
		return nil, nil, err
	}
	if err := wire.CheckStreamWindow(c.StreamWindow); err != nil {
		return nil, nil, configError("StreamWindow", err)
	}
	if err := c.checkBacklog(); err != nil {
		return nil, nil, err
	}
	var out []*tunnel
	for i, t := range c.Tunnels {
		tn, err := prepareTunnel(t, c, uint32(i+1))
		if err != nil {
			if len(c.Tunnels) > 1 {
				err.Err = fmt.Errorf("tunnel %d: %w", i+1, err.Err)
			}
			err.Tunnel = i
			return nil, nil, err
		}
		for _, o := range out {
			if o.Label == tn.Label {
				return nil, nil, &FieldError{Field: "Label", Tunnel: i, Err: fmt.Errorf("two tunnels are named %q", tn.Label)}
			}
		}
		out = append(out, tn)
	}
	return out, relayTLS, nil
}

// checkTimeouts refuses a zero or negative limit, naming the first one.
func (c *Config) checkTimeouts() error {
	for _, d := range []struct {
		field string
		bad   bool
	}{
		{"KeepAliveInterval", c.KeepAliveInterval <= 0},
		{"ReconnectMin", c.ReconnectMin <= 0},
		{"ReconnectMax", c.ReconnectMax < c.ReconnectMin},
		{"DialTimeout", c.DialTimeout <= 0},
		{"ResponseTimeout", c.ResponseTimeout <= 0},
		{"DrainTimeout", c.DrainTimeout < 0},
	} {
		if d.bad {
			return configError(d.field, errors.New("timeouts must be positive (start from DefaultConfig)"))
		}
	}
	return nil
}

// checkBacklog refuses a backlog bound that one stream could break on its
// own: a client's share below the stream window would close every upload
// whose upstream falls a window behind.
func (c *Config) checkBacklog() error {
	switch {
	case c.MaxBacklog < 0:
		return configError("MaxBacklog", fmt.Errorf("backlog %s must not be negative (zero turns it off)", bytesize.Format(c.MaxBacklog)))
	case c.MaxBacklog == 0:
		return nil
	case c.ClientBacklog < c.StreamWindow:
		return configError("ClientBacklog", fmt.Errorf("client backlog %s must be at least the stream window, %s",
			bytesize.Format(c.ClientBacklog), bytesize.Format(c.StreamWindow)))
	case c.MaxBacklog < c.ClientBacklog:
		return configError("MaxBacklog", fmt.Errorf("backlog %s must be at least a client's share, %s",
			bytesize.Format(c.MaxBacklog), bytesize.Format(c.ClientBacklog)))
	}
	return nil
}

// prepareTunnel validates one tunnel and builds what serves it, under the
// id the forwarder gives it. Its error names the Tunnel field at fault, as
// the tunnel at index 0.
func prepareTunnel(t Tunnel, c *Config, id uint32) (*tunnel, *FieldError) {
	fail := func(field string, err error) (*tunnel, *FieldError) {
		return nil, &FieldError{Field: field, Err: err}
	}
	switch t.Proto {
	case wire.ProtoHTTP, wire.ProtoTCP, wire.ProtoTLS:
	default:
		return fail("Proto", fmt.Errorf("unknown tunnel type %v", t.Proto))
	}
	up, err := ParseUpstream(t.Upstream, t.Proto)
	if err != nil {
		return fail("Upstream", err)
	}
	tn := &tunnel{Tunnel: t, id: id, upstream: up}
	if tn.Label == "" {
		tn.Label = defaultLabel(tn)
	}
	if t.Name != "" {
		if err := wire.ValidName(t.Name); err != nil {
			return fail("Name", err)
		}
	}
	if t.Hostname != "" {
		if t.Name != "" {
			return fail("Hostname", errors.New("give a subdomain or a hostname, not both"))
		}
		if t.Proto == wire.ProtoTCP {
			return fail("Hostname", errors.New("a hostname applies to http and tls tunnels only"))
		}
		if err := wire.ValidHostname(t.Hostname); err != nil {
			return fail("Hostname", err)
		}
	}
	if t.RemotePort < 0 || t.RemotePort > 65535 {
		return fail("RemotePort", fmt.Errorf("remote port %d is out of range", t.RemotePort))
	}
	if t.RemotePort != 0 && t.Proto != wire.ProtoTCP {
		return fail("RemotePort", errors.New("a remote port applies to tcp tunnels only"))
	}
	if t.UpstreamCAFile != "" {
		if tn.upstreamCAs, err = loadCAs("upstream CA file", t.UpstreamCAFile); err != nil {
			return fail("UpstreamCAFile", err)
		}
		// A CA bundle only makes sense with verification; asking for one turns it on.
		tn.UpstreamTLSVerify = true
	}
	if t.BasicAuth != "" {
		if t.Proto != wire.ProtoHTTP {
			return fail("BasicAuth", errors.New("basic auth applies to http tunnels only"))
		}
		if u, p, ok := strings.Cut(t.BasicAuth, ":"); !ok || u == "" || p == "" {
			return fail("BasicAuth", errors.New("basic auth: want user:password"))
		}
	}
	if t.HostHeader != "" && t.Proto != wire.ProtoHTTP {
		return fail("HostHeader", errors.New("host header applies to http tunnels only"))
	}
	if (t.TerminateCertFile == "") != (t.TerminateKeyFile == "") {
		return fail("TerminateCertFile", errors.New("terminate needs both a certificate and a key"))
	}
	if t.TerminateCertFile != "" {
		if t.Proto != wire.ProtoTLS {
			return fail("TerminateCertFile", errors.New("terminating TLS applies to tls tunnels only"))
		}
		cert, err := tls.LoadX509KeyPair(t.TerminateCertFile, t.TerminateKeyFile)
		if err != nil {
			return fail("TerminateCertFile", &FileError{What: "terminate certificate", Path: t.TerminateCertFile, Err: err})
		}
		tn.terminate = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if fe := prepareAccess(tn); fe != nil {
		return nil, fe
	}
	if c.Inspect != nil {
		tn.tap = c.Inspect.Tap(tn.Label, inspect.TapOptions{
			Capture:           !t.NoInspect && t.Proto == wire.ProtoHTTP,
			MaskAuthorization: t.BasicAuth != "",
			PublicTLS:         func(r *http.Request) bool { return publicTLS(r.Context()) },
		})
	}
	if t.Proto == wire.ProtoHTTP {
		tn.http = newHTTPTunnel(tn, c)
	} else {
		tn.raw = newRawTunnel(tn, c)
	}
	return tn, nil
}
