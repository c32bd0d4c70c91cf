package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"time"

	"github.com/hashicorp/yamux"

	"porthole/internal/httperr"
	"porthole/wire"
)

// serveHTTP routes a public request to its tunnel by Host.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	name, ok := s.nameFromHost(r.Host)
	var b *binding
	offline := false
	if ok {
		b, offline = s.reg.lookup(name)
	}
	if b == nil || b.proto != wire.ProtoHTTP {
		if offline {
			httperr.Write(w, http.StatusServiceUnavailable, httperr.TunnelOffline,
				"The tunnel "+r.Host+" is offline: its agent is reconnecting or stopped.")
			return
		}
		httperr.Write(w, http.StatusNotFound, httperr.TunnelNotFound, "There is no tunnel at "+r.Host+".")
		return
	}
	if hasToken(r.Header, "Upgrade", "h2c") {
		// HTTP/2 cleartext upgrades stop here: the tunnel speaks HTTP/1.1 to the
		// agent, and passing the upgrade on would let a client smuggle h2c.
		r = r.Clone(r.Context())
		r.Header.Del("Upgrade")
		r.Header.Del("HTTP2-Settings")
		dropToken(r.Header, "Connection", "upgrade")
	}
	b.proxy.ServeHTTP(w, r)
}

// nameFromHost returns the tunnel name of NAME.DOMAIN[:port].
func (s *Server) nameFromHost(host string) (string, bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	name, ok := strings.CutSuffix(host, "."+s.cfg.Domain)
	if !ok || name == "" || strings.Contains(name, ".") {
		return "", false
	}
	return name, true
}

// newHTTPProxy gives an HTTP binding its reverse proxy. Requests travel to
// the agent as HTTP/1.1 over pooled streams of the agent's session.
func (s *Server) newHTTPProxy(b *binding) {
	b.transport = &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return b.open("")
		},
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ExpectContinueTimeout: time.Second,
		WriteBufferSize:       16 << 10,
		ReadBufferSize:        16 << 10,
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	b.transport.Protocols = &protos
	b.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = "tunnel"
			pr.Out.Host = pr.In.Host
			setForwarded(pr)
		},
		Transport:  b.transport,
		BufferPool: bufferPool{},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return
			}
			if errors.Is(err, yamux.ErrRemoteGoAway) || errors.Is(err, yamux.ErrSessionShutdown) || errors.Is(err, ErrTooManyStreams) {
				httperr.Write(w, http.StatusServiceUnavailable, httperr.TunnelOffline,
					"The tunnel "+r.Host+" is not taking requests right now.")
				return
			}
			b.sess.log.Debug("request to agent failed", "err", err)
			httperr.Write(w, http.StatusBadGateway, httperr.TunnelBroken, "The tunnel "+r.Host+" failed during the request.")
		},
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

// setForwarded appends the client IP to X-Forwarded-For and the public
// scheme to X-Forwarded-Proto, and sets X-Forwarded-Host to the public host.
func setForwarded(pr *httputil.ProxyRequest) {
	in, out := pr.In, pr.Out
	ip, _, err := net.SplitHostPort(in.RemoteAddr)
	if err != nil {
		ip = in.RemoteAddr
	}
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	out.Header["X-Forwarded-For"] = appendValue(in.Header["X-Forwarded-For"], ip)
	out.Header["X-Forwarded-Proto"] = appendValue(in.Header["X-Forwarded-Proto"], proto)
	out.Header["X-Forwarded-Host"] = []string{in.Host}
}

func appendValue(prior []string, v string) []string {
	if len(prior) == 0 {
		return []string{v}
	}
	return []string{strings.Join(prior, ", ") + ", " + v}
}

// hasToken reports whether a comma-separated header contains token.
func hasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func dropToken(h http.Header, key, token string) {
	var keep []string
	for _, v := range h.Values(key) {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" && !strings.EqualFold(t, token) {
				keep = append(keep, t)
			}
		}
	}
	h.Del(key)
	if len(keep) > 0 {
		h.Set(key, strings.Join(keep, ", "))
	}
}

// tlsServer terminates public TLS with the relay certificate.
func tlsServer(c net.Conn, cfg *tls.Config) *tls.Conn { return tls.Server(c, cfg) }
