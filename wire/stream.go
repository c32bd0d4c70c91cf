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
const StreamHeaderMax = 1 + 1 + 1 + 4 + 1 + MaxClientAddr

// Stream flags.
const (
	// FlagTLS marks a public connection that arrived over TLS, terminated by
	// the relay: an HTTP stream then carries what an HTTPS client sent
	// (HTTP/1.1, or HTTP/2 if the client negotiated h2).
	FlagTLS uint8 = 1 << 0
)

// StreamHeader is the first thing on every stream the relay opens: one
// stream per public connection.
//
// Layout: magic (1) | proto (1) | flags (1) | tunnel id (4, big endian) |
// client address length (1) | client address (n).
type StreamHeader struct {
	Proto      Proto
	Flags      uint8
	TunnelID   uint32
	ClientAddr string // "ip:port" of the public client
}

// ErrBadStreamHeader is returned for a stream that does not start with a header.
var ErrBadStreamHeader = errors.New("wire: bad stream header")

// AppendStreamHeader appends the encoded header to b; it allocates only if b
// is too small.
func AppendStreamHeader(b []byte, h StreamHeader) ([]byte, error) {
	if len(h.ClientAddr) > MaxClientAddr {
		return b, fmt.Errorf("wire: client address too long (%d bytes)", len(h.ClientAddr))
	}
	b = append(b, streamMagic, byte(h.Proto), h.Flags)
	b = binary.BigEndian.AppendUint32(b, h.TunnelID)
	b = append(b, byte(len(h.ClientAddr)))
	return append(b, h.ClientAddr...), nil
}

// ReadStreamHeader reads one header from r.
func ReadStreamHeader(r io.Reader) (StreamHeader, error) {
	var fixed [8]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return StreamHeader{}, err
	}
	if fixed[0] != streamMagic {
		return StreamHeader{}, ErrBadStreamHeader
	}
	h := StreamHeader{Proto: Proto(fixed[1]), Flags: fixed[2], TunnelID: binary.BigEndian.Uint32(fixed[3:7])}
	if n := int(fixed[7]); n > 0 {
		addr := make([]byte, n)
		if _, err := io.ReadFull(r, addr); err != nil {
			return StreamHeader{}, err
		}
		h.ClientAddr = string(addr)
	}
	return h, nil
}
