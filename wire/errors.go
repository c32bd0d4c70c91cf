package wire

import (
	"errors"
	"fmt"
)

// Code is a stable, documented error code carried in control replies and
// shown to users. Callers branch on it with errors.As and *Error.
type Code string

// Error codes sent by the relay.
const (
	CodeBadVersion       Code = "bad_version"       // the agent's protocol version is not supported
	CodeAuthFailed       Code = "auth_failed"       // the token is missing or wrong
	CodeBadRequest       Code = "bad_request"       // a malformed, oversized or unexpected message
	CodeHandshakeTimeout Code = "handshake_timeout" // the Hello or the control stream came too late
	CodeProtocol         Code = "protocol_error"    // the agent broke the protocol (it opened a data stream)
	CodeRateLimited      Code = "rate_limited"      // the agent sent control messages too fast
	CodeReplaced         Code = "replaced"          // a newer session of the same agent instance took over
	CodeNameTaken        Code = "name_taken"        // the name is held by another session, or for another token
	CodeNameInvalid      Code = "name_invalid"      // the name is not a valid DNS label
	CodeNameDenied       Code = "name_reserved"     // the name is reserved for another token
	CodePortTaken        Code = "port_unavailable"  // the TCP port is in use or outside the range
	CodeNoPorts          Code = "no_ports"          // the TCP port range is exhausted
	CodeTunnelLimit      Code = "tunnel_limit"      // the session holds as many tunnels as the relay allows
	CodePortLimit        Code = "port_limit"        // the session holds as many TCP ports as the relay allows
	CodeUnsupported      Code = "unsupported"       // the relay does not offer this tunnel type
	CodeInternal         Code = "internal"          // the relay failed; retrying may help
)

// Error is a coded error from the relay.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if e.Message == "" {
		return string(e.Code)
	}
	return fmt.Sprintf("%s (%s)", e.Message, e.Code)
}

// Errorf builds a coded error.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// IsCode reports whether err is, or wraps, a relay *Error with the code.
func IsCode(err error, code Code) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// Fatal reports whether a coded error cannot be cured by reconnecting.
func (c Code) Fatal() bool {
	switch c {
	case CodeInternal, CodeHandshakeTimeout, CodeRateLimited:
		return false
	default:
		return true
	}
}

// ErrMessageTooLarge is returned when a control message exceeds its limit
// (MaxControlMessage, or MaxHelloMessage for a Hello).
var ErrMessageTooLarge = errors.New("wire: control message too large")
