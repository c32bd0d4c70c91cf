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

// TestGuardAgent reads an agent's frames through the guard in chunks of
// every size: the control stream's opening, data (whose body looks like
// frames that break the rules), window updates, ping answers and pings up
// to the burst pass untouched; the first frame that breaks a rule is not
// passed on whole (a part of its header read before may have been), and
// ends the session with its code.
func TestGuardAgent(t *testing.T) {
	fakes := append(yamuxHeader(yamuxTypePing, yamuxFlagSYN, 0, 7), yamuxHeader(yamuxTypeWindowUpdate, yamuxFlagSYN, 3, 0)...)
	allowed := yamuxHeader(yamuxTypeWindowUpdate, yamuxFlagSYN, 1, 0) // the control stream
	for i := range PingBurst {
		allowed = append(allowed, yamuxHeader(yamuxTypeData, 0, 1, uint32(len(fakes)))...)
		allowed = append(allowed, fakes...)
		allowed = append(allowed, yamuxHeader(yamuxTypePing, yamuxFlagSYN, 0, uint32(i))...)
		allowed = append(allowed, yamuxHeader(yamuxTypePing, 2, 0, uint32(i))...) // an answer (ACK)
		allowed = append(allowed, yamuxHeader(yamuxTypeWindowUpdate, 0, 1, 1<<20)...)
	}
	for _, c := range []struct {
		name  string
		frame []byte
		code  Code
	}{
		{"ping beyond the burst", yamuxHeader(yamuxTypePing, yamuxFlagSYN, 0, PingBurst), CodeRateLimited},
		{"second stream by window update", yamuxHeader(yamuxTypeWindowUpdate, yamuxFlagSYN, 3, 0), CodeProtocol},
		{"second stream by data", yamuxHeader(yamuxTypeData, yamuxFlagSYN, 3, 0), CodeProtocol},
	} {
		in := append(append(append([]byte(nil), allowed...), c.frame...), yamuxHeader(yamuxTypeData, 0, 1, 0)...)
		for _, n := range []int{1, 5, 12, 13, 100, 4096} {
			var codes []Code
			g := GuardAgent(&chunkConn{r: bytes.NewReader(in), n: n}, func(e *Error) { codes = append(codes, e.Code) })
			out, err := io.ReadAll(g)
			if err != nil {
				t.Fatalf("%s, chunks of %d: %v", c.name, n, err)
			}
			if len(codes) != 1 || codes[0] != c.code {
				t.Errorf("%s, chunks of %d: broken with %v, want %s once", c.name, n, codes, c.code)
			}
			if len(out) < len(allowed) || len(out) >= len(allowed)+yamuxHeaderSize || !bytes.Equal(out, in[:len(out)]) {
				t.Errorf("%s, chunks of %d: %d bytes passed, want the first %d and less than a header more",
					c.name, n, len(out), len(allowed))
			}
		}
	}
}
