// Package wire is the agent–relay protocol.
//
// An agent dials the relay over TLS 1.3 and runs one yamux session on top
// (the agent is the yamux client). The first stream the agent opens is the
// control stream. On it the agent sends a Hello with the protocol version and
// its token; the relay answers with a Welcome or a coded Error. The agent then
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
const Version = 1

// Limits that are part of the protocol.
const (
	// MaxControlMessage is the largest control message body, in bytes.
	MaxControlMessage = 64 << 10
	// MaxClientAddr is the longest client address a stream header can carry.
	MaxClientAddr = 255
	// HandshakeTimeout bounds the TLS handshake plus Hello/Welcome exchange.
	HandshakeTimeout = 10 * time.Second
	// DefaultStreamsPerSession caps concurrent streams in one session.
	DefaultStreamsPerSession = 10000
	// KeepAliveInterval is the default yamux ping interval.
	KeepAliveInterval = 15 * time.Second
)

// ALPN is the TLS application protocol the agent and relay agree on.
const ALPN = "porthole/1"
