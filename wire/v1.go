package wire

import (
	"encoding/binary"
	"encoding/json"
	"io"
)

// yamux framing, as far as the version 1 refusal needs it: a 12-byte
// header of version (0), type, flags (2 bytes), stream id (4) and length (4).
const (
	yamuxVersion = 0
	yamuxFlagACK = 1 << 1
	yamuxFlagFIN = 1 << 2
	v1ControlID  = 1 // the first stream a yamux client opens
)

// ReadV1Open reads the header of the first frame an agent of protocol
// version 1 sends, the one that opens its control stream. A refusal must
// wait for it: yamux drops data for a stream it has not opened yet, and
// ends the session on a FIN for a stream it is still opening, so a
// refusal sent before the agent's stream exists never reaches the agent.
func ReadV1Open(r io.Reader) error {
	var hdr [yamuxHeaderSize]byte
	_, err := io.ReadFull(r, hdr[:])
	return err
}

// WriteV1Refusal answers an agent that negotiated ALPNv1 with a coded error
// it can read. In version 1 yamux started right after TLS and the agent
// sent its Hello on the first stream it opened (id 1), then waited for the
// reply there. This writes that reply by hand, so the relay never runs
// yamux for a peer that has not authenticated: one data frame on stream 1
// flagged ACK that carries the message, then an empty one flagged FIN.
// The FIN has a frame of its own because yamux applies a frame's flags
// before it buffers the frame's data: a reader woken by the FIN in between
// would see the end of the stream and never the message. Call it once
// ReadV1Open has returned. It reads nothing from the agent.
func WriteV1Refusal(w io.Writer, e *Error) error {
	body, err := json.Marshal(&Message{Type: TypeError, Error: e})
	if err != nil {
		return err
	}
	frames := v1Frame(nil, yamuxFlagACK, 4+len(body))
	frames = binary.BigEndian.AppendUint32(frames, uint32(len(body)))
	frames = append(frames, body...)
	frames = v1Frame(frames, yamuxFlagFIN, 0)
	_, err = w.Write(frames)
	return err
}

// v1Frame appends the header of a data frame on the version 1 control
// stream with the flags and a body of n bytes.
func v1Frame(b []byte, flags uint16, n int) []byte {
	b = append(b, yamuxVersion, yamuxTypeData)
	b = binary.BigEndian.AppendUint16(b, flags)
	b = binary.BigEndian.AppendUint32(b, v1ControlID)
	return binary.BigEndian.AppendUint32(b, uint32(n))
}
