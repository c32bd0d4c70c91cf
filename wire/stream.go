package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// streamMagic starts every stream header; it catches a stream that is not
// carrying what its opener thinks it is.
const streamMagic = 0xB7

// StreamHeaderMax is the largest encoded StreamHeader.
const StreamHeaderMax = 1 + 1 + 4 + 1 + MaxClientAddr

// StreamHeader is the first thing on every stream the relay opens.
//
// Layout: magic (1) | proto (1) | tunnel id (4, big endian) |
// client address length (1) | client address (n).
type StreamHeader struct {
	Proto      Proto
	TunnelID   uint32
	ClientAddr string // "ip:port" of the public client; empty for pooled HTTP streams
}

// ErrBadStreamHeader is returned for a stream that does not start with a header.
var ErrBadStreamHeader = errors.New("wire: bad stream header")

// AppendStreamHeader appends the encoded header to b; it allocates only if b
// is too small.
func AppendStreamHeader(b []byte, h StreamHeader) ([]byte, error) {
	if len(h.ClientAddr) > MaxClientAddr {
		return b, fmt.Errorf("wire: client address too long (%d bytes)", len(h.ClientAddr))
	}
	b = append(b, streamMagic, byte(h.Proto))
	b = binary.BigEndian.AppendUint32(b, h.TunnelID)
	b = append(b, byte(len(h.ClientAddr)))
	return append(b, h.ClientAddr...), nil
}

// ReadStreamHeader reads one header from r.
func ReadStreamHeader(r io.Reader) (StreamHeader, error) {
	var fixed [7]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return StreamHeader{}, err
	}
	if fixed[0] != streamMagic {
		return StreamHeader{}, ErrBadStreamHeader
	}
	h := StreamHeader{Proto: Proto(fixed[1]), TunnelID: binary.BigEndian.Uint32(fixed[2:6])}
	if n := int(fixed[6]); n > 0 {
		addr := make([]byte, n)
		if _, err := io.ReadFull(r, addr); err != nil {
			return StreamHeader{}, err
		}
		h.ClientAddr = string(addr)
	}
	return h, nil
}
