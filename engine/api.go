package engine

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"porthole/forwarder"
	"porthole/inspect"
	"porthole/settings"
)

// adhoc prefixes the run ids of tunnels started over the API that are not
// saved profiles.
const adhoc = "adhoc:"

// AdHocName returns the name of an ad-hoc tunnel from its run id, and
// false for the id of a saved profile.
func AdHocName(id string) (string, bool) { return strings.CutPrefix(id, adhoc) }

// API returns the Manager as the agent API sees it, over the saved
// profiles that profiles lists. Its tunnels are those of the running
// profiles, named by the profile, and of ad-hoc tunnels. POST /api/tunnels
// with a saved profile's name and no addr starts that profile; with an addr
// it starts an ad-hoc tunnel on the built-in relay. DELETE stops either.
func (m *Manager) API(profiles func() []settings.Profile) inspect.Agent {
	return &agentAPI{m: m, profiles: profiles}
}

type agentAPI struct {
	m        *Manager
	profiles func() []settings.Profile
}

func (a *agentAPI) Status() string {
	state := "stopped"
	for _, s := range a.m.Snapshot() {
		switch {
		case s.Phase == forwarder.Online:
			return "online"
		case s.Running:
			state = "connecting"
		}
	}
	return state
}

// forwarders returns the running forwarders: the profiles' in their saved
// order, then the ad-hoc ones by name.
func (a *agentAPI) forwarders() []*forwarder.Forwarder {
	a.m.mu.Lock()
	defer a.m.mu.Unlock()
	var out []*forwarder.Forwarder
	for _, p := range a.profiles() {
		if r := a.m.runs[p.ID]; r != nil && r.f != nil {
			out = append(out, r.f)
		}
	}
	var ids []string
	for id, r := range a.m.runs {
		if strings.HasPrefix(id, adhoc) && r.f != nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		out = append(out, a.m.runs[id].f)
	}
	return out
}

func (a *agentAPI) Tunnels() []inspect.Tunnel {
	var out []inspect.Tunnel
	for _, f := range a.forwarders() {
		for _, t := range f.Tunnels() {
			out = append(out, forwarder.APITunnel(t))
		}
	}
	return out
}

func (a *agentAPI) profile(name string) (settings.Profile, bool) {
	for _, p := range a.profiles() {
		if p.Name == name {
			return p, true
		}
	}
	return settings.Profile{}, false
}

func (a *agentAPI) StartTunnel(ctx context.Context, req inspect.TunnelRequest) (inspect.Tunnel, error) {
	if req.Addr == "" {
		p, ok := a.profile(req.Name)
		if !ok {
			return inspect.Tunnel{}, fmt.Errorf("%w: no saved profile is named %q (give an addr for a new tunnel)", inspect.ErrNotFound, req.Name)
		}
		a.m.Start(p)
		return a.wait(ctx, p.ID)
	}
	t, err := forwarder.TunnelFromAPI(req)
	if err != nil {
		return inspect.Tunnel{}, err
	}
	if req.Name == "" {
		return inspect.Tunnel{}, fmt.Errorf("%w: a name is required", inspect.ErrInvalid)
	}
	if _, ok := a.profile(req.Name); ok {
		return inspect.Tunnel{}, fmt.Errorf("%w: a saved profile is named %q", inspect.ErrExists, req.Name)
	}
	id := adhoc + req.Name
	if a.m.Status(id).Running {
		return inspect.Tunnel{}, fmt.Errorf("%w: %q", inspect.ErrExists, req.Name)
	}
	local := a.m.cfg.LocalRelay
	if local == nil {
		return inspect.Tunnel{}, fmt.Errorf("%w: %w", inspect.ErrUnavailable, ErrNoLocalRelay)
	}
	a.m.start(id, req.Name, func(onState func(forwarder.State)) (*forwarder.Forwarder, error) {
		srv, err := local.Ensure()
		if err != nil {
			return nil, fmt.Errorf("the built-in relay did not start: %w", err)
		}
		cfg := forwarder.DefaultConfig()
		cfg.RelayAddr, cfg.RelayFingerprint = srv.AgentAddr(), srv.Fingerprint()
		t.NoInspect = t.NoInspect || a.m.cfg.CountOnly
		cfg.Tunnels = []forwarder.Tunnel{t}
		cfg.Inspect = a.m.cfg.Inspect
		cfg.Logger = a.m.cfg.Logger.With("tunnel", req.Name)
		cfg.OnState = onState
		return forwarder.New(cfg)
	})
	return a.wait(ctx, id)
}

// wait returns the tunnel of the run id once it is online, or why it is not.
func (a *agentAPI) wait(ctx context.Context, id string) (inspect.Tunnel, error) {
	changed, stop := a.m.watch(id)
	defer stop()
	for {
		s := a.m.Status(id)
		switch {
		case s.Phase == forwarder.Online:
			a.m.mu.Lock()
			r := a.m.runs[id]
			a.m.mu.Unlock()
			if f := a.m.forwarderOf(r); r != nil && f != nil {
				if ts := f.Tunnels(); len(ts) > 0 {
					return forwarder.APITunnel(ts[0]), nil
				}
			}
		case !s.Running && s.Err != nil:
			return inspect.Tunnel{}, fmt.Errorf("%w: %w", inspect.ErrStartFailed, s.Err)
		case !s.Running:
			return inspect.Tunnel{}, fmt.Errorf("%w: it stopped", inspect.ErrStartFailed)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return inspect.Tunnel{}, fmt.Errorf("%w: %w", inspect.ErrStartFailed, ctx.Err())
		}
	}
}

func (a *agentAPI) StopTunnel(ctx context.Context, name string) error {
	id := adhoc + name
	if p, ok := a.profile(name); ok {
		id = p.ID
	}
	if !a.m.Status(id).Running {
		return fmt.Errorf("%w: %q is not running", inspect.ErrNotFound, name)
	}
	a.m.StopWait(id)
	return nil
}

func (a *agentAPI) Replay(tunnel string, req *http.Request) error {
	for _, f := range a.forwarders() {
		for _, t := range f.Tunnels() {
			if t.Label == tunnel {
				return forwarder.APIError(f.Replay(tunnel, req))
			}
		}
	}
	return fmt.Errorf("%w: %q is not running", inspect.ErrNotFound, tunnel)
}
