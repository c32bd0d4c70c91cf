package forwarder

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"porthole/wire"
)

// Upstream is a normalized upstream address.
type Upstream struct {
	Scheme string // "http", "https", "tcp" or "tls"
	Host   string // hostname or IP, without brackets
	Port   int
}

// Addr returns host:port for dialing.
func (u Upstream) Addr() string { return net.JoinHostPort(u.Host, strconv.Itoa(u.Port)) }

// String returns the normalized URL, such as "http://localhost:8000".
func (u Upstream) String() string { return u.Scheme + "://" + u.Addr() }

// IsTLS reports whether the agent speaks TLS to the upstream.
func (u Upstream) IsTLS() bool { return u.Scheme == "https" || u.Scheme == "tls" }

// UpstreamError names an upstream that cannot be used, and why.
type UpstreamError struct {
	Input  string
	Reason string
}

func (e *UpstreamError) Error() string {
	return fmt.Sprintf("invalid upstream %q: %s", e.Input, e.Reason)
}

// ParseUpstream normalizes an upstream given as a URL, host:port or bare port,
// for a tunnel of the given protocol.
//
// No scheme means http for HTTP tunnels, except that port 443 means https;
// for TCP and TLS tunnels it means raw TCP. HTTP tunnels accept http and
// https; TCP and TLS tunnels accept tcp and tls.
func ParseUpstream(s string, proto wire.Proto) (Upstream, error) {
	fail := func(format string, args ...any) (Upstream, error) {
		return Upstream{}, &UpstreamError{Input: s, Reason: fmt.Sprintf(format, args...)}
	}
	in := strings.TrimSpace(s)
	if in == "" {
		return fail("empty")
	}
	var u Upstream
	var hostport string
	if scheme, rest, ok := strings.Cut(in, "://"); ok {
		scheme = strings.ToLower(scheme)
		if !schemeAllowed(scheme, proto) {
			return fail("scheme %q is not supported for %s tunnels (use %s)", scheme, proto, allowedSchemes(proto))
		}
		pu, err := url.Parse(scheme + "://" + rest)
		if err != nil {
			return fail("%v", unwrapURLError(err))
		}
		if pu.User != nil {
			return fail("credentials are not allowed in the upstream")
		}
		if (pu.Path != "" && pu.Path != "/") || pu.RawQuery != "" || pu.Fragment != "" {
			return fail("a path, query or fragment is not allowed")
		}
		u.Scheme = scheme
		hostport = pu.Host
		if pu.Port() == "" && !strings.HasSuffix(hostport, ":") {
			switch scheme {
			case "http":
				hostport = net.JoinHostPort(pu.Hostname(), "80")
			case "https":
				hostport = net.JoinHostPort(pu.Hostname(), "443")
			default:
				return fail("a port is required")
			}
		}
	} else if isDigits(in) {
		hostport = "localhost:" + in
	} else {
		hostport = in
	}

	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return fail("want a port, host:port or URL")
	}
	if host == "" {
		return fail("empty host")
	}
	if strings.ContainsAny(host, "/?#@ ") {
		return fail("bad host %q", host)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || !isDigits(portStr) {
		return fail("bad port %q", portStr)
	}
	if port < 1 || port > 65535 {
		return fail("port %d is out of range 1-65535", port)
	}
	u.Host, u.Port = strings.ToLower(host), port
	if u.Scheme == "" {
		switch {
		case proto != wire.ProtoHTTP:
			u.Scheme = "tcp"
		case port == 443:
			u.Scheme = "https"
		default:
			u.Scheme = "http"
		}
	}
	return u, nil
}

func schemeAllowed(scheme string, proto wire.Proto) bool {
	if proto == wire.ProtoHTTP {
		return scheme == "http" || scheme == "https"
	}
	return scheme == "tcp" || scheme == "tls"
}

func allowedSchemes(proto wire.Proto) string {
	if proto == wire.ProtoHTTP {
		return "http:// or https://"
	}
	return "tcp:// or tls://"
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}
