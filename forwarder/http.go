package forwarder

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"porthole/internal/httperr"
	"porthole/internal/netutil"
)

// forwardedHeaders are set by the relay, which alone knows the public client;
// the agent passes them on unchanged.
var forwardedHeaders = []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"}

// httpTunnel serves the HTTP requests the relay sends down one tunnel's
// streams and proxies them to the upstream.
type httpTunnel struct {
	listener *netutil.ChanListener
	server   *http.Server
	log      *slog.Logger
}

func newHTTPTunnel(tn *tunnel, c *Config) (*httpTunnel, error) {
	rt, err := upstreamTransport(tn, c)
	if err != nil {
		return nil, err
	}
	target := &url.URL{Scheme: tn.upstream.Scheme, Host: tn.upstream.Addr()}
	hostHeader := tn.HostHeader
	log := c.Logger.With("tunnel", tn.Name, "upstream", tn.upstream.String())
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			switch hostHeader {
			case "":
				pr.Out.Host = pr.In.Host
			case "rewrite":
				// SetURL already made Host the upstream's.
			default:
				pr.Out.Host = hostHeader
			}
			for _, k := range forwardedHeaders {
				if v, ok := pr.In.Header[k]; ok {
					pr.Out.Header[k] = v
				}
			}
		},
		Transport:    rt,
		BufferPool:   bufferPool{},
		ErrorHandler: proxyErrorHandler(log, tn.upstream),
		ErrorLog:     slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	var handler http.Handler = proxy
	if tn.BasicAuth != "" {
		user, pass, _ := strings.Cut(tn.BasicAuth, ":")
		handler = basicAuth(user, pass, proxy)
	}
	l := netutil.NewChanListener(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	return &httpTunnel{
		listener: l,
		log:      log,
		server: &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 30 * time.Second,
			IdleTimeout:       5 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
	}, nil
}

func (h *httpTunnel) serve() { h.server.Serve(h.listener) }

func (h *httpTunnel) shutdown(ctx context.Context) {
	if err := h.server.Shutdown(ctx); err != nil {
		h.server.Close()
	}
}

func (h *httpTunnel) close() { h.server.Close() }

// upstreamTransport builds the round tripper for one upstream: HTTP/1.1 by
// default; with UpstreamHTTP2, h2c with prior knowledge for http:// and
// HTTP/2 by ALPN for https://.
func upstreamTransport(tn *tunnel, c *Config) (*http.Transport, error) {
	dialer := &net.Dialer{Timeout: c.DialTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext:           dialer.DialContext,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   c.DialTimeout,
		ResponseHeaderTimeout: c.ResponseTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		WriteBufferSize:       16 << 10,
		ReadBufferSize:        16 << 10,
	}
	var protos http.Protocols
	switch {
	case tn.upstream.Scheme == "https":
		next := []string{"http/1.1"}
		if tn.UpstreamHTTP2 {
			next = []string{"h2", "http/1.1"}
			protos.SetHTTP2(true)
		}
		protos.SetHTTP1(true)
		cfg, err := upstreamTLSConfig(tn.upstream, tn.UpstreamTLSVerify, tn.UpstreamCAFile, next)
		if err != nil {
			return nil, fmt.Errorf("upstream TLS: %w", err)
		}
		tr.TLSClientConfig = cfg
	case tn.UpstreamHTTP2:
		protos.SetUnencryptedHTTP2(true)
	default:
		protos.SetHTTP1(true)
	}
	tr.Protocols = &protos
	return tr, nil
}

func basicAuth(user, pass string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		userOK := subtle.ConstantTimeCompare([]byte(u), []byte(user)) == 1
		passOK := subtle.ConstantTimeCompare([]byte(p), []byte(pass)) == 1
		if !ok || !userOK || !passOK {
			w.Header().Set("WWW-Authenticate", `Basic realm="porthole", charset="UTF-8"`)
			httperr.Write(w, http.StatusUnauthorized, httperr.AuthRequired, "This tunnel needs a user name and password.")
			return
		}
		// The tunnel's credentials are for the tunnel, not for the upstream.
		r.Header.Del("Authorization")
		next.ServeHTTP(w, r)
	})
}

// proxyErrorHandler turns an upstream failure into a coded error page.
func proxyErrorHandler(log *slog.Logger, up Upstream) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
			return // the public client went away
		}
		status, code, detail := classifyUpstreamError(err, up)
		log.Warn("upstream request failed", "code", code, "err", err)
		httperr.Write(w, status, code, detail)
	}
}

func classifyUpstreamError(err error, up Upstream) (int, httperr.Code, string) {
	var ne net.Error
	var cve *tls.CertificateVerificationError
	var uae x509.UnknownAuthorityError
	var hne x509.HostnameError
	var oe *net.OpError
	switch {
	case errors.As(err, &cve) || errors.As(err, &uae) || errors.As(err, &hne):
		return http.StatusBadGateway, httperr.UpstreamTLS,
			fmt.Sprintf("The upstream %s presented a certificate that is not trusted.", up)
	case errors.Is(err, syscall.ECONNREFUSED):
		return http.StatusBadGateway, httperr.UpstreamRefused,
			fmt.Sprintf("The upstream %s refused the connection. Is the service running?", up)
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return http.StatusGatewayTimeout, httperr.UpstreamTimeout,
			fmt.Sprintf("The upstream %s did not answer in time.", up)
	case errors.As(err, &oe) && oe.Op == "dial":
		return http.StatusBadGateway, httperr.UpstreamUnreachable,
			fmt.Sprintf("The upstream %s could not be reached.", up)
	default:
		return http.StatusBadGateway, httperr.UpstreamBadResponse,
			fmt.Sprintf("The upstream %s sent an invalid response.", up)
	}
}

// bufferPool lends ReverseProxy its copy buffers.
type bufferPool struct{}

var proxyBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

func (bufferPool) Get() []byte  { return *proxyBufs.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { proxyBufs.Put(&b) }
