// Package engine runs saved profiles: one forwarder per profile, owned by a
// Manager keyed by profile ID, and the built-in local relay that profiles
// may use before any server exists. The desktop app and `porthole start`
// share it.
//
// The Manager owns each profile's Status. Views (the tray, the settings
// window, the command line) keep no copy: they render a snapshot of it
// whenever OnChange tells them it changed.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"

	"porthole/forwarder"
	"porthole/settings"
)

// SecretSource reads a profile's secrets. settings.Keyring is one; its calls
// may block for up to its timeout, so the Manager calls it off the caller's
// goroutine. A secret the profile says it has and the source cannot give is
// an error, never an empty secret.
type SecretSource interface {
	Load(settings.Profile) (settings.Secrets, error)
}

// Status is one profile's status. The Manager keeps the only copy; views
// render snapshots of it.
type Status struct {
	// State is what the profile's forwarder last reported: its phase, its
	// public URLs when online, the next retry when reconnecting, and the
	// error when failed.
	forwarder.State
	// Running is true from Start until the forwarder has stopped and
	// drained; while it is, Toggle stops the profile. A Stopped or Failed
	// status is never Running.
	Running bool
}

// Config configures a Manager.
type Config struct {
	Secrets    SecretSource
	LocalRelay *LocalRelay // for profiles that use the built-in relay; may be nil
	Logger     *slog.Logger
	// OnChange is called after every change of a profile's status, with
	// the new status. Calls come one at a time, in the order of the
	// changes. It may read statuses and call Stop, but must not call
	// Start, Toggle, Restart, StopWait or Forget (they wait for it), and
	// must not block for long.
	OnChange func(id string, s Status)
}

// Manager starts and stops one forwarder per profile and keeps their
// statuses.
type Manager struct {
	cfg Config

	// emit is held from a change until OnChange has returned, so that
	// changes are delivered one at a time and in order. It is taken before mu.
	emit sync.Mutex

	mu     sync.Mutex
	runs   map[string]*run
	status map[string]Status
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
	return &Manager{cfg: cfg, runs: map[string]*run{}, status: map[string]Status{}}
}

// Status returns a profile's status (stopped if it never ran).
func (m *Manager) Status(id string) Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status[id]
}

// Snapshot returns every profile's status that is not the zero one.
func (m *Manager) Snapshot() map[string]Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.status)
}

// update changes a profile's status under the lock and then tells
// OnChange. change runs with m.mu held and returns false to make no change.
func (m *Manager) update(id string, change func(*Status) bool) {
	m.emit.Lock()
	defer m.emit.Unlock()
	m.mu.Lock()
	s := m.status[id]
	if !change(&s) {
		m.mu.Unlock()
		return
	}
	m.status[id] = s
	m.mu.Unlock()
	if m.cfg.OnChange != nil {
		m.cfg.OnChange(id, s)
	}
}

// Start runs the profile's forwarder in the background. It returns at once
// with the profile connecting; secrets, the local relay and the connection
// are handled on the forwarder's goroutine, and progress arrives through
// OnChange. Starting a running profile does nothing.
func (m *Manager) Start(p settings.Profile) {
	var r *run
	var ctx context.Context
	m.update(p.ID, func(s *Status) bool {
		if m.runs[p.ID] != nil {
			return false
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(context.Background())
		r = &run{cancel: cancel, done: make(chan struct{})}
		m.runs[p.ID] = r
		s.State, s.Running = forwarder.State{Phase: forwarder.Connecting}, true
		return true
	})
	if r == nil {
		return
	}
	go func() {
		defer close(r.done)
		final := m.run(ctx, p, r)
		// The final phase and the end of the run are one change.
		m.update(p.ID, func(s *Status) bool {
			delete(m.runs, p.ID)
			s.State, s.Running = final, false
			return true
		})
	}()
}

// run runs the profile's forwarder until ctx is done or it fails, and
// returns its final state.
func (m *Manager) run(ctx context.Context, p settings.Profile, r *run) forwarder.State {
	f, err := m.forwarder(p, func(st forwarder.State) {
		if st.Phase == forwarder.Stopped || st.Phase == forwarder.Failed {
			return // recorded with the end of the run
		}
		m.update(p.ID, func(s *Status) bool {
			if m.runs[p.ID] != r {
				return false
			}
			s.State = st
			return true
		})
	})
	switch {
	case ctx.Err() != nil:
		return forwarder.State{Phase: forwarder.Stopped}
	case err != nil:
		m.cfg.Logger.Warn("profile cannot start", "profile", p.Name, "err", err)
		return forwarder.State{Phase: forwarder.Failed, Err: err}
	}
	if err := f.Run(ctx); err != nil {
		return forwarder.State{Phase: forwarder.Failed, Err: err}
	}
	return forwarder.State{Phase: forwarder.Stopped}
}

// ErrNoLocalRelay is a profile on the built-in relay where there is none
// (the Manager was made without a LocalRelay).
var ErrNoLocalRelay = errors.New("the built-in relay is not available here")

// forwarder builds the profile's forwarder: the profile checked, its
// secrets from the keyring, the local relay if it uses it.
func (m *Manager) forwarder(p settings.Profile, onState func(forwarder.State)) (*forwarder.Forwarder, error) {
	if bad := p.Validate(); len(bad) > 0 {
		return nil, bad
	}
	var secrets settings.Secrets
	if m.cfg.Secrets != nil {
		var err error
		if secrets, err = m.cfg.Secrets.Load(p); err != nil {
			return nil, err
		}
	}
	var builtin settings.Endpoint
	if p.BuiltinRelay {
		if m.cfg.LocalRelay == nil {
			return nil, ErrNoLocalRelay
		}
		srv, err := m.cfg.LocalRelay.Ensure()
		if err != nil {
			return nil, fmt.Errorf("the built-in relay did not start: %w", err)
		}
		builtin = settings.Endpoint{Addr: srv.AgentAddr(), Fingerprint: srv.Fingerprint()}
	}
	cfg, err := p.Config(secrets, builtin)
	if err != nil {
		return nil, err
	}
	cfg.Logger = m.cfg.Logger.With("profile", p.Name)
	cfg.OnState = onState
	return forwarder.New(cfg)
}

// Stop asks the profile's forwarder to drain and stop, and returns at once.
// The Stopped status arrives through OnChange.
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
	if !m.Status(p.ID).Running {
		return
	}
	m.StopWait(p.ID)
	m.Start(p)
}

// Toggle starts a stopped profile or stops a running one.
func (m *Manager) Toggle(p settings.Profile) {
	if m.Status(p.ID).Running {
		m.Stop(p.ID)
	} else {
		m.Start(p)
	}
}

// Forget stops a deleted profile, waits for it, and drops its status. It
// blocks like StopWait.
func (m *Manager) Forget(id string) {
	m.StopWait(id)
	m.emit.Lock()
	defer m.emit.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.runs[id] == nil {
		delete(m.status, id)
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
