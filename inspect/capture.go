package inspect

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// ErrNotReplayable is returned for an exchange that cannot be sent again.
var ErrNotReplayable = errors.New("request cannot be replayed")

// Tap records one tunnel's traffic: its metrics always, and its HTTP
// exchanges when capturing is on.
type Tap struct {
	store    *Store
	tunnel   string
	tunnelID uint32 // the tunnel's number in the store's entries
	opts     TapOptions
	metrics  *Metrics
}

// TapOptions configure a Tap.
type TapOptions struct {
	// Capture keeps the tunnel's HTTP exchanges in the store; without it
	// they are only counted.
	Capture bool
	// MaskAuthorization hides the Authorization request header in what is
	// kept: it carries the tunnel's own basic-auth password.
	MaskAuthorization bool
	// PublicTLS, if set, reports whether a request reached the tunnel over
	// HTTPS (the relay terminated its TLS).
	PublicTLS func(*http.Request) bool
}

// Tap returns a recorder for the tunnel with the label.
func (s *Store) Tap(tunnel string, o TapOptions) *Tap {
	return &Tap{store: s, tunnel: tunnel, tunnelID: s.tunnelID(tunnel), opts: o, metrics: newMetrics()}
}

// Tunnel returns the label of the tap's tunnel.
func (t *Tap) Tunnel() string { return t.tunnel }

// Capturing reports whether the tap keeps exchanges.
func (t *Tap) Capturing() bool { return t.opts.Capture }

// Metrics returns the tunnel's counters.
func (t *Tap) Metrics() *Metrics { return t.metrics }

// maskedAuthorization replaces the tunnel's basic-auth credentials in kept
// headers.
const maskedAuthorization = "Basic [hidden: the tunnel's basic auth]"

// capture is the state of one request's capture. Captures are pooled:
// their buffers outlive the request, so that a small exchange is captured
// without allocating.
type capture struct {
	rec      recorder
	entry    []byte // the request's pending entry, then the head of its finished one
	trailers []byte // request trailers, then response trailers
	reqBody  []byte // lent to the request body's tee
	keys     []string
	meta     meta
}

var captures = sync.Pool{New: func() any { return new(capture) }}

// maxPooled bounds the buffers a pooled capture keeps: one large body
// should not stay in memory for good.
const maxPooled = 64 << 10

func (c *capture) release() {
	c.rec = recorder{head: c.rec.head[:0], body: capBuffer{buf: c.rec.body.buf[:0]}}
	for _, b := range []*[]byte{&c.entry, &c.trailers, &c.reqBody, &c.rec.head, &c.rec.body.buf} {
		if cap(*b) > maxPooled {
			*b = nil
		}
	}
	clear(c.keys[:cap(c.keys)])
	captures.Put(c)
}

// Handler wraps a tunnel's HTTP handler: it counts every request and, when
// capturing, keeps a copy of it, its response and the first BodyCap bytes
// of each body. It never buffers: bodies are copied as they pass, flushes
// and upgrades (WebSocket) go straight through.
func (t *Tap) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		c := captures.Get().(*capture)
		defer c.release()
		rec := &c.rec
		rec.ResponseWriter = w
		if !t.opts.Capture {
			next.ServeHTTP(rec, r)
			t.metrics.request(time.Since(start), rec.status)
			return
		}
		t.capture(c, w, r, next, start)
		t.metrics.request(time.Duration(c.meta.duration), rec.status)
	})
}

// capture serves r through next, keeping the exchange: its request when
// the handler starts, the whole exchange when it returns.
func (t *Tap) capture(c *capture, w http.ResponseWriter, r *http.Request, next http.Handler, start time.Time) {
	m := &c.meta
	*m = meta{tunnel: t.tunnelID, start: start.UnixNano()}
	if id, ok := parseID(replayOf(r.Context())); ok {
		m.replayOf = id
	}
	if r.TLS != nil || t.opts.PublicTLS != nil && t.opts.PublicTLS(r) {
		m.flags |= flagTLS
	}
	mask := ""
	if t.opts.MaskAuthorization {
		mask = "Authorization"
	}
	e := append(c.entry[:0], make([]byte, headerSize)...)
	e, c.keys = appendRequestHead(e, m, r, mask, maskedAuthorization, c.keys)
	for i := endReqHead + 1; i < numEnds; i++ {
		m.ends[i] = m.ends[endReqHead]
	}
	bodyCap := t.store.cfg.BodyCap
	var body *teeBody
	if r.Body != nil && r.Body != http.NoBody {
		body = &teeBody{ReadCloser: r.Body, capBuffer: capBuffer{buf: c.reqBody[:0], max: bodyCap}}
		r.Body = body
		m.reqSize = -1
	}
	m.size = uint32(len(e))
	m.put(e)
	c.entry = e
	f := t.store.begin(e)
	defer t.finish(c, f, w, r, body, start) // also if the handler panics, as ReverseProxy does when the client goes away

	rec := &c.rec
	rec.capture, rec.proto, rec.keys, rec.body.max = true, r.Proto, c.keys, bodyCap
	next.ServeHTTP(rec, r)
}

