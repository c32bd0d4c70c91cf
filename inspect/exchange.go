package inspect

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Exchange is one captured HTTP request and its response, as read from the
// store: a copy of what it keeps, decoded. It is never modified; its byte
// slices share one buffer and must not be changed.
type Exchange struct {
	ID         string
	Tunnel     string // the tunnel's label
	ReplayOf   string // the id of the exchange this one replays, if it is a replay
	Start      time.Time
	Duration   time.Duration // zero while the response is pending
	RemoteAddr string        // the public client's ip:port ("" for a replay)
	TLS        bool          // the public client spoke HTTPS

	Request  Message
	Response *Message // nil while pending, or if the upstream never answered
	Status   int      // the response status, 0 while pending
	Upgraded bool     // the connection switched protocols (WebSocket); its bytes are not captured
	Done     bool     // the exchange has finished
}

// Message is one side of an exchange.
type Message struct {
	Method    string // requests only
	URI       string // requests only: the request target, path and query
	Host      string // requests only
	Proto     string // "HTTP/1.1", "HTTP/2.0"
	Status    int    // responses only
	Body      []byte // at most the store's BodyCap bytes
	BodySize  int64  // bytes seen, kept or not
	Truncated bool   // BodySize > len(Body)

	raw             []byte // the message in HTTP/1.1 form, body included
	header, trailer []byte // "Key: value\r\n" lines
}

// Header returns the message's headers (without Host, which Go keeps apart).
func (m *Message) Header() http.Header { return decodeHeader(m.header) }

// Trailer returns the message's trailers, or nil.
func (m *Message) Trailer() http.Header {
	if len(m.trailer) == 0 {
		return nil
	}
	return decodeHeader(m.trailer)
}

func decodeHeader(b []byte) http.Header {
	h := http.Header{}
	for len(b) > 0 {
		line, rest, _ := bytes.Cut(b, []byte("\r\n"))
		k, v, _ := bytes.Cut(line, []byte(": "))
		h[string(k)] = append(h[string(k)], string(v))
		b = rest
	}
	return h
}

// IsReplay reports whether the exchange was sent from the inspector.
func (x *Exchange) IsReplay() bool { return x.ReplayOf != "" }

// RawRequest returns the request as it arrived, in HTTP/1.1 form: request
// line, Host and the other headers (sorted, as http.Header.Write writes
// them), blank line, and the body as far as it was kept; as ngrok's API
// returns it in "raw". The caller must not modify it.
func (x *Exchange) RawRequest() []byte { return x.Request.raw }

// RawResponse returns the response in the same form: status line,
// headers, blank line, body as far as it was kept. It is nil while the
// response is pending. The caller must not modify it.
func (x *Exchange) RawResponse() []byte {
	if x.Response == nil {
		return nil
	}
	return x.Response.raw
}

// Changes alter a request before it is replayed. Empty fields keep the
// original.
type Changes struct {
	Method string
	URI    string
	Header http.Header // replaces every header when not nil
	Body   *[]byte     // replaces the body when not nil
}

// ReplayRequest builds a request that repeats the exchange's, with changes,
// for the tunnel's own upstream. The request is marked so that the capture
// middleware records it as a replay of x.
func (x *Exchange) ReplayRequest(ctx context.Context, c Changes) (*http.Request, error) {
	if x.Upgraded {
		return nil, fmt.Errorf("%w: it switched protocols (WebSocket), and what followed was not captured", ErrNotReplayable)
	}
	if x.Request.Truncated && c.Body == nil {
		return nil, fmt.Errorf("%w: its body was larger than the capture limit", ErrNotReplayable)
	}
	method, uri, header, body := x.Request.Method, x.Request.URI, x.Request.Header(), x.Request.Body
	if c.Method != "" {
		method = c.Method
	}
	if c.URI != "" {
		uri = c.URI
	}
	if c.Header != nil {
		header = c.Header.Clone()
	}
	if c.Body != nil {
		body = *c.Body
	}
	if !strings.HasPrefix(uri, "/") {
		return nil, fmt.Errorf("%w: the path must start with /", ErrNotReplayable)
	}
	ctx = context.WithValue(ctx, replayKey{}, x.ID)
	req, err := http.NewRequestWithContext(ctx, method, "http://"+hostOr(x.Request.Host)+uri, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotReplayable, err)
	}
	if len(body) == 0 {
		req.Body = http.NoBody
	}
	req.RequestURI = uri
	req.Header = header
	if h := header.Get("Host"); h != "" {
		req.Host = h
		header.Del("Host")
	}
	req.Header.Del("Content-Length")
	req.Header.Del("Transfer-Encoding")
	req.RemoteAddr = x.RemoteAddr
	if x.TLS {
		req.TLS = &tls.ConnectionState{} // the original came over HTTPS
	}
	req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/1.1", 1, 1
	return req, nil
}

func hostOr(h string) string {
	if h == "" {
		return "localhost"
	}
	return h
}

type replayKey struct{}

// replayOf returns the id of the exchange a request replays, if any.
func replayOf(ctx context.Context) string {
	id, _ := ctx.Value(replayKey{}).(string)
	return id
}

// capBuffer keeps the first max bytes written to it and counts the rest.
type capBuffer struct {
	buf       []byte
	max       int
	n         int64
	truncated bool
}

func (c *capBuffer) keep(p []byte) {
	c.n += int64(len(p))
	if room := c.max - len(c.buf); room > 0 {
		if len(p) > room {
			p = p[:room]
			c.truncated = true
		}
		c.buf = append(c.buf, p...)
	} else if len(p) > 0 {
		c.truncated = true
	}
}

// teeBody keeps a copy of what is read of a request body, until the
// capture takes it. The proxy's transport may still be reading the body
// on its own goroutine when the handler returns, hence the lock.
type teeBody struct {
	io.ReadCloser
	mu    sync.Mutex
	taken bool
	capBuffer
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	t.mu.Lock()
	if !t.taken {
		t.keep(p[:n])
	}
	t.mu.Unlock()
	return n, err
}

// take returns what was kept so far; reads that follow are not kept, so
// the buffer is the caller's.
func (t *teeBody) take() capBuffer {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.taken = true
	c := t.capBuffer
	t.buf = nil
	return c
}
