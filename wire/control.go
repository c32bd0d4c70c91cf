package wire

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Proto is a tunnel's (and a stream's) protocol.
type Proto uint8

// Tunnel protocols.
const (
	ProtoHTTP Proto = 1 // HTTP connections, routed by Host or SNI; the agent does the HTTP
	ProtoTCP  Proto = 2 // raw TCP on a public port
	ProtoTLS  Proto = 3 // TLS routed by SNI, passed through untouched
)

func (p Proto) String() string {
	switch p {
	case ProtoHTTP:
		return "http"
	case ProtoTCP:
		return "tcp"
	case ProtoTLS:
		return "tls"
	}
	return fmt.Sprintf("proto(%d)", uint8(p))
}

// ParseProto parses "http", "tcp" or "tls".
func ParseProto(s string) (Proto, error) {
	switch s {
	case "http":
		return ProtoHTTP, nil
	case "tcp":
		return ProtoTCP, nil
	case "tls":
		return ProtoTLS, nil
	}
	return 0, fmt.Errorf("unknown tunnel type %q (want http, tcp or tls)", s)
}

// MarshalText implements encoding.TextMarshaler. Only known protocols
// encode, so that what is sent can always be read back.
func (p Proto) MarshalText() ([]byte, error) {
	if p < ProtoHTTP || p > ProtoTLS {
		return nil, fmt.Errorf("unknown tunnel type %d", uint8(p))
	}
	return []byte(p.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Proto) UnmarshalText(b []byte) error {
	v, err := ParseProto(string(b))
	*p = v
	return err
}

// Hello is the agent's first message, sent on the TLS connection before
// yamux starts.
type Hello struct {
	Version int    `json:"version"`
	Token   string `json:"token,omitempty"`
	Agent   string `json:"agent,omitempty"` // free-form agent name and version, for logs
	// Instance identifies one running agent across its reconnects. A new
	// session with the instance and token of a live one replaces it at
	// once, so an agent whose link died unnoticed gets its names back.
	Instance string `json:"instance,omitempty"`
}

// Welcome is the relay's reply to an accepted Hello.
type Welcome struct {
	Version   int    `json:"version"`
	SessionID string `json:"session_id"`
	// MaxStreams is how many streams the relay opens to this session at
	// most; the agent closes idle connections early as it nears the cap.
	MaxStreams int `json:"max_streams,omitempty"`
}

// Bind asks the relay for a public address for one tunnel.
type Bind struct {
	TunnelID   uint32 `json:"tunnel_id"`
	Proto      Proto  `json:"proto"`
	Name       string `json:"name,omitempty"`        // subdomain for http and tls; random if empty
	RemotePort int    `json:"remote_port,omitempty"` // for tcp; any free port if zero
	// Hostname asks for a full hostname that the agent's token owns (http
	// and tls), instead of a Name under the relay's domain.
	Hostname string `json:"hostname,omitempty"`
	// CIDRAllow and CIDRDeny restrict the public clients the relay lets
	// through (RuleCIDR): a client in a denied prefix, or outside every
	// allowed one when there are any, is refused before the agent hears of
	// it. Prefixes are in netip form ("192.0.2.0/24", "2001:db8::/32").
	CIDRAllow []string `json:"cidr_allow,omitempty"`
	CIDRDeny  []string `json:"cidr_deny,omitempty"`
}

// Access rules a relay may enforce for a tunnel, as listed in Bound.Rules.
const (
	RuleCIDR = "cidr" // Bind.CIDRAllow and Bind.CIDRDeny
)

// Bound is the relay's reply to a Bind.
type Bound struct {
	TunnelID uint32   `json:"tunnel_id"`
	Name     string   `json:"name,omitempty"`
	URLs     []string `json:"urls,omitempty"`
	// Rules lists the access rules the relay enforces for the tunnel. An
	// agent that asked for a rule missing here (a relay that does not know
	// it) must not serve the tunnel.
	Rules []string `json:"rules,omitempty"`
}

// Unbind asks the relay to release one tunnel of the session: its public
// address stops routing to this agent. The relay replies "unbound" with the
// same body once it no longer routes to the tunnel, also for an id it had
// not bound.
type Unbind struct {
	TunnelID uint32 `json:"tunnel_id"`
}

// Message is the envelope of every control message. Exactly one field besides
// Type is set.
type Message struct {
	Type    string   `json:"type"`
	Hello   *Hello   `json:"hello,omitempty"`
	Welcome *Welcome `json:"welcome,omitempty"`
	Bind    *Bind    `json:"bind,omitempty"`
	Bound   *Bound   `json:"bound,omitempty"`
	Unbind  *Unbind  `json:"unbind,omitempty"`
	Unbound *Unbind  `json:"unbound,omitempty"`
	Error   *Error   `json:"error,omitempty"`
	// ErrorFor names the tunnel an error refers to, or 0 for the session.
	ErrorFor uint32 `json:"error_for,omitempty"`
}

// Message types.
const (
	TypeHello   = "hello"
	TypeWelcome = "welcome"
	TypeBind    = "bind"
	TypeBound   = "bound"
	TypeUnbind  = "unbind"
	TypeUnbound = "unbound"
	TypeError   = "error"
	// TypeDrain (relay → agent, no body) says the relay is shutting down:
	// the agent should finish in-flight requests, close idle connections,
	// and expect the session to end.
	TypeDrain = "drain"
)

// Errors of ReadMessage and ReadHello besides those of the reader.
var (
	ErrMalformed         = errors.New("wire: malformed control message")
	ErrUnexpectedMessage = errors.New("wire: unexpected message")
)

// WriteMessage writes one length-prefixed JSON message.
func WriteMessage(w io.Writer, m *Message) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if len(body) > MaxControlMessage {
		return ErrMessageTooLarge
	}
	buf := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	copy(buf[4:], body)
	_, err = w.Write(buf)
	return err
}

// ReadMessage reads one length-prefixed JSON message, refusing bodies over
// MaxControlMessage before reading them.
func ReadMessage(r io.Reader) (*Message, error) { return readMessage(r, MaxControlMessage) }

// ReadHello reads the agent's Hello, refusing bodies over MaxHelloMessage
// before reading them and anything that is not a Hello.
func ReadHello(r io.Reader) (*Hello, error) {
	m, err := readMessage(r, MaxHelloMessage)
	if err != nil {
		return nil, err
	}
	if m.Type != TypeHello || m.Hello == nil {
		return nil, fmt.Errorf("%w %q, want hello", ErrUnexpectedMessage, m.Type)
	}
	return m.Hello, nil
}

func readMessage(r io.Reader, max uint32) (*Message, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > max {
		return nil, ErrMessageTooLarge
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("wire: short control message: %w", err)
	}
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return &m, nil
}
