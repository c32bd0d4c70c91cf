package relay

import (
	"io"
	"net"
	"net/http"
	"time"
)

// The admin listener (Config.AdminAddr, off by default) serves:
//
//	/metrics  Prometheus metrics (see package metrics for the names)
//	/healthz  200 while the process serves at all
//	/readyz   200 once the relay takes agents and public traffic: listeners
//	          bound, not shutting down, and with ACME a certificate for its
//	          domain; 503 with the reason otherwise
//
// It carries no tunnel traffic and no authentication: bind it to loopback
// or a private network.

func (s *Server) startAdmin() error {
	ln, err := net.Listen("tcp", s.cfg.AdminAddr)
	if err != nil {
		return err
	}
	s.adminLn = ln
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metricsHandler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if reason := s.notReady(); reason != "" {
			http.Error(w, reason, http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
	s.adminSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.admin.Go(func() { s.adminSrv.Serve(ln) })
	return nil
}

// AdminAddr is the admin listener's address, or "" when disabled.
func (s *Server) AdminAddr() string { return addrString(s.adminLn) }

// notReady returns why the relay should not get traffic yet, or "".
func (s *Server) notReady() string {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	switch {
	case closed:
		return "shutting down"
	case s.acme != nil && s.acme.leaf(s.cfg.Domain) == nil:
		return "no certificate for " + s.cfg.Domain + " yet"
	}
	return ""
}

func (s *Server) closeAdmin() {
	if s.adminSrv != nil {
		s.adminSrv.Close()
	}
	s.admin.Wait()
}
