package wire

import (
	"encoding/binary"
	"io"
	"net"
	"time"
)

// Pings a peer may ask to have answered: PingRate a second, in bursts of up
// to PingBurst. Keepalives need one every KeepAliveInterval.
const (
	PingRate  = 10
	PingBurst = 100
)

// yamux frame types and flags the guard reads.
const (
	yamuxTypeWindowUpdate = 1
	yamuxTypePing         = 2
	yamuxFlagSYN          = 1
)

// GuardAgent returns c, the relay's end of an agent's yamux session, with
// the agent's frames checked against two rules that yamux cannot enforce
// itself. The agent opens one stream, its control stream: yamux would queue
// the streams it opens beyond, with what was written on them, until
// accepted, and a relay that lets yamux refuse them by a short accept
// backlog can itself open only one stream per round trip (yamux sizes both
// queues alike). And it asks for pings at most PingRate a second: yamux
// answers each ping on a goroutine of its own, which waits for the send
// queue for up to the connection write timeout, so a flood of pings made a
// relay start a hundred thousand goroutines and take half a gigabyte within
// seconds. On the first frame that breaks a rule, the guard calls broken
// once with the error to end the session with, and passes nothing more on:
// yamux reads no further frame, and the bytes that still arrive are
// dropped until the connection is closed.
func GuardAgent(c net.Conn, broken func(*Error)) net.Conn {
	return &agentGuard{Conn: c, broken: broken, tokens: PingBurst, last: time.Now()}
}

type agentGuard struct {
	net.Conn
	broken func(*Error)
	frames frames

	opened  bool // the control stream
	tokens  float64
	last    time.Time
	tripped bool
}

// Read is called by the session's one reading goroutine.
func (g *agentGuard) Read(p []byte) (int, error) {
	if g.tripped {
		_, err := io.Copy(io.Discard, g.Conn)
		if err == nil {
			err = io.EOF
		}
		return 0, err
	}
	n, err := g.Conn.Read(p)
	cut := -1 // where the first frame that broke a rule began
	g.frames.scan(p[:n], func(h []byte, start int) bool {
		if e := g.check(h); e != nil {
			g.tripped = true
			g.broken(e)
			cut = max(start, 0)
			return false
		}
		return true
	})
	if cut >= 0 {
		return cut, nil
	}
	return n, err
}

// check returns the error a frame header breaks the rules with, or nil.
func (g *agentGuard) check(h []byte) *Error {
	syn := binary.BigEndian.Uint16(h[2:])&yamuxFlagSYN != 0
	switch typ := h[1]; {
	case syn && (typ == yamuxTypeData || typ == yamuxTypeWindowUpdate):
		if g.opened {
			return Errorf(CodeProtocol, "agents may not open streams besides the control stream")
		}
		g.opened = true
	case syn && typ == yamuxTypePing && !g.takePing():
		return Errorf(CodeRateLimited, "more than %d pings a second", PingRate)
	}
	return nil
}

// takePing reports whether a ping may be answered, and counts it.
func (g *agentGuard) takePing() bool {
	now := time.Now()
	g.tokens = min(PingBurst, g.tokens+now.Sub(g.last).Seconds()*PingRate)
	g.last = now
	if g.tokens < 1 {
		return false
	}
	g.tokens--
	return true
}
