// Package wire is the agent–relay protocol.
//
// An agent dials the relay over TLS 1.3 (ALPN "porthole/2") and, on the TLS
// connection itself, sends a Hello with the protocol version, its token and
// its instance id; the relay answers with a Welcome or a coded Error. Only
// then does yamux start (the agent is the yamux client), so that an
// unauthenticated peer can make the relay hold no more than a Hello. The
// first and only stream the agent opens is the control stream: the agent
// sends Bind requests, one per tunnel, and the relay answers each with a
// Bound reply (public URLs) or a coded error.
//
// For every public connection the relay opens a stream to the agent. Its
// first bytes are a StreamHeader (protocol, flags, tunnel id, client address); the
// rest of the stream is the public traffic. docs/PROTOCOL.md describes the
// format in full.
package wire

import "time"

// Version is the protocol version spoken by this build. The relay refuses
// agents that speak another version.
const Version = 2

// Limits that are part of the protocol.
const (
	// MaxControlMessage is the largest control message body, in bytes.
	MaxControlMessage = 64 << 10
	// MaxHelloMessage is the largest Hello body, in bytes. It is small
	// because the relay reads it before it knows who is talking.
	MaxHelloMessage = 4 << 10
	// MaxToken is the longest token, in bytes, so that any Hello fits.
	MaxToken = 1 << 10
	// MaxInstanceID is the longest agent instance id a Hello may carry.
	MaxInstanceID = 64
	// MaxClientAddr is the longest client address a stream header can carry.
	MaxClientAddr = 255
	// HandshakeTimeout is the default bound on the TLS handshake plus the
	// Hello/Welcome exchange and the opening of the control stream.
	HandshakeTimeout = 10 * time.Second
	// DefaultStreamsPerSession caps concurrent streams in one session.
	DefaultStreamsPerSession = 10000
	// KeepAliveInterval is the default yamux ping interval.
	KeepAliveInterval = 15 * time.Second
	// DefaultAgentPort is the relay's agent port unless it is told
	// otherwise; an agent given a relay host without a port dials it.
	DefaultAgentPort = 7835
)

// ALPN is the TLS application protocol of this protocol version. The agent
// also offers ALPNv1, so that a relay of version 1 picks it and the agent
// can say plainly that the relay is too old.
const ALPN = "porthole/2"

// ALPNv1 is the TLS application protocol of version 1, in which yamux
// started right after TLS. The relay accepts it only to refuse the agent
// with a bad_version error it can read (see WriteV1Refusal).
const ALPNv1 = "porthole/1"