// finish keeps the whole exchange once the handler has returned.
func (t *Tap) finish(c *capture, f flight, w http.ResponseWriter, r *http.Request, body *teeBody, start time.Time) {
	m, rec := &c.meta, &c.rec
	c.keys = rec.keys
	m.duration = int64(time.Since(start))
	m.flags |= flagDone
	var reqBody capBuffer
	if body != nil {
		reqBody = body.take()
		c.reqBody = reqBody.buf
		m.reqSize = reqBody.n
	}
	if reqBody.truncated {
		m.flags |= flagReqTruncated
	}
	c.trailers, c.keys = appendHeader(c.trailers[:0], r.Trailer, c.keys, "", "")
	reqTrailers := len(c.trailers)
	if rec.hijacked && !rec.wrote {
		// The handler answered on the hijacked connection (as
		// ReverseProxy does for an upgrade), after setting the headers.
		rec.writeHead(w.Header(), http.StatusSwitchingProtocols)
	}
	if rec.wrote {
		m.flags |= flagResponse
		m.status = uint16(rec.status)
		if rec.status == http.StatusSwitchingProtocols {
			m.flags |= flagUpgraded
		}
		m.respSize = rec.body.n
		if rec.body.truncated {
			m.flags |= flagRespTruncated
		}
		if tr := trailers(w.Header(), rec.declared); tr != nil {
			c.trailers, c.keys = appendHeader(c.trailers, tr, c.keys, "", "")
		}
	}
	parts := [numParts][]byte{
		partReqHead:     c.entry[headerSize:m.ends[endReqHead]],
		partReqBody:     reqBody.buf,
		partReqTrailer:  c.trailers[:reqTrailers],
		partRespLine:    rec.head[:rec.line],
		partRespHead:    rec.head[rec.line:],
		partRespBody:    rec.body.buf,
		partRespTrailer: c.trailers[reqTrailers:],
	}
	t.fit(m, &parts)
	t.store.finish(f, m, parts[:])
}

// The parts of a finished entry after its header, as finish hands them
// to the store: each of the entry's parts from endReqBody on, and all
// before it in one.
const (
	partReqHead = iota // the client's address and the request head
	partReqBody
	partReqTrailer
	partRespLine
	partRespHead
	partRespBody
	partRespTrailer
	numParts
)

// fit lays out an entry of the parts in m's ends and size (those up to
// endReqHead are set already). If the entry would be larger than the
// store's ring, it first cuts the bodies to fit, the response's first.
func (t *Tap) fit(m *meta, parts *[numParts][]byte) {
	size := headerSize
	for _, p := range parts {
		size += len(p)
	}
	over := size - t.store.maxEntry()
	cut := func(i int, flag uint16) {
		if n := min(over, len(parts[i])); n > 0 {
			parts[i] = parts[i][:len(parts[i])-n]
			m.flags |= flag
			over -= n
			size -= n
		}
	}
	cut(partRespBody, flagRespTruncated)
	cut(partReqBody, flagReqTruncated)
	end := m.ends[endReqHead]
	for i, p := range parts[partReqBody:] {
		end += uint32(len(p))
		m.ends[endReqBody+i] = end
	}
	m.size = uint32(size)
}

// trailers collects the response trailers a handler set: those announced in
// the Trailer header, and those set with http.TrailerPrefix.
func trailers(h http.Header, declared []string) http.Header {
	var out http.Header
	add := func(k string, v []string) {
		if out == nil {
			out = http.Header{}
		}
		out[http.CanonicalHeaderKey(k)] = append([]string(nil), v...)
	}
	for _, d := range declared {
		for _, k := range strings.Split(d, ",") {
			if k = http.CanonicalHeaderKey(strings.TrimSpace(k)); k != "" && h[k] != nil {
				add(k, h[k])
			}
		}
	}
	for k, v := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			add(strings.TrimPrefix(k, http.TrailerPrefix), v)
		}
	}
	return out
}

// recorder sees the response on its way to the client. It implements
// Unwrap so that http.ResponseController reaches the real writer's Flush
// and Hijack.
type recorder struct {
	http.ResponseWriter
	capture  bool // keep the head and body, not only the status
	proto    string
	hijacked bool
	wrote    bool
	status   int
	head     []byte   // the status line and headers as sent, then the blank line
	line     int      // the status line's length
	declared []string // the Trailer header sent with the status
	keys     []string // scratch space for sorting header names
	body     capBuffer
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote && (code >= 200 || code == http.StatusSwitchingProtocols) {
		r.writeHead(r.ResponseWriter.Header(), code)
	}
	r.ResponseWriter.WriteHeader(code)
}

// writeHead records the response's status and, when capturing, its head.
func (r *recorder) writeHead(h http.Header, code int) {
	r.wrote, r.status = true, code
	if !r.capture {
		return
	}
	r.head = appendStatusLine(r.head[:0], r.proto, code)
	r.line = len(r.head)
	r.head, r.keys = appendHeader(r.head, h, r.keys, "", "")
	r.head = append(r.head, "\r\n"...)
	r.declared = h["Trailer"]
}

func (r *recorder) Write(p []byte) (int, error) {
	if !r.wrote {
		r.WriteHeader(http.StatusOK)
	}
	if r.body.max > 0 {
		r.body.keep(p)
	}
	return r.ResponseWriter.Write(p)
}

// Flush passes a flush on at once: streaming responses are not held back.
func (r *recorder) Flush() {
	http.NewResponseController(r.ResponseWriter).Flush()
}

// Hijack hands over the connection, for protocols switched by upgrade.
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	r.hijacked = err == nil
	return c, brw, err
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
