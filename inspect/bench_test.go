package inspect

import (
	"io"
	"net/http"
	"testing"
)

// nopWriter is a ResponseWriter that discards what it is given.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(int)             {}

// helloRequest is a request as a load generator sends it, with the few
// headers a browser or curl adds.
func helloRequest() *http.Request {
	r, _ := http.NewRequest("GET", "http://app.example/hello?x=1", nil)
	r.RequestURI, r.RemoteAddr, r.Host = "/hello?x=1", "127.0.0.1:50000", "app.example"
	r.Header = http.Header{"User-Agent": {"curl/8.5.0"}, "Accept": {"*/*"}}
	return r
}

var helloHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", "6")
	io.WriteString(w, "hello\n")
})

// BenchmarkCapture measures the capture of one small exchange into a full
// store at the default budget, beside the same handler counted only.
func BenchmarkCapture(b *testing.B) {
	for _, c := range []struct {
		name    string
		capture bool
	}{{"counted", false}, {"captured", true}} {
		b.Run(c.name, func(b *testing.B) {
			s := NewStore(DefaultConfig())
			h := s.Tap("web", TapOptions{Capture: c.capture}).Handler(helloHandler)
			r := helloRequest()
			w := &nopWriter{h: http.Header{}}
			if c.capture {
				for s.Used() < s.Config().Budget*9/10 {
					clear(w.h)
					h.ServeHTTP(w, r)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, r)
			}
		})
	}
}
