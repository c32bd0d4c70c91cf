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
	"slices"
	"sync"

	"porthole/forwarder"
	"porthole/inspect"
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
	// Inspect, if set, keeps every profile's HTTP exchanges and counters
	// for the inspector and the agent API (see API); with CountOnly, only
	// the counters.
	Inspect   *inspect.Store
	CountOnly bool
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

	mu       sync.Mutex
	runs     map[string]*run
	status   map[string]Status
	watchers map[string][]chan Status // see watch
	closed   bool                     // Shutdown was called: nothing starts any more
}

type run struct {
	cancel context.CancelFunc
	done   chan struct{}
	f      *forwarder.Forwarder // once built; guarded by Manager.mu
}

// New returns a Manager.
func New(cfg Config) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{cfg: cfg, runs: map[string]*run{}, status: map[string]Status{}, watchers: map[string][]chan Status{}}
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
	for _, w := range m.watchers[id] {
		select {
		case w <- s:
		default: // the watcher has not taken the last one yet; it reads Status
		}
	}
	m.mu.Unlock()
	if m.cfg.OnChange != nil {
		m.cfg.OnChange(id, s)
	}
}

// watch returns a channel that is told of the profile's status changes,
// and a function to stop watching.
func (m *Manager) watch(id string) (<-chan Status, func()) {
	ch := make(chan Status, 1)
	m.mu.Lock()
	m.watchers[id] = append(m.watchers[id], ch)
	m.mu.Unlock()
	return ch, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.watchers[id] = slices.DeleteFunc(m.watchers[id], func(c chan Status) bool { return c == ch })
		if len(m.watchers[id]) == 0 {
			delete(m.watchers, id)
		}
	}
}

// Metrics returns the counters of a running profile's tunnel, or nil when
// it does not run or the Manager inspects nothing.
func (m *Manager) Metrics(id string) *inspect.Metrics {
	m.mu.Lock()
	r := m.runs[id]
	m.mu.Unlock()
	if r == nil {
		return nil
	}
	f := m.forwarderOf(r)
	if f == nil {
		return nil
	}
	for _, t := range f.Tunnels() {
		if t.Tap != nil {
			return t.Tap.Metrics()
		}
	}
	return nil
}

func (m *Manager) forwarderOf(r *run) *forwarder.Forwarder {
	m.mu.Lock()
	defer m.mu.Unlock()
	return r.f
}

// Start runs the profile's forwarder in the background. It returns at once
// with the profile connecting; secrets, the local relay and the connection
// are handled on the forwarder's goroutine, and progress arrives through
// OnChange. Starting a running profile does nothing.
func (m *Manager) Start(p settings.Profile) {
	m.start(p.ID, p.Name, func(onState func(forwarder.State)) (*forwarder.Forwarder, error) {
		return m.forwarder(p, onState)
	})
}

// start runs the forwarder that build makes under id, unless one runs.
func (m *Manager) start(id, name string, build func(onState func(forwarder.State)) (*forwarder.Forwarder, error)) {
	var r *run
	var ctx context.Context
	m.update(id, func(s *Status) bool {
		if m.closed || m.runs[id] != nil {
			return false
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(context.Background())
		r = &run{cancel: cancel, done: make(chan struct{})}
		m.runs[id] = r
		s.State, s.Running = forwarder.State{Phase: forwarder.Connecting}, true
		return true
	})
	if r == nil {
		return
	}
	go func() {
		defer close(r.done)
		final := m.run(ctx, id, name, r, build)
		// The final phase and the end of the run are one change.
		m.update(id, func(s *Status) bool {
			delete(m.runs, id)
			s.State, s.Running = final, false
			return true
		})
	}()
}

// run runs a forwarder until ctx is done or it fails, and returns its
// final state.
func (m *Manager) run(ctx context.Context, id, name string, r *run, build func(func(forwarder.State)) (*forwarder.Forwarder, error)) forwarder.State {
	f, err := build(func(st forwarder.State) {
		if st.Phase == forwarder.Stopped || st.Phase == forwarder.Failed {
			return // recorded with the end of the run
		}
		m.update(id, func(s *Status) bool {
			if m.runs[id] != r {
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
		m.cfg.Logger.Warn("profile cannot start", "profile", name, "err", err)
		return forwarder.State{Phase: forwarder.Failed, Err: err}
	}
	m.mu.Lock()
	r.f = f
	m.mu.Unlock()
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
	cfg.Inspect = m.cfg.Inspect
	for i := range cfg.Tunnels {
		cfg.Tunnels[i].NoInspect = m.cfg.CountOnly
	}
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
// After it, Start does nothing: a click or an API call that arrives while
// the app quits cannot leave a forwarder running behind it.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
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
