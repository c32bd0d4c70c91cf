package relay

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"porthole/internal/metrics"
	"porthole/wire"
)

// TestTunnelLabelsFollowLiveTunnels: the tunnels beyond the cap share
// "other"; when a tunnel goes, its series go and its label is free for the
// next tunnel.
func TestTunnelLabelsFollowLiveTunnels(t *testing.T) {
	s := &Server{sessions: map[*session]struct{}{}}
	m := newRelayMetrics(s, 2)
	s.metrics = m
	sess := &session{srv: s, bindings: map[uint32]*binding{}}
	s.sessions[sess] = struct{}{}
	one := &binding{sess: sess, id: 1, proto: wire.ProtoHTTP, name: "one"}
	two := &binding{sess: sess, id: 2, proto: wire.ProtoHTTP, name: "two"}
	three := &binding{sess: sess, id: 3, proto: wire.ProtoHTTP, name: "three"}
	port := &binding{sess: sess, id: 4, proto: wire.ProtoTCP, port: 20001}
	for _, b := range []*binding{one, two, three, port} {
		sess.bindings[b.id] = b
	}
	unbind := func(b *binding) { delete(sess.bindings, b.id) }

	for _, c := range []struct {
		b    *binding
		want string
	}{{one, "one"}, {two, "two"}, {three, metrics.Other}, {port, metrics.Other}, {one, "one"}} {
		if got := m.tunnelLabel(c.b); got != c.want {
			t.Errorf("label of %s = %q, want %q", bindingLabel(c.b), got, c.want)
		}
		m.publicConns.WithLabelValues(m.tunnelLabel(c.b), c.b.proto.String()).Inc()
	}
	if n := testutil.CollectAndCount(m.publicConns); n != 4 {
		t.Errorf("%d series, want 4 (one, two, other/http, other/tcp)", n)
	}
	unbind(one)
	m.released(one)
	if n := testutil.CollectAndCount(m.publicConns); n != 3 {
		t.Errorf("%d series after one left, want 3", n)
	}
	if got := m.tunnelLabel(port); got != "tcp:20001" {
		t.Errorf("label after a slot was freed = %q, want tcp:20001", got)
	}
	unbind(three)
	m.released(three) // had no slot: nothing to delete
	if n := testutil.CollectAndCount(m.publicConns); n != 3 {
		t.Errorf("%d series after a tunnel without a label left, want 3", n)
	}

	// Labels whose tunnels are gone without a release are swept when the
	// cap is full, at most once a second.
	unbind(two)
	unbind(port)
	m.lastSweep = time.Time{}
	late := &binding{sess: sess, id: 5, proto: wire.ProtoHTTP, name: "late"}
	sess.bindings[late.id] = late
	if got := m.tunnelLabel(late); got != "late" {
		t.Errorf("label with a full cap of stale labels = %q, want late", got)
	}
	if n := testutil.CollectAndCount(m.publicConns); n != 2 {
		t.Errorf("%d series after the sweep, want 2 (other/http, other/tcp)", n)
	}
	sess.bindings[three.id] = three
	m.tunnelLabel(two) // takes the last slot (two is gone, but unswept)
	if got := m.tunnelLabel(three); got != metrics.Other {
		t.Errorf("a second sweep within the interval gave %q a label", got)
	}
}
