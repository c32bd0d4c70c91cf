package relay

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"porthole/internal/httperr"
	"porthole/internal/netutil"
	"porthole/wire"
)

// maxRequestHead caps what the relay reads to route a public HTTP
// connection; the agent's server takes heads of the same size.
const maxRequestHead = 64 << 10

// retryAfter is the Retry-After, in seconds, of a 429 for too many connections.
const retryAfter = "5"

// routeHTTP reads a connection's first request head to find its tunnel by
// Host, then hands the whole connection, bytes already read included, to
// the agent as one stream. The agent does the HTTP proxying. A head that
// is too large, too slow or malformed gets its own coded answer here; a
// connection that reaches no tunnel gets the relay's own error page.
func (s *Server) routeHTTP(c net.Conn, routed func()) {
	c.SetReadDeadline(time.Now().Add(s.cfg.ReadHeaderTimeout))
	req, head, err := readRequestHead(c, maxRequestHead)
	c.SetReadDeadline(time.Time{})
	if err != nil {
		answerBadHead(c, err)
		return
	}
	host, acmeChallenge := req.Host, s.isACMEChallenge(req)
	pc := netutil.NewPrefixConn(c, head)
	b := s.httpBinding(host)
	if b == nil || acmeChallenge {
		s.httpConns.Push(pc)
		return
	}
	st, err := b.open(c.RemoteAddr(), 0)
	if err != nil {
		s.httpConns.Push(refused(pc, err))
		return
	}
	routed()
	pipeHTTP(b, pc, st, req.ProtoMajor == 1)
}

// answerBadHead answers a request head that could not be routed, and
// closes the connection.
func answerBadHead(c net.Conn, err error) {
	var ne net.Error
	c.SetWriteDeadline(time.Now().Add(time.Second))
	switch {
	case errors.Is(err, errHeadTooLarge):
		httperr.WriteResponse(c, http.StatusRequestHeaderFieldsTooLarge, httperr.HeadTooLarge,
			fmt.Sprintf("The request head is over %d KiB.", maxRequestHead>>10), nil)
	case errors.As(err, &ne) && ne.Timeout():
		httperr.WriteResponse(c, http.StatusRequestTimeout, httperr.HeadTimeout,
			"The request head did not arrive in time.", nil)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || netutil.IsClosed(err):
		// The client went away.
		c.Close()
		return
	default:
		httperr.WriteResponse(c, http.StatusBadRequest, httperr.BadRequest, "The request head is malformed.", nil)
	}
	lingerClose(c)
}

// badHeadLinger is how long the relay reads, and drops, what a client
// still sends after its request head was refused.
const badHeadLinger = time.Second

// lingerClose closes c once the client has had a moment to read the answer
// written to it. Closing with unread bytes would reset the connection, and
// a client still sending the rest of an oversized head would lose the
// answer.
func lingerClose(c net.Conn) {
	netutil.CloseWrite(c)
	c.SetReadDeadline(time.Now().Add(badHeadLinger))
	io.Copy(io.Discard, c)
	c.Close()
}

// readRequestHead reads the first request head from r, reading at most max
// bytes, and returns it with every byte it read (the head and perhaps the
// start of a body), to be replayed.
func readRequestHead(r io.Reader, max int) (req *http.Request, read []byte, err error) {
	rec := &recorder{r: r, left: max}
	req, err = http.ReadRequest(bufio.NewReader(rec))
	return req, rec.buf, err
}

// httpBinding returns the live HTTP binding for a Host, or nil.
func (s *Server) httpBinding(host string) *binding {
	name, ok := s.nameFromHost(host)
	if !ok {
		return nil
	}
	if b, _ := s.reg.lookup(name); b != nil && b.proto == wire.ProtoHTTP {
		return b
	}
	return nil
}

// recorder keeps what is read through it, up to a limit.
type recorder struct {
	r    io.Reader
	buf  []byte
	left int
}

func (r *recorder) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, errHeadTooLarge
	}
	if len(p) > r.left {
		p = p[:r.left]
	}
	n, err := r.r.Read(p)
	r.buf = append(r.buf, p[:n]...)
	r.left -= n
	return n, err
}

var errHeadTooLarge = errors.New("request head too large")

// refusedConn is a public connection that reached its tunnel but could not
// be carried to the agent, and why; the relay's own server answers it.
type refusedConn struct {
	net.Conn
	reason error
}

func refused(c net.Conn, reason error) net.Conn { return &refusedConn{Conn: c, reason: reason} }

// CloseWrite half-closes the underlying connection when it supports it.
func (c *refusedConn) CloseWrite() error { return netutil.CloseWrite(c.Conn) }

type refusedKey struct{}

// connContext records in each request's context why its connection was
// refused, if it was.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if rc, ok := c.(*refusedConn); ok {
		return context.WithValue(ctx, refusedKey{}, rc.reason)
	}
	return ctx
}

// serveHTTP answers the public requests that reach no agent: an unknown
// host, an offline tunnel, or one whose agent is draining.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if s.isACMEChallenge(r) {
		if !s.acme.handleHTTPChallenge(w, r) {
			http.Error(w, "no ACME challenge is pending for this name", http.StatusNotFound)
		}
		return
	}
	name, ok := s.nameFromHost(r.Host)
	var b *binding
	offline := false
	if ok {
		b, offline = s.reg.lookup(name)
	}
	reason, _ := r.Context().Value(refusedKey{}).(error)
	switch {
	case errors.Is(reason, ErrIPDenied):
		w.Header().Set("Connection", "close")
		s.writeError(w, s.metrics.tunnelLabel(b), http.StatusForbidden, httperr.IPDenied,
			"The tunnel "+r.Host+" does not take connections from your address.")
	case errors.Is(reason, ErrClientLimit):
		w.Header().Set("Retry-After", retryAfter)
		w.Header().Set("Connection", "close")
		s.writeError(w, s.metrics.tunnelLabel(b), http.StatusTooManyRequests, httperr.TooManyConns,
			"You have too many connections open to "+r.Host+"; close some and retry.")
	case b != nil && b.proto == wire.ProtoHTTP:
		s.writeError(w, s.metrics.tunnelLabel(b), http.StatusServiceUnavailable, httperr.TunnelOffline,
			"The tunnel "+r.Host+" is not taking requests right now.")
	case offline:
		s.writeError(w, s.metrics.tunnels.Peek(name), http.StatusServiceUnavailable, httperr.TunnelOffline,
			"The tunnel "+r.Host+" is offline: its agent is reconnecting or stopped.")
	default:
		s.writeError(w, "", http.StatusNotFound, httperr.TunnelNotFound, "There is no tunnel at "+r.Host+".")
	}
}

// writeError sends one of the relay's own error pages and counts it.
func (s *Server) writeError(w http.ResponseWriter, tunnel string, status int, code httperr.Code, detail string) {
	s.metrics.answered(tunnel, status, code)
	httperr.Write(w, status, code, detail)
}

// nameFromHost returns the registry key of a Host or SNI value: the
// tunnel name of NAME.DOMAIN[:port], or the whole hostname of any other
// host, which a token may own (see hostnames.go).
func (s *Server) nameFromHost(host string) (string, bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	name, ok := strings.CutSuffix(host, "."+s.cfg.Domain)
	switch {
	case ok && name != "" && !strings.Contains(name, "."):
		return name, true
	case !ok && wire.ValidHostname(host) == nil:
		return host, true
	}
	return "", false
}
