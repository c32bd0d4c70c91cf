package wire

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
)

// chunkConn reads from r at most n bytes at a time.
type chunkConn struct {
	net.Conn
	r io.Reader
	n int
}

func (c *chunkConn) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

func yamuxHeader(typ uint8, flags uint16, id, length uint32) []byte {
	h := []byte{0, typ}
	h = binary.BigEndian.AppendUint16(h, flags)
	h = binary.BigEndian.AppendUint32(h, id)
	return binary.BigEndian.AppendUint32(h, length)
}

// TestGuardPings reads frames through the guard in chunks of every size:
// data frames (whose bodies look like pings), window updates and ping
// answers pass untouched, and the ping beyond the burst is not passed on
// whole (a part of its header read before may have been).
func TestGuardPings(t *testing.T) {
	var in []byte
	fakePing := yamuxHeader(yamuxTypePing, yamuxFlagSYN, 0, 7)
	for i := range PingBurst + 1 {
		if i == PingBurst {
			// Frames that are not pings asked for do not count.
			in = append(in, yamuxHeader(yamuxTypePing, 2, 0, 1)...) // an answer (ACK)
			in = append(in, yamuxHeader(1, 0, 3, 1<<20)...)         // a window update
		}
		in = append(in, yamuxHeader(yamuxTypeData, 0, 3, uint32(2*len(fakePing)))...)
		in = append(in, fakePing...)
		in = append(in, fakePing...)
		if i == PingBurst {
			break
		}
		in = append(in, yamuxHeader(yamuxTypePing, yamuxFlagSYN, 0, uint32(i))...)
	}
	allowed := len(in)
	in = append(in, yamuxHeader(yamuxTypePing, yamuxFlagSYN, 0, PingBurst)...)
	in = append(in, yamuxHeader(yamuxTypeData, 0, 3, 0)...)
	for _, n := range []int{1, 5, 12, 13, 100, 4096} {
		floods := 0
		g := GuardPings(&chunkConn{r: bytes.NewReader(in), n: n}, func() { floods++ })
		out, err := io.ReadAll(g)
		if err != nil {
			t.Fatalf("chunks of %d: %v", n, err)
		}
		if floods != 1 || len(out) < allowed || len(out) >= allowed+yamuxHeaderSize || !bytes.Equal(out, in[:len(out)]) {
			t.Errorf("chunks of %d: %d floods, %d bytes passed, want the first %d and less than a header more",
				n, floods, len(out), allowed)
		}
	}
}
