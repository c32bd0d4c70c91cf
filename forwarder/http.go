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
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"porthole/inspect"
	"porthole/internal/httperr"
	"porthole/internal/netutil"
	"porthole/wire"
)

// httpTunnel proxies one tunnel's HTTP requests to its upstream. The relay
// hands it one stream per public connection, already decrypted if the
// client spoke HTTPS; it serves HTTP/1.1 and HTTP/2 (prior knowledge) on
// them. It lasts across sessions; each session gets its own server (see
// newServer) so that a session can drain on its own.
type httpTunnel struct {
	handler http.Handler
	replay  http.Handler             // the path of a replayed request: capture, then the proxy
	tap     *inspect.Tap             // nil without inspection
	hosts   atomic.Pointer[[]string] // the public hostnames, set at each bind
	log     *slog.Logger
}

func newHTTPTunnel(tn *tunnel, c *Config) *httpTunnel {
	rt := upstreamTransport(tn, c)
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
			setForwarded(pr)
		},
		Transport:    rt,
		BufferPool:   bufferPool{},
		ErrorHandler: proxyErrorHandler(log, tn.upstream),
		ErrorLog:     slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	h := &httpTunnel{log: log, tap: tn.tap}
	var handler http.Handler = proxy
	if tn.BasicAuth != "" {
		user, pass, _ := strings.Cut(tn.BasicAuth, ":")
		handler = basicAuth(user, pass, handler)
	}
	if tn.RateLimit != (RateLimit{}) {
		handler = newRateLimiter(tn.RateLimit, time.Now).limit(handler)
	}
	h.handler = abandonWhenGone(h.checkHost(refuseH2CUpgrade(handler)))
	if h.tap != nil {
		h.handler = h.tap.Handler(h.handler)
		// A replay comes from the inspector, not the public side: it skips the
		// tunnel's basic auth, whose header the capture hid, and goes
		// straight to the upstream.
		var replay http.Handler = proxy
		if tn.BasicAuth != "" {
			replay = dropAuthorization(proxy)
		}
		h.replay = h.tap.Handler(refuseH2CUpgrade(replay))
	}
	return h
}

func dropAuthorization(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("Authorization")
		next.ServeHTTP(w, r)
	})
}

// setHosts records the public hostnames the relay gave the tunnel.
func (h *httpTunnel) setHosts(urls []string) {
	var hosts []string
	for _, raw := range urls {
		if u, err := url.Parse(raw); err == nil {
			hosts = append(hosts, strings.ToLower(u.Hostname()))
		}
	}
	h.hosts.Store(&hosts)
}

// checkHost answers 421 to requests for another host than the tunnel's,
// such as a second request on a kept-alive connection that names another
// tunnel: the relay routes a connection by its first request (or SNI).
func (h *httpTunnel) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if hh, _, err := net.SplitHostPort(host); err == nil {
			host = hh
		}
		host = strings.ToLower(strings.TrimSuffix(host, "."))
		if hosts := h.hosts.Load(); hosts != nil && !slices.Contains(*hosts, host) {
			httperr.Write(w, http.StatusMisdirectedRequest, httperr.Misdirected,
				"This connection belongs to another tunnel; open a new one for "+r.Host+".")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// abandonWhenGone makes a handler that is writing an HTTP/1 response to a
// public client who has gone give up at once. The relay ends the stream
// when the client's connection ends or stalls, which cancels the request's
// context; but a handler blocked writing to the stream would wait for a
// window that never comes, holding the stream (and, in the relay, its
// buffer) until the relay resets it a minute later (wire.HalfClosedTimeout). An HTTP/2 request's
// writes end with its context on their own.
func abandonWhenGone(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sc, ok := r.Context().Value(connKey{}).(*streamConn); ok && r.ProtoMajor == 1 {
			stop := context.AfterFunc(r.Context(), func() { sc.SetWriteDeadline(time.Unix(1, 0)) })
			defer stop()
		}
		next.ServeHTTP(w, r)
	})
}

// refuseH2CUpgrade drops an "Upgrade: h2c" request header: HTTP/2 over
// cleartext is not passed to the upstream by upgrade (it could smuggle
// requests past the tunnel's HTTP handling).
func refuseH2CUpgrade(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hasToken(r.Header, "Upgrade", "h2c") {
			r = r.Clone(r.Context())
			r.Header.Del("Upgrade")
			r.Header.Del("HTTP2-Settings")
			dropToken(r.Header, "Connection", "upgrade")
		}
		next.ServeHTTP(w, r)
	})
}

