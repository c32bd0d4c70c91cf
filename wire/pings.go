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
	yamuxTypePing = 2
	yamuxFlagSYN  = 1
)

// GuardPings returns c, a yamux session's connection, with its incoming
// pings counted. yamux answers each ping on a goroutine of its own, which
// waits for the send queue for up to the connection write timeout, so a
// peer that sends pings faster than the answers can leave makes the
// receiver start goroutines without bound: one connection's flood took a
// relay to a hundred thousand goroutines and half a gigabyte within
// seconds. Beyond PingRate, the guard calls flood once and
// passes nothing more on: yamux reads no further frame, and the bytes that
// still arrive are dropped until the connection is closed.
func GuardPings(c net.Conn, flood func()) net.Conn {
	return &pingGuard{Conn: c, flood: flood, tokens: PingBurst, last: time.Now()}
}

type pingGuard struct {
	net.Conn
	flood func()

	hdr  [yamuxHeaderSize]byte // the frame header being read
	got  int                   // bytes of hdr read so far
	body uint32                // bytes of the current data frame's body still to come

	tokens  float64
	last    time.Time
	tripped bool
}

// Read is called by the session's one reading goroutine.
func (g *pingGuard) Read(p []byte) (int, error) {
	if g.tripped {
		_, err := io.Copy(io.Discard, g.Conn)
		if err == nil {
			err = io.EOF
		}
		return 0, err
	}
	n, err := g.Conn.Read(p)
	for i := 0; i < n; {
		if g.body > 0 {
			k := min(uint32(n-i), g.body)
			g.body -= k
			i += int(k)
			continue
		}
		start := i - g.got // where the header began (before p, if negative)
		k := copy(g.hdr[g.got:], p[i:n])
		g.got += k
		i += k
		if g.got < yamuxHeaderSize {
			break
		}
		g.got = 0
		switch g.hdr[1] {
		case yamuxTypeData:
			g.body = binary.BigEndian.Uint32(g.hdr[8:])
		case yamuxTypePing:
			if binary.BigEndian.Uint16(g.hdr[2:])&yamuxFlagSYN != 0 && !g.take() {
				g.tripped = true
				g.flood()
				return max(start, 0), nil
			}
		}
	}
	return n, err
}

// take reports whether a ping may be answered, and counts it.
func (g *pingGuard) take() bool {
	now := time.Now()
	g.tokens = min(PingBurst, g.tokens+now.Sub(g.last).Seconds()*PingRate)
	g.last = now
	if g.tokens < 1 {
		return false
	}
	g.tokens--
	return true
}
