package wire

import (
	"encoding/binary"
	"encoding/json"
	"io"
)

// yamux framing, as far as WriteV1Refusal needs it: a 12-byte header of
// version (0), type, flags (2 bytes), stream id (4) and length (4).
const (
	yamuxVersion  = 0
	yamuxFlagACK  = 1 << 1
	yamuxFlagFIN  = 1 << 2
	v1ControlID   = 1 // the first stream a yamux client opens
	v1FrameHeader = 12
)

// WriteV1Refusal answers an agent that negotiated ALPNv1 with a coded error
// it can read. In version 1 yamux started right after TLS and the agent
// sent its Hello on the first stream it opened (id 1), then waited for the
// reply there. This writes that reply by hand, as one yamux data frame on
// stream 1 flagged ACK and FIN, so the relay never runs yamux for a peer
// that has not authenticated. It reads nothing from the agent.
func WriteV1Refusal(w io.Writer, e *Error) error {
	body, err := json.Marshal(&Message{Type: TypeError, Error: e})
	if err != nil {
		return err
	}
	frame := make([]byte, v1FrameHeader, v1FrameHeader+4+len(body))
	frame[0] = yamuxVersion
	frame[1] = yamuxTypeData
	binary.BigEndian.PutUint16(frame[2:], yamuxFlagACK|yamuxFlagFIN)
	binary.BigEndian.PutUint32(frame[4:], v1ControlID)
	binary.BigEndian.PutUint32(frame[8:], uint32(4+len(body)))
	frame = binary.BigEndian.AppendUint32(frame, uint32(len(body)))
	frame = append(frame, body...)
	_, err = w.Write(frame)
	return err
}
