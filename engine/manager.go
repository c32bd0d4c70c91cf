// Package engine runs saved profiles: one forwarder per profile, owned by a
// Manager keyed by profile ID, and the built-in local relay that profiles
// may use before any server exists. The desktop app and `porthole start`
// share it.
package engine

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"porthole/forwarder"
	"porthole/settings"
)

// SecretSource reads a profile's secrets. settings.Keyring is one; its calls
// may block for up to its timeout, so the Manager calls it off the caller's
// goroutine.
type SecretSource interface {
	Load(settings.Profile) (settings.Secrets, error)
}

// Config configures a Manager.
type Config struct {
	Secrets    SecretSource
	LocalRelay *LocalRelay // for profiles that use the built-in relay; may be nil
	Logger     *slog.Logger
	// OnChange is called after every state change of any profile, from the
	// goroutine that made it. It must not block for long.
	OnChange func(id string, s forwarder.State)
}

// Manager starts and stops one forwarder per profile.
type Manager struct {
	cfg Config

	mu     sync.Mutex
	runs   map[string]*run
	states map[string]forwarder.State
}

type run struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a Manager.
func New(cfg Config) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{cfg: cfg, runs: map[string]*run{}, states: map[string]forwarder.State{}}
}

// State returns a profile's current state (Stopped if it never ran).
func (m *Manager) State(id string) forwarder.State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.states[id]
}

// Running reports whether the profile's forwarder is running (connecting,
// online or reconnecting).
func (m *Manager) Running(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.runs[id] != nil
}

func (m *Manager) set(id string, s forwarder.State) {
	m.mu.Lock()
	m.states[id] = s
	m.mu.Unlock()
	if m.cfg.OnChange != nil {
		m.cfg.OnChange(id, s)
	}
}

// Start runs the profile's forwarder in the background. It returns at once;
// secrets, the local relay and the connection are handled on the
// forwarder's goroutine, and progress arrives through OnChange. Starting a
// running profile does nothing.
func (m *Manager) Start(p settings.Profile) {
	m.mu.Lock()
	if m.runs[p.ID] != nil {
		m.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{cancel: cancel, done: make(chan struct{})}
	m.runs[p.ID] = r
	m.mu.Unlock()

	go func() {
		defer close(r.done)
		defer func() {
			m.mu.Lock()
			if m.runs[p.ID] == r {
				delete(m.runs, p.ID)
			}
			m.mu.Unlock()
		}()
		m.set(p.ID, forwarder.State{Phase: forwarder.Connecting})
		f, err := m.forwarder(p)
		if err != nil {
			m.set(p.ID, forwarder.State{Phase: forwarder.Failed, Err: err})
			return
		}
		f.Run(ctx) // its final state (stopped or failed) arrives through OnState
	}()
}

// forwarder builds the profile's forwarder: secrets from the keyring, the
// local relay if the profile uses it.
func (m *Manager) forwarder(p settings.Profile) (*forwarder.Forwarder, error) {
	if bad := p.Validate(); len(bad) > 0 {
		return nil, fmt.Errorf("profile %q is invalid: %v", p.Name, bad)
	}
	var secrets settings.Secrets
	if m.cfg.Secrets != nil {
		var err error
		if secrets, err = m.cfg.Secrets.Load(p); err != nil {
			return nil, err
		}
	}
	cfg := forwarder.DefaultConfig()
	cfg.Logger = m.cfg.Logger.With("profile", p.Name)
	cfg.Tunnels = []forwarder.Tunnel{p.Tunnel(secrets)}
	cfg.Token = secrets.Token
	if p.BuiltinRelay {
		if m.cfg.LocalRelay == nil {
			return nil, fmt.Errorf("the built-in relay is not available here")
		}
		srv, err := m.cfg.LocalRelay.Ensure()
		if err != nil {
			return nil, fmt.Errorf("built-in relay: %w", err)
		}
		cfg.RelayAddr, cfg.RelayFingerprint = srv.AgentAddr(), srv.Fingerprint()
	} else {
		cfg.RelayAddr, cfg.RelayCAFile, cfg.RelayFingerprint = p.RelayAddr, p.RelayCAFile, p.RelayFingerprint
	}
	id := p.ID
	cfg.OnState = func(s forwarder.State) { m.set(id, s) }
	return forwarder.New(cfg)
}

// Stop asks the profile's forwarder to drain and stop, and returns at once.
// The Stopped state arrives through OnChange.
func (m *Manager) Stop(id string) {
	m.mu.Lock()
	r := m.runs[id]
	m.mu.Unlock()
	if r != nil {
		r.cancel()
	}
}

// StopWait stops the profile's forwarder and waits until it has drained.
// It blocks: call it off the UI goroutine.
func (m *Manager) StopWait(id string) {
	m.mu.Lock()
	r := m.runs[id]
	m.mu.Unlock()
	if r != nil {
		r.cancel()
		<-r.done
	}
}

// Restart applies a changed profile: if it runs, it is stopped, drained and
// started again with the new settings. It blocks like StopWait.
func (m *Manager) Restart(p settings.Profile) {
	if !m.Running(p.ID) {
		return
	}
	m.StopWait(p.ID)
	m.Start(p)
}

// Toggle starts a stopped profile or stops a running one.
func (m *Manager) Toggle(p settings.Profile) {
	if m.Running(p.ID) {
		m.Stop(p.ID)
	} else {
		m.Start(p)
	}
}

// Shutdown stops every forwarder and waits for them, until ctx is done.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	runs := make([]*run, 0, len(m.runs))
	for _, r := range m.runs {
		runs = append(runs, r)
		r.cancel()
	}
	m.mu.Unlock()
	for _, r := range runs {
		select {
		case <-r.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