// setForwarded appends the public client's IP to X-Forwarded-For and sets
// X-Forwarded-Proto to the scheme the client used and X-Forwarded-Host to
// the public host, replacing what the client sent: only X-Forwarded-For
// is a chain, and a plain-HTTP client must not pass for an HTTPS one.
func setForwarded(pr *httputil.ProxyRequest) {
	in, out := pr.In, pr.Out
	ip, _, err := net.SplitHostPort(in.RemoteAddr)
	if err != nil {
		ip = in.RemoteAddr
	}
	proto := "http"
	if publicTLS(in.Context()) || in.TLS != nil {
		proto = "https"
	}
	out.Header["X-Forwarded-For"] = appendValue(in.Header["X-Forwarded-For"], ip)
	out.Header["X-Forwarded-Proto"] = []string{proto}
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

// streamConn is a relay stream seen as the public client's connection.
// When counted, its bytes go to stats as they pass, and closed is called
// once, when it is closed.
type streamConn struct {
	net.Conn
	hdr    wire.StreamHeader
	client net.Addr
	stats  *inspect.Metrics
	closed func()
	once   sync.Once
}

func (c *streamConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.stats != nil {
		c.stats.Received(n)
	}
	return n, err
}

func (c *streamConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if c.stats != nil {
		c.stats.Sent(n)
	}
	return n, err
}

func (c *streamConn) Close() error {
	err := c.Conn.Close()
	if c.closed != nil {
		c.once.Do(c.closed)
	}
	return err
}

func newStreamConn(c net.Conn, h wire.StreamHeader) *streamConn {
	sc := &streamConn{Conn: c, hdr: h, client: c.RemoteAddr()}
	if ap, err := netip.ParseAddrPort(h.ClientAddr); err == nil {
		sc.client = net.TCPAddrFromAddrPort(ap)
	}
	return sc
}

// RemoteAddr is the public client's address, which the handler sees as
// Request.RemoteAddr.
func (c *streamConn) RemoteAddr() net.Addr { return c.client }

// wrapConn makes a relay stream the public client's connection, counted
// when the tunnel is inspected.
func (h *httpTunnel) wrapConn(st net.Conn, hdr wire.StreamHeader) net.Conn {
	sc := newStreamConn(st, hdr)
	if h.tap != nil {
		sc.stats = h.tap.Metrics()
		sc.closed = sc.stats.ConnOpened()
	}
	return sc
}

// aborter is a stream that may be aborted (a *wire.Stream, as the session
// wraps it): OnAbort has a function called when it is.
type aborter interface{ OnAbort(func()) }

type tlsKey struct{}

// connKey holds the request's *streamConn in its context.
type connKey struct{}

func publicTLS(ctx context.Context) bool { v, _ := ctx.Value(tlsKey{}).(bool); return v }

// tunnelServer serves one tunnel's streams of one session. It counts its
// Serve loop, its connections (from StateNew, reported before Serve can
// return, to StateClosed or StateHijacked) and its handlers (which start
// while their connection is counted), so close can join them all.
type tunnelServer struct {
	sess     *session
	listener *netutil.ChanListener
	server   *http.Server
	running  sync.WaitGroup

	mu   sync.Mutex
	idle map[net.Conn]struct{} // keep-alive connections between requests
}

// requestHeadTimeout bounds how long a public client may take to send a
// request head on a connection the relay handed over; the relay gave it as
// long for the connection's first.
const requestHeadTimeout = 10 * time.Second

// maxRequestHead is the largest request head served, as on the relay.
const maxRequestHead = 64 << 10

// newServer starts a server for this tunnel's streams in one session.
func (h *httpTunnel) newServer(sess *session) *tunnelServer {
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true) // HTTPS clients that negotiated h2 with the relay
	ts := &tunnelServer{
		sess:     sess,
		listener: netutil.NewChanListener(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}),
		idle:     map[net.Conn]struct{}{},
	}
	ts.server = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ts.running.Add(1)
			defer ts.running.Done()
			h.handler.ServeHTTP(w, r)
		}),
		Protocols:         &protos,
		ReadHeaderTimeout: requestHeadTimeout,
		IdleTimeout:       5 * time.Minute,
		MaxHeaderBytes:    maxRequestHead,
		ErrorLog:          slog.NewLogLogger(h.log.Handler(), slog.LevelDebug),
		ConnState:         ts.connState,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			sc, ok := c.(*streamConn)
			if !ok {
				return ctx
			}
			if sc.hdr.Flags&wire.FlagTLS != 0 {
				ctx = context.WithValue(ctx, tlsKey{}, true)
			}
			// A stream aborted for its backlog ends its requests: a
			// proxy writing a body to an upstream that does not read
			// would otherwise wait for it, holding the upstream
			// connection.
			if ab, ok := sc.Conn.(aborter); ok {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				ab.OnAbort(cancel)
			}
			return context.WithValue(ctx, connKey{}, sc)
		},
	}
	ts.running.Add(1)
	go func() {
		defer ts.running.Done()
		ts.server.Serve(ts.listener)
	}()
	return ts
}

// connState counts connections and keeps the idle ones; near the relay's
// stream cap a connection that turns idle is closed at once.
func (ts *tunnelServer) connState(c net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		ts.running.Add(1)
	case http.StateIdle:
		if ts.sess.underPressure() {
			c.Close()
			return
		}
		ts.mu.Lock()
		ts.idle[c] = struct{}{}
		ts.mu.Unlock()
	case http.StateActive:
		ts.mu.Lock()
		delete(ts.idle, c)
		ts.mu.Unlock()
	case http.StateClosed, http.StateHijacked:
		ts.mu.Lock()
		delete(ts.idle, c)
		ts.mu.Unlock()
		ts.running.Done()
	}
}

// closeIdle closes the keep-alive connections waiting for a next request.
func (ts *tunnelServer) closeIdle() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for c := range ts.idle {
		c.Close()
	}
}

// shutdown lets in-flight requests finish and closes idle connections,
// forcing the rest closed when ctx ends.
func (ts *tunnelServer) shutdown(ctx context.Context) {
	if err := ts.server.Shutdown(ctx); err != nil {
		ts.server.Close()
	}
}

// close closes every connection and waits for the server's goroutines.
func (ts *tunnelServer) close() {
	ts.server.Close()
	ts.running.Wait()
}

// upstreamTransport builds the round tripper for one upstream: HTTP/1.1 by
// default; with UpstreamHTTP2, h2c with prior knowledge for http:// and
// HTTP/2 by ALPN for https://.
func upstreamTransport(tn *tunnel, c *Config) *http.Transport {
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
		tr.TLSClientConfig = upstreamTLSConfig(tn.upstream, tn.UpstreamTLSVerify, tn.upstreamCAs, next)
	case tn.UpstreamHTTP2:
		protos.SetUnencryptedHTTP2(true)
	default:
		protos.SetHTTP1(true)
	}
	tr.Protocols = &protos
	return tr
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
