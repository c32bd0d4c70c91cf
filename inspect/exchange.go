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

// Exchange is one captured HTTP request and its response. The store keeps
// one value per state (response pending, then finished) and never modifies
// it once kept.
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

	seq  uint64 // the store's sequence number
	size int64
}

// Message is one side of an exchange. Its headers are kept as one block of
// "Key: value\r\n" lines: tens of thousands of kept exchanges then cost the
// garbage collector a few pointers each, not a map of slices each.
type Message struct {
	Method    string // requests only
	URI       string // requests only: the request target, path and query
	Host      string // requests only
	Proto     string // "HTTP/1.1", "HTTP/2.0"
	Status    int    // responses only
	Body      []byte // at most the store's BodyCap bytes
	BodySize  int64  // bytes seen, kept or not
	Truncated bool   // BodySize > len(Body)

	header, trailer []byte
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

// encodeHeader packs h into one block, with the value of the header named
// mask (if any) replaced by masked.
func encodeHeader(h http.Header, mask, masked string) []byte {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	if n == 0 {
		return nil
	}
	b := make([]byte, 0, n+len(masked))
	for k, vs := range h {
		for _, v := range vs {
			if k == mask {
				v = masked
			}
			b = append(append(append(append(b, k...), ": "...), v...), "\r\n"...)
		}
	}
	return b
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

// footprint estimates the memory the exchange holds, for the budget.
func (x *Exchange) footprint() int64 {
	n := int64(512 + len(x.Request.URI) + len(x.RemoteAddr))
	n += x.Request.footprint()
	if x.Response != nil {
		n += x.Response.footprint()
	}
	return n
}

func (m *Message) footprint() int64 {
	return int64(len(m.Body)+len(m.header)+len(m.trailer)) + 64
}

// Raw renders the request as it arrived: request line, headers, body (as
// far as it was kept), as ngrok's API returns it in "raw".
func (x *Exchange) RawRequest() []byte {
	var b bytes.Buffer
	r := &x.Request
	fmt.Fprintf(&b, "%s %s %s\r\n", r.Method, r.URI, r.Proto)
	if r.Host != "" {
		fmt.Fprintf(&b, "Host: %s\r\n", r.Host)
	}
	r.Header().Write(&b)
	b.WriteString("\r\n")
	b.Write(r.Body)
	return b.Bytes()
}

// RawResponse renders the response: status line, headers, body (as far as
// it was kept). It is nil while the response is pending.
func (x *Exchange) RawResponse() []byte {
	if x.Response == nil {
		return nil
	}
	var b bytes.Buffer
	r := x.Response
	fmt.Fprintf(&b, "%s %d %s\r\n", r.Proto, r.Status, http.StatusText(r.Status))
	r.Header().Write(&b)
	b.WriteString("\r\n")
	b.Write(r.Body)
	return b.Bytes()
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

// teeBody keeps a copy of what is read of a request body. The proxy's
// transport may still be reading it on its own goroutine when the handler
// returns, hence the lock.
type teeBody struct {
	io.ReadCloser
	mu sync.Mutex
	capBuffer
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	t.mu.Lock()
	t.keep(p[:n])
	t.mu.Unlock()
	return n, err
}

// snapshot returns what was kept so far.
func (t *teeBody) snapshot() capBuffer {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.capBuffer
	c.buf = append([]byte(nil), c.buf...)
	return c
}
