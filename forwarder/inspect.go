package forwarder

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"porthole/inspect"
	"porthole/wire"
)

// ErrNotReplayable is returned by Replay for a tunnel that is not an
// inspected HTTP tunnel.
var ErrNotReplayable = errors.New("tunnel does not replay requests")

// Replay sends a request the inspector rebuilt to the upstream of the
// tunnel with the label, through its capture (so that it is recorded as a
// replay) but not through the relay or the tunnel's basic auth. It returns
// once the response has been read, and inspect.ErrUpstreamDown if the
// upstream could not be reached. The request's context bounds it.
func (f *Forwarder) Replay(label string, req *http.Request) error {
	f.mu.Lock()
	var tn *tunnel
	for _, t := range f.tunnels {
		if t.Label == label {
			tn = t
		}
	}
	f.mu.Unlock()
	if tn == nil {
		return fmt.Errorf("%w: %q", ErrTunnelNotFound, label)
	}
	if tn.http == nil || tn.http.replay == nil {
		return fmt.Errorf("%w: %q", ErrNotReplayable, label)
	}
	ctx, cancel := context.WithTimeout(req.Context(), f.cfg.ResponseTimeout)
	defer cancel()
	if req.TLS != nil {
		ctx = context.WithValue(ctx, tlsKey{}, true)
	}
	w := &replayWriter{header: http.Header{}}
	tn.http.replay.ServeHTTP(w, req.WithContext(ctx))
	if code := w.header.Get("Porthole-Error"); code != "" {
		return fmt.Errorf("%w: %s", inspect.ErrUpstreamDown, code)
	}
	return nil
}

// replayWriter takes a replayed response; the capture keeps what it needs.
type replayWriter struct {
	header http.Header
	status int
}

func (w *replayWriter) Header() http.Header         { return w.header }
func (w *replayWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *replayWriter) WriteHeader(code int)        { w.status = code }
func (w *replayWriter) Flush()                      {}

// InspectAgent returns the forwarder as the agent API sees it.
func (f *Forwarder) InspectAgent() inspect.Agent { return apiAgent{f} }

type apiAgent struct{ f *Forwarder }

func (a apiAgent) Status() string { return a.f.State().Phase.String() }

func (a apiAgent) Tunnels() []inspect.Tunnel {
	var out []inspect.Tunnel
	for _, t := range a.f.Tunnels() {
		out = append(out, APITunnel(t))
	}
	return out
}

// APITunnel describes a tunnel for the agent API.
func APITunnel(t TunnelInfo) inspect.Tunnel {
	return inspect.Tunnel{Name: t.Label, PublicURLs: t.URLs, Addr: t.Upstream,
		Inspect: t.Tap != nil && t.Tap.Capturing(), Tap: t.Tap}
}

func (a apiAgent) StartTunnel(ctx context.Context, req inspect.TunnelRequest) (inspect.Tunnel, error) {
	t, err := TunnelFromAPI(req)
	if err != nil {
		return inspect.Tunnel{}, err
	}
	info, err := a.f.AddTunnel(ctx, t)
	if err != nil {
		return inspect.Tunnel{}, APIError(err)
	}
	return APITunnel(info), nil
}

func (a apiAgent) StopTunnel(ctx context.Context, name string) error {
	return APIError(a.f.RemoveTunnel(name))
}

func (a apiAgent) Replay(tunnel string, req *http.Request) error {
	return APIError(a.f.Replay(tunnel, req))
}

// APIError wraps a forwarder error in the agent API's matching error.
func APIError(err error) error {
	var we *wire.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrTunnelNotFound):
		return fmt.Errorf("%w: %w", inspect.ErrNotFound, err)
	case errors.Is(err, ErrInvalidTunnel):
		return fmt.Errorf("%w: %w", inspect.ErrInvalid, err)
	case errors.Is(err, ErrTunnelExists):
		return fmt.Errorf("%w: %w", inspect.ErrExists, err)
	case errors.Is(err, ErrOffline):
		return fmt.Errorf("%w: %w", inspect.ErrUnavailable, err)
	case errors.Is(err, ErrNotReplayable):
		return fmt.Errorf("%w: %w", inspect.ErrNotReplayable, err)
	case errors.As(err, &we) && (we.Code == wire.CodeNameInvalid || we.Code == wire.CodeBadRequest):
		return fmt.Errorf("%w: %w", inspect.ErrInvalid, err)
	case errors.As(err, &we):
		return fmt.Errorf("%w: %w", inspect.ErrStartFailed, err)
	case errors.Is(err, inspect.ErrUpstreamDown):
		return err
	}
	return fmt.Errorf("%w: %w", inspect.ErrStartFailed, err)
}

// TunnelFromAPI maps the body of POST /api/tunnels to a Tunnel, with
// ngrok's field names: addr, proto, name, subdomain, remote_addr, auth
// (or basic_auth), host_header, inspect, crt and key, ip_restriction, and
// Porthole's upstream options. Its errors wrap inspect.ErrInvalid.
func TunnelFromAPI(req inspect.TunnelRequest) (Tunnel, error) {
	invalid := func(format string, args ...any) (Tunnel, error) {
		return Tunnel{}, fmt.Errorf("%w: %s", inspect.ErrInvalid, fmt.Sprintf(format, args...))
	}
	proto := req.Proto
	if proto == "" {
		proto = "http"
	}
	p, err := wire.ParseProto(proto)
	if err != nil {
		return invalid("%v", err)
	}
	if req.Addr == "" {
		return invalid("addr is required")
	}
	t := Tunnel{
		Label: req.Name, Proto: p, Upstream: req.Addr, Name: req.Subdomain, HostHeader: req.HostHeader,
		UpstreamTLSVerify: req.UpstreamTLSVerify, UpstreamCAFile: req.UpstreamTLSVerifyCAs,
		TerminateCertFile: req.Crt, TerminateKeyFile: req.Key,
		NoInspect: req.Inspect != nil && !*req.Inspect,
	}
	if r := req.IPRestriction; r != nil {
		t.CIDRAllow, t.CIDRDeny = r.AllowCIDRs, r.DenyCIDRs
	}
	switch {
	case req.Auth != "":
		t.BasicAuth = req.Auth
	case len(req.BasicAuth) == 1:
		t.BasicAuth = req.BasicAuth[0]
	case len(req.BasicAuth) > 1:
		return invalid("one basic_auth credential at most")
	}
	switch req.UpstreamProtocol {
	case "", "http1":
	case "http2":
		t.UpstreamHTTP2 = true
	default:
		return invalid("upstream_protocol %q: want http1 or http2", req.UpstreamProtocol)
	}
	if req.RemoteAddr != "" {
		port := req.RemoteAddr
		if _, pp, err := net.SplitHostPort(port); err == nil {
			port = pp
		}
		n, err := strconv.Atoi(port)
		if err != nil {
			return invalid("remote_addr %q: want host:port or a port", req.RemoteAddr)
		}
		t.RemotePort = n
	}
	if t.Label != "" && strings.ContainsAny(t.Label, "/()") {
		return invalid("name %q: no slashes or parentheses", t.Label)
	}
	return t, nil
}
