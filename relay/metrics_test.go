package relay

import (
	"testing"

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
	sess := &session{srv: s}
	one := &binding{sess: sess, proto: wire.ProtoHTTP, name: "one"}
	two := &binding{sess: sess, proto: wire.ProtoHTTP, name: "two"}
	three := &binding{sess: sess, proto: wire.ProtoHTTP, name: "three"}
	port := &binding{sess: sess, proto: wire.ProtoTCP, port: 20001}

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
	m.released(one)
	if n := testutil.CollectAndCount(m.publicConns); n != 3 {
		t.Errorf("%d series after one left, want 3", n)
	}
	if got := m.tunnelLabel(port); got != "tcp:20001" {
		t.Errorf("label after a slot was freed = %q, want tcp:20001", got)
	}
	m.released(three) // had no slot: nothing to delete
	if n := testutil.CollectAndCount(m.publicConns); n != 3 {
		t.Errorf("%d series after a tunnel without a label left, want 3", n)
	}
}
