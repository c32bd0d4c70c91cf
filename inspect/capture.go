package inspect

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"
)

// ErrNotReplayable is returned for an exchange that cannot be sent again.
var ErrNotReplayable = errors.New("request cannot be replayed")

// Tap records one tunnel's traffic: its metrics always, and its HTTP
// exchanges when capturing is on.
type Tap struct {
	store   *Store
	tunnel  string
	opts    TapOptions
	metrics *Metrics
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
	return &Tap{store: s, tunnel: tunnel, opts: o, metrics: newMetrics()}
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

// Handler wraps a tunnel's HTTP handler: it counts every request and, when
// capturing, keeps a copy of it, its response and the first BodyCap bytes
// of each body. It never buffers: bodies are copied as they pass, flushes
// and upgrades (WebSocket) go straight through.
func (t *Tap) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if !t.opts.Capture {
			rec := &recorder{ResponseWriter: w}
			next.ServeHTTP(rec, r)
			t.metrics.request(time.Since(start), rec.status)
			return
		}
		x := &Exchange{
			Tunnel:     t.tunnel,
			ReplayOf:   replayOf(r.Context()),
			Start:      start,
			RemoteAddr: r.RemoteAddr,
			TLS:        r.TLS != nil || t.opts.PublicTLS != nil && t.opts.PublicTLS(r),
			Request: Message{
				Method: r.Method, URI: r.RequestURI, Host: r.Host, Proto: r.Proto, BodySize: -1,
			},
		}
		if t.opts.MaskAuthorization {
			x.Request.header = encodeHeader(r.Header, "Authorization", maskedAuthorization)
		} else {
			x.Request.header = encodeHeader(r.Header, "", "")
		}
		var body *teeBody
		if r.Body != nil && r.Body != http.NoBody {
			body = &teeBody{ReadCloser: r.Body, capBuffer: capBuffer{max: t.store.cfg.BodyCap}}
			r.Body = body
		} else {
			x.Request.BodySize = 0
		}
		t.store.add(x)
		rec := &recorder{ResponseWriter: w, body: capBuffer{max: t.store.cfg.BodyCap}}
		next.ServeHTTP(rec, r)

		done := *x
		done.Duration = time.Since(start)
		done.Done = true
		done.Request.trailer = encodeHeader(r.Trailer, "", "")
		if body != nil {
			kept := body.snapshot()
			done.Request.Body, done.Request.BodySize, done.Request.Truncated = kept.buf, kept.n, kept.truncated
		}
		if rec.hijacked && !rec.wrote {
			// The handler answered on the hijacked connection (as
			// ReverseProxy does for an upgrade), after setting the headers.
			rec.wrote, rec.status, rec.header = true, http.StatusSwitchingProtocols, encodeHeader(w.Header(), "", "")
		}
		if rec.wrote {
			done.Status = rec.status
			done.Upgraded = rec.status == http.StatusSwitchingProtocols
			done.Response = &Message{
				Proto: r.Proto, Status: rec.status, header: rec.header,
				trailer: encodeHeader(trailers(w.Header(), rec.declared), "", ""),
				Body:    rec.body.buf, BodySize: rec.body.n, Truncated: rec.body.truncated,
			}
		}
		t.store.replace(x, &done)
		t.metrics.request(done.Duration, rec.status)
	})
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
	hijacked bool
	wrote    bool
	status   int
	header   []byte   // as sent with the status
	declared []string // the Trailer header sent with the status
	body     capBuffer
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote && (code >= 200 || code == http.StatusSwitchingProtocols) {
		r.wrote, r.status = true, code
		h := r.ResponseWriter.Header()
		r.header, r.declared = encodeHeader(h, "", ""), h["Trailer"]
	}
	r.ResponseWriter.WriteHeader(code)
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
