package engine

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"porthole/relay"
)

// Preferred loopback addresses of the built-in relay, so that public URLs
// stay the same from one run to the next. If they are taken, any free port
// is used.
const (
	LocalHTTPAddr  = "127.0.0.1:7780"
	LocalHTTPSAddr = "127.0.0.1:7743"
)

// LocalRelay is the built-in relay: started in-process on loopback the
// first time a profile needs it, with hostnames under localhost.
type LocalRelay struct {
	StateDir  string
	HTTPAddr  string // LocalHTTPAddr if empty
	HTTPSAddr string // LocalHTTPSAddr if empty
	Logger    *slog.Logger

	mu  sync.Mutex
	srv *relay.Server
}

// Ensure starts the relay if it is not running, and returns it.
func (l *LocalRelay) Ensure() (*relay.Server, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.srv != nil {
		return l.srv, nil
	}
	cfg := relay.DefaultConfig()
	cfg.AgentAddr = "127.0.0.1:0"
	cfg.HTTPAddr = orDefault(l.HTTPAddr, LocalHTTPAddr)
	cfg.HTTPSAddr = orDefault(l.HTTPSAddr, LocalHTTPSAddr)
	cfg.TCPPorts = relay.PortRange{}
	cfg.StateDir = l.StateDir
	cfg.NameGrace = 5 * time.Second
	cfg.NoAuth = true // every listener is on loopback
	cfg.Logger = l.Logger
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Logger = cfg.Logger.With("relay", "built-in")
	srv, err := start(cfg)
	if err != nil {
		// The preferred ports are taken: fall back to any.
		cfg.HTTPAddr, cfg.HTTPSAddr = "127.0.0.1:0", "127.0.0.1:0"
		if srv, err = start(cfg); err != nil {
			return nil, err
		}
	}
	l.srv = srv
	return srv, nil
}

func start(cfg relay.Config) (*relay.Server, error) {
	srv, err := relay.New(cfg)
	if err != nil {
		return nil, err
	}
	return srv, srv.Start()
}

// Close stops the relay if it runs.
func (l *LocalRelay) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l.srv.Shutdown(ctx)
		l.srv = nil
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
