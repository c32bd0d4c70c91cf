package inspect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultAddr is where the inspector listens unless told otherwise; when
// the port is taken the next ones up to LastDefaultPort are tried, as
// ngrok does.
const (
	DefaultAddr     = "127.0.0.1:4040"
	LastDefaultPort = 4049
)

// Server serves an API on a listener, refusing requests whose Host is not
// the address it serves (DNS rebinding) and cross-site writes.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// Listen opens the inspector's listener on addr. For DefaultAddr, a taken
// port moves on to the next, up to LastDefaultPort.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil || addr != DefaultAddr || !errors.Is(err, syscall.EADDRINUSE) {
		return ln, err
	}
	host, port, _ := net.SplitHostPort(addr)
	first, _ := strconv.Atoi(port)
	for p := first + 1; p <= LastDefaultPort; p++ {
		if ln, err = net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p))); err == nil {
			return ln, nil
		}
	}
	return nil, fmt.Errorf("ports %d-%d are all taken: %w", first, LastDefaultPort, err)
}

// Serve serves h on ln in the background until Close, behind the Host
// and Origin checks.
func Serve(ln net.Listener, h http.Handler, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{ln: ln, done: make(chan struct{})}
	port := ln.Addr().(*net.TCPAddr).Port
	s.srv = &http.Server{
		Handler:           guard(port, h),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	if ap, err := netip.ParseAddrPort(ln.Addr().String()); err == nil && !ap.Addr().IsLoopback() {
		log.Warn("the inspector and agent API listen beyond this machine, without authentication: "+
			"whoever reaches them sees every request and can replay them and start and stop tunnels", "addr", ln.Addr().String())
	}
	go func() {
		defer close(s.done)
		s.srv.Serve(ln)
	}()
	return s
}

// URL is the inspector's address, as printed: http://127.0.0.1:4040.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server and waits for it, closing event streams.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = s.srv.Close()
	}
	<-s.done
	return err
}

// guard refuses a request whose Host names anything but this server by an
// IP literal or "localhost" on its port, so that a web page under another
// name that resolves here (DNS rebinding) cannot read or drive the API; and
// refuses writes whose Origin is another site.
func guard(port int, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowedHost(r.Host, port) {
			forbidden(w, "host "+strconv.Quote(r.Host)+" is not allowed; use the address the inspector printed")
			return
		}
		if o := r.Header.Get("Origin"); o != "" && r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !strings.HasPrefix(o, "http://") || !allowedHost(strings.TrimPrefix(o, "http://"), port) {
				forbidden(w, "cross-site requests are not allowed")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func forbidden(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusForbidden)
	fmt.Fprintf(w, `{"error_code":%d,"status_code":403,"msg":%s,"details":{}}`+"\n", CodeForbidden, strconv.Quote(msg))
}

// allowedHost accepts "IP:port" and "localhost:port" for the server's
// port (and a missing port, which means 80, only if the port is 80).
func allowedHost(hostport string, port int) bool {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		host, p = hostport, "80"
	}
	if p != strconv.Itoa(port) {
		return false
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" {
		return true
	}
	_, err = netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil
}
