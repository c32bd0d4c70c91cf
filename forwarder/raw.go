package forwarder

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"time"

	"porthole/inspect"
	"porthole/internal/netutil"
	"porthole/wire"
)

// rawTunnel forwards TCP and TLS tunnel streams to the upstream byte for
// byte, optionally terminating public TLS first and re-encrypting to a
// tls:// upstream.
type rawTunnel struct {
	tn      *tunnel
	log     *slog.Logger
	dial    func(ctx context.Context, client string) (net.Conn, error)
	timeout time.Duration
}

func newRawTunnel(tn *tunnel, c *Config) *rawTunnel {
	d := &net.Dialer{Timeout: c.DialTimeout, KeepAlive: 30 * time.Second}
	r := &rawTunnel{tn: tn, log: c.Logger.With("upstream", tn.upstream.String()), timeout: c.DialTimeout}
	addr := tn.upstream.Addr()
	var tlsCfg *tls.Config
	if tn.upstream.Scheme == "tls" {
		tlsCfg = upstreamTLSConfig(tn.upstream, tn.UpstreamTLSVerify, tn.upstreamCAs, nil)
	}
	r.dial = func(ctx context.Context, client string) (net.Conn, error) {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		if deadline, ok := ctx.Deadline(); ok {
			c.SetDeadline(deadline)
			defer c.SetDeadline(time.Time{})
		}
		// The PROXY header goes first, before any TLS to the upstream.
		if tn.ProxyProtocol {
			if err := writeProxyHeader(c, client); err != nil {
				c.Close()
				return nil, err
			}
		}
		if tlsCfg == nil {
			return c, nil
		}
		tc := tls.Client(c, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		return tc, nil
	}
	return r
}

// serve carries one stream to the upstream; sctx ends with the session,
// cutting short a TLS handshake or an upstream dial in progress.
func (r *rawTunnel) serve(sctx context.Context, st net.Conn, h wire.StreamHeader) {
	var public net.Conn = st
	if r.tn.terminate != nil {
		tc := tls.Server(st, r.tn.terminate)
		ctx, cancel := context.WithTimeout(sctx, r.timeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			r.log.Debug("public TLS handshake failed", "client", h.ClientAddr, "err", err)
			st.Close()
			return
		}
		public = tc
	}
	ctx, cancel := context.WithTimeout(sctx, r.timeout)
	up, err := r.dial(ctx, h.ClientAddr)
	cancel()
	if err != nil {
		r.log.Warn("upstream dial failed", "client", h.ClientAddr, "err", err)
		public.Close()
		return
	}
	// An aborted stream closes the upstream, whose writes may be waiting
	// on an upstream that does not read.
	if ab, ok := st.(aborter); ok {
		ab.OnAbort(func() { up.Close() })
	}
	if r.tn.tap != nil {
		stats := r.tn.tap.Metrics()
		defer stats.ConnOpened()()
		public = &countedConn{Conn: public, stats: stats}
	}
	if err := netutil.Pipe(public, up); err != nil {
		r.log.Debug("connection ended", "client", h.ClientAddr, "err", err)
	}
}

// countedConn counts the bytes read from and written to the public client.
// It keeps CloseWrite, which Pipe uses for half-closes.
type countedConn struct {
	net.Conn
	stats *inspect.Metrics
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.stats.Received(n)
	return n, err
}

func (c *countedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.stats.Sent(n)
	return n, err
}

func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
