package forwarder

import (
	"context"
	"errors"
	"fmt"

	"porthole/inspect"
	"porthole/wire"
)

// Errors of AddTunnel and RemoveTunnel.
var (
	ErrTunnelNotFound = errors.New("no tunnel with this name")
	ErrTunnelExists   = errors.New("a tunnel with this name already exists")
	ErrOffline        = errors.New("the agent is not connected to its relay")
	ErrInvalidTunnel  = errors.New("invalid tunnel")
)

// TunnelInfo describes one of the forwarder's tunnels.
type TunnelInfo struct {
	Label    string
	Proto    wire.Proto
	Upstream string       // the normalized upstream
	URLs     []string     // its public addresses; empty until bound
	Tunnel   Tunnel       // as configured
	Tap      *inspect.Tap // its metrics and captures; nil without Config.Inspect
}

// Tunnels lists the forwarder's tunnels in the order they were added.
func (f *Forwarder) Tunnels() []TunnelInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]TunnelInfo, 0, len(f.tunnels))
	for _, t := range f.tunnels {
		out = append(out, t.info())
	}
	return out
}

// info describes t; called with f.mu held (t.bound changes under it).
func (t *tunnel) info() TunnelInfo {
	return TunnelInfo{Label: t.Label, Proto: t.Proto, Upstream: t.upstream.String(),
		URLs: append([]string(nil), t.bound.URLs...), Tunnel: t.Tunnel, Tap: t.tap}
}

// AddTunnel starts another tunnel on the live relay session and returns it
// once the relay has bound it. It fails with ErrOffline while the forwarder
// is not online, ErrTunnelExists for a label in use, ErrInvalidTunnel, or
// the relay's coded refusal (*wire.Error). A tunnel added here is bound
// again after a reconnect, like the configured ones.
func (f *Forwarder) AddTunnel(ctx context.Context, t Tunnel) (TunnelInfo, error) {
	f.mu.Lock()
	f.nextID++
	id := f.nextID
	f.mu.Unlock()
	tn, ferr := prepareTunnel(t, &f.cfg, id)
	if ferr != nil {
		return TunnelInfo{}, fmt.Errorf("%w: %w", ErrInvalidTunnel, ferr)
	}
	f.mu.Lock()
	sess := f.live
	switch {
	case sess == nil:
		f.mu.Unlock()
		return TunnelInfo{}, ErrOffline
	case f.labelTaken(tn.Label):
		f.mu.Unlock()
		return TunnelInfo{}, fmt.Errorf("%w: %q", ErrTunnelExists, tn.Label)
	}
	// Streams may arrive as soon as the relay has bound the tunnel, before
	// its reply is read: be ready for them first.
	f.byID[tn.id] = tn
	if tn.http != nil {
		sess.mu.Lock()
		sess.servers[tn.id] = tn.http.newServer(sess)
		sess.mu.Unlock()
	}
	f.mu.Unlock()

	m, err := sess.ctrl.bind(ctx, tn.bindRequest())
	if err == nil {
		err = f.bound(tn, m)
	}
	if err != nil {
		if m == nil {
			// No reply was read: the relay may still bind it; release it
			// without waiting (the reply is dropped).
			sess.ctrl.unbind(canceled, tn.id)
		}
		f.forget(sess, tn)
		return TunnelInfo{}, err
	}
	f.mu.Lock()
	f.tunnels = append(f.tunnels, tn)
	info := tn.info()
	st := State{Phase: Online, Forwarding: f.forwardings()}
	online := f.live == sess
	f.mu.Unlock()
	f.log.Info("tunnel added", "tunnel", tn.Label, "urls", info.URLs)
	if online {
		f.setState(st)
	}
	return info, nil
}

// RemoveTunnel stops the tunnel with the label: the relay releases its
// public address, and its in-flight requests get up to DrainTimeout to
// finish. It returns ErrTunnelNotFound for an unknown label.
func (f *Forwarder) RemoveTunnel(label string) error {
	f.mu.Lock()
	var tn *tunnel
	for i, t := range f.tunnels {
		if t.Label == label {
			tn = t
			f.tunnels = append(f.tunnels[:i:i], f.tunnels[i+1:]...)
			break
		}
	}
	if tn == nil {
		f.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrTunnelNotFound, label)
	}
	sess := f.live
	st := State{Phase: Online, Forwarding: f.forwardings()}
	f.mu.Unlock()
	if sess != nil {
		// Once the relay answers, no new connection reaches the tunnel.
		ctx, cancel := context.WithTimeout(context.Background(), f.cfg.DialTimeout)
		if err := sess.ctrl.unbind(ctx, tn.id); err != nil {
			f.log.Debug("unbind", "tunnel", label, "err", err)
		}
		cancel()
	}
	f.forget(sess, tn)
	f.log.Info("tunnel removed", "tunnel", label)
	if sess != nil {
		f.setState(st)
	}
	return nil
}

// canceled is a done context, for requests whose reply nobody waits for.
var canceled = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// forget stops routing streams to tn and drains its server in sess.
func (f *Forwarder) forget(sess *session, tn *tunnel) {
	f.mu.Lock()
	delete(f.byID, tn.id)
	f.mu.Unlock()
	if sess == nil {
		return
	}
	sess.mu.Lock()
	ts := sess.servers[tn.id]
	delete(sess.servers, tn.id)
	sess.mu.Unlock()
	if ts != nil {
		ctx, cancel := context.WithTimeout(context.Background(), f.cfg.DrainTimeout)
		ts.shutdown(ctx)
		cancel()
		ts.close()
	}
}

// labelTaken reports whether a tunnel has the label; called with f.mu held.
func (f *Forwarder) labelTaken(label string) bool {
	if label == "" {
		return false
	}
	for _, t := range f.byID {
		if t.Label == label {
			return true
		}
	}
	return false
}

// defaultLabel names a tunnel that was given no label: by its subdomain if
// it asked for one, else by its protocol and id.
func defaultLabel(t *tunnel) string {
	if t.Name != "" {
		return t.Name
	}
	if t.Hostname != "" {
		return t.Hostname
	}
	return fmt.Sprintf("%s-%d", t.Proto, t.id)
}
