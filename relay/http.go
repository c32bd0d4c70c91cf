package relay

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"porthole/internal/httperr"
	"porthole/internal/netutil"
	"porthole/wire"
)

// maxRequestHead caps what the relay reads to route a public HTTP connection.
const maxRequestHead = 64 << 10

// acceptHTTP takes connections on the public HTTP listener.
func (s *Server) acceptHTTP() {
	for {
		c, err := s.httpLn.Accept()
		if err != nil {
			return
		}
		s.handlePublic(c, s.routeHTTP)
	}
}

// routeHTTP reads a connection's first request head to find its tunnel by
// Host, then hands the whole connection, bytes already read included, to
// the agent as one stream. The agent does the HTTP proxying. Connections
// that reach no tunnel get the relay's own error page.
func (s *Server) routeHTTP(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(s.cfg.ReadHeaderTimeout))
	rec := &recorder{r: c, left: maxRequestHead}
	req, err := http.ReadRequest(bufio.NewReader(rec))
	c.SetReadDeadline(time.Time{})
	pc := netutil.NewPrefixConn(c, rec.buf)
	if err == nil && !s.isACMEChallenge(req) {
		if b := s.httpBinding(req.Host); b != nil {
			if st, err := b.open(c.RemoteAddr().String(), 0); err == nil {
				pipeHTTP(b, pc, st)
				return
			}
		}
	}
	s.httpConns.Push(pc)
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
	r    net.Conn
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
	switch {
	case b != nil && b.proto == wire.ProtoHTTP:
		httperr.Write(w, http.StatusServiceUnavailable, httperr.TunnelOffline,
			"The tunnel "+r.Host+" is not taking requests right now.")
	case offline:
		httperr.Write(w, http.StatusServiceUnavailable, httperr.TunnelOffline,
			"The tunnel "+r.Host+" is offline: its agent is reconnecting or stopped.")
	default:
		httperr.Write(w, http.StatusNotFound, httperr.TunnelNotFound, "There is no tunnel at "+r.Host+".")
	}
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
