package inspect

import (
	"context"
	"errors"
	"net/http"
)

// Agent is what the API shows and controls: the tunnels of one agent
// process, or the desktop app's profiles.
type Agent interface {
	// Status is the agent's state, such as "online" or "reconnecting".
	Status() string
	// Tunnels lists the running tunnels, in order.
	Tunnels() []Tunnel
	// StartTunnel starts a tunnel and returns it once it has a public
	// address.
	StartTunnel(ctx context.Context, req TunnelRequest) (Tunnel, error)
	// StopTunnel stops the tunnel with the name.
	StopTunnel(ctx context.Context, name string) error
	// Replay sends req to the upstream of the tunnel with the name, through
	// its capture, and returns when the upstream has answered; req's
	// context bounds it.
	Replay(tunnel string, req *http.Request) error
}

// Tunnel is one running tunnel as the API shows it.
type Tunnel struct {
	Name       string
	PublicURLs []string // one API entry per address
	Addr       string   // the normalized upstream
	Inspect    bool     // its HTTP exchanges are captured
	Tap        *Tap     // its metrics; may be nil
}

// TunnelRequest is the body of POST /api/tunnels: ngrok's tunnel
// definition fields, and Porthole's upstream options.
type TunnelRequest struct {
	Name      string `json:"name"`
	Addr      string `json:"addr"`
	Proto     string `json:"proto"`
	Subdomain string `json:"subdomain,omitempty"`
	// RemoteAddr asks a TCP tunnel for a public port, as "host:port" or "port".
	RemoteAddr string   `json:"remote_addr,omitempty"`
	Auth       string   `json:"auth,omitempty"` // basic auth "user:password"
	BasicAuth  []string `json:"basic_auth,omitempty"`
	HostHeader string   `json:"host_header,omitempty"`
	Inspect    *bool    `json:"inspect,omitempty"`
	Crt        string   `json:"crt,omitempty"` // terminate TLS at the agent (tls)
	Key        string   `json:"key,omitempty"`
	// IPRestriction admits public clients by address, as ngrok's
	// ip_restriction does.
	IPRestriction *IPRestriction `json:"ip_restriction,omitempty"`

	UpstreamProtocol     string `json:"upstream_protocol,omitempty"` // "http1" or "http2"
	UpstreamTLSVerify    bool   `json:"upstream_tls_verify,omitempty"`
	UpstreamTLSVerifyCAs string `json:"upstream_tls_verify_cas,omitempty"`
}

// IPRestriction lists the CIDRs a tunnel admits and refuses.
type IPRestriction struct {
	AllowCIDRs []string `json:"allow_cidrs,omitempty"`
	DenyCIDRs  []string `json:"deny_cidrs,omitempty"`
}

// Errors an Agent returns, wrapped, so that the API answers with the
// matching status and code.
var (
	ErrNotFound     = errors.New("not found")                    // 404
	ErrInvalid      = errors.New("invalid tunnel configuration") // 400
	ErrExists       = errors.New("tunnel already exists")        // 409
	ErrStartFailed  = errors.New("failed to start tunnel")       // 502
	ErrUnavailable  = errors.New("agent is not connected")       // 503
	ErrUpstreamDown = errors.New("replay failed")                // 502
)
