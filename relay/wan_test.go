package relay_test

import (
	"net"
	"testing"
	"time"

	"porthole/wire"
)

// TestPublicConnectionsStartTogether: the relay opens a stream for each
// public connection without waiting for the agent to acknowledge the ones
// before it. Over a long path, connections that arrive together (a
// browser's first six, say) then start together instead of one round trip
// apart.
func TestPublicConnectionsStartTogether(t *testing.T) {
	srv := startRelay(t, nil)
	a := authenticate(t, srv, "127.0.0.1")
	m := a.bind(t, wire.Bind{TunnelID: 1, Proto: wire.ProtoTCP})
	if m.Bound == nil {
		t.Fatalf("bind: %+v", m.Error)
	}
	_, port, _ := net.SplitHostPort(m.Bound.URLs[0][len("tcp://"):])
	// The agent acknowledges no stream (yamux acknowledges one when it is
	// accepted), as if every acknowledgement were still on its way.
	const n = 64
	for range n {
		c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	deadline := time.Now().Add(30 * time.Second)
	for a.ys.NumStreams() < n+1 { // and the control stream
		if time.Now().After(deadline) {
			t.Fatalf("the relay opened %d streams for %d public connections before any was acknowledged", a.ys.NumStreams()-1, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
