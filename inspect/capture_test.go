package inspect

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// serve runs h behind a tap of a fresh store, on a real listener.
func serve(t *testing.T, cfg Config, opts TapOptions, h http.Handler) (*Store, *Tap, *httptest.Server) {
	t.Helper()
	s := NewStore(cfg)
	tap := s.Tap("web", opts)
	srv := httptest.NewServer(tap.Handler(h))
	t.Cleanup(srv.Close)
	return s, tap, srv
}

func TestCaptureKeepsBodiesUpToTheCapAndPassesThemWhole(t *testing.T) {
	var got []byte
	s, _, srv := serve(t, Config{BodyCap: 16}, TapOptions{Capture: true}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		w.Write(bytes.Repeat([]byte("r"), 40))
	}))
	body := strings.Repeat("q", 100)
	resp, err := http.Post(srv.URL+"/upload?x=1", "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	respBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != body || len(respBody) != 40 {
		t.Fatalf("capture changed the traffic: upstream got %d bytes, client %d", len(got), len(respBody))
	}
	xs := s.List(0, "")
	if len(xs) != 1 {
		t.Fatalf("%d exchanges", len(xs))
	}
	x := xs[0]
	if !x.Done || x.Request.Method != "POST" || x.Request.URI != "/upload?x=1" || x.Tunnel != "web" {
		t.Errorf("exchange: %+v", x)
	}
	if string(x.Request.Body) != body[:16] || x.Request.BodySize != 100 || !x.Request.Truncated {
		t.Errorf("request body kept %q of %d, truncated %v", x.Request.Body, x.Request.BodySize, x.Request.Truncated)
	}
	if x.Response == nil || x.Status != 200 || len(x.Response.Body) != 16 || x.Response.BodySize != 40 || !x.Response.Truncated {
		t.Errorf("response: %+v", x.Response)
	}
	if x.Response.Header().Get("Content-Type") != "text/plain" {
		t.Errorf("response headers: %v", x.Response.Header())
	}
}

func TestStreamingResponsesAreNotHeldBack(t *testing.T) {
	release := make(chan struct{})
	s, _, srv := serve(t, Config{}, TapOptions{Capture: true}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		http.NewResponseController(w).Flush()
		<-release
		io.WriteString(w, "data: second\n\n")
	}))
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	// The first event arrives while the handler still runs.
	if line, err := br.ReadString('\n'); err != nil || line != "data: first\n" {
		t.Fatalf("first event: %q, %v", line, err)
	}
	// Meanwhile the exchange is listed, its response pending.
	if xs := s.List(0, ""); len(xs) != 1 || xs[0].Done {
		t.Errorf("in flight: %+v", xs)
	}
	close(release)
	io.ReadAll(br)
	waitDone(t, s)
	if x := s.List(0, "")[0]; string(x.Response.Body) != "data: first\n\ndata: second\n\n" {
		t.Errorf("kept %q", x.Response.Body)
	}
}

// waitDone waits for the store's newest exchange to finish: the handler
// returns just after the client has read the end of the response.
func waitDone(t *testing.T, s *Store) {
	t.Helper()
	ch, cancel := s.Subscribe()
	defer cancel()
	if xs := s.List(1, ""); len(xs) == 1 && xs[0].Done {
		return
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e := <-ch:
			if e.Type == EventUpdate {
				return
			}
		case <-timeout:
			t.Fatal("exchange did not finish")
		}
	}
}

func TestTrailersAreKept(t *testing.T) {
	s, _, srv := serve(t, Config{}, TapOptions{Capture: true}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "body")
		w.Header().Set("X-Checksum", "abc")
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	}))
	req, _ := http.NewRequest("POST", srv.URL, io.NopCloser(strings.NewReader("in")))
	req.ContentLength = -1 // chunked, so that trailers can follow
	req.Trailer = http.Header{"X-Req-Sum": {"42"}}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Trailer.Get("X-Checksum") != "abc" {
		t.Fatalf("client trailers: %v", resp.Trailer)
	}
	waitDone(t, s)
	x := s.List(0, "")[0]
	if x.Response.Trailer().Get("X-Checksum") != "abc" || x.Response.Trailer().Get("X-Late") != "late" {
		t.Errorf("response trailers: %v", x.Response.Trailer())
	}
	if x.Request.Trailer().Get("X-Req-Sum") != "42" {
		t.Errorf("request trailers: %v", x.Request.Trailer())
	}
}

func TestUpgradedConnectionsPassThrough(t *testing.T) {
	s, _, srv := serve(t, Config{}, TapOptions{Capture: true}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "echo")
		w.WriteHeader(http.StatusSwitchingProtocols)
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack through the capture: %v", err)
			return
		}
		defer conn.Close()
		brw.Flush()
		line, _ := brw.ReadString('\n')
		conn.Write([]byte("echo " + line))
	}))
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	io.WriteString(conn, "hi\n")
	if line, _ := br.ReadString('\n'); line != "echo hi\n" {
		t.Errorf("upgraded connection: %q", line)
	}
	conn.Close()
	waitDone(t, s)
	x := s.List(0, "")[0]
	if !x.Upgraded || x.Status != 101 {
		t.Errorf("exchange: upgraded %v status %d", x.Upgraded, x.Status)
	}
	// Its traffic was not captured, so it cannot be sent again.
	if _, err := x.ReplayRequest(context.Background(), Changes{}); !errors.Is(err, ErrNotReplayable) {
		t.Errorf("replaying an upgraded exchange: %v, want ErrNotReplayable", err)
	}
}

func TestBasicAuthCredentialsAreHidden(t *testing.T) {
	s, _, srv := serve(t, Config{}, TapOptions{Capture: true, MaskAuthorization: true}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, _ := r.BasicAuth(); u != "user" || p != "secret-pass" {
			t.Errorf("the handler must still see the credentials, got %q %q", u, p)
		}
	}))
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.SetBasicAuth("user", "secret-pass")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitDone(t, s)
	x := s.List(0, "")[0]
	for _, b := range [][]byte{x.RawRequest(), []byte(x.Request.Header().Get("Authorization"))} {
		if bytes.Contains(b, []byte("c2VjcmV0")) || bytes.Contains(b, []byte("dXNlcjpzZWNyZXQtcGFzcw")) {
			t.Errorf("password kept: %s", b)
		}
	}
	if x.Request.Header().Get("Authorization") != maskedAuthorization {
		t.Errorf("Authorization kept as %q", x.Request.Header().Get("Authorization"))
	}
}

func TestWithoutCaptureRequestsAreOnlyCounted(t *testing.T) {
	s, tap, srv := serve(t, Config{}, TapOptions{Capture: false}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	for range 3 {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if n := len(s.List(0, "")); n != 0 {
		t.Errorf("%d exchanges kept with capture off", n)
	}
	m := tap.Metrics().Snapshot()
	if m.HTTP.Count != 3 || m.HTTP.Errors != 3 || m.HTTP.P50 <= 0 {
		t.Errorf("http metrics: %+v", m.HTTP)
	}
}

func TestRawIsTheMessageInHTTP1Form(t *testing.T) {
	s, _, srv := serve(t, Config{}, TapOptions{Capture: true}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		w.Header()["X-Multi"] = []string{"one", "two"}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"id":7}`)
	}))
	req, _ := http.NewRequest("PUT", srv.URL+"/items/7?draft=1", strings.NewReader(`{"name":"x"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Add("Accept", "text/html")
	req.Header.Add("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitDone(t, s)
	x := s.Get(s.List(1, "")[0].ID)
	// What http.Header.Write renders, after the request or status line.
	var want bytes.Buffer
	fmt.Fprintf(&want, "PUT /items/7?draft=1 HTTP/1.1\r\nHost: %s\r\n", srv.Listener.Addr())
	x.Request.Header().Write(&want)
	want.WriteString("\r\n" + `{"name":"x"}`)
	if got := x.RawRequest(); string(got) != want.String() {
		t.Errorf("raw request:\n%q\nwant\n%q", got, want.String())
	}
	if h := x.Request.Header(); h.Get("Content-Type") != "application/json" || len(h["Accept"]) != 2 || h.Get("Host") != "" {
		t.Errorf("request headers: %v", h)
	}
	want.Reset()
	want.WriteString("HTTP/1.1 201 Created\r\n")
	x.Response.Header().Write(&want)
	want.WriteString("\r\n" + `{"id":7}`)
	if got := x.RawResponse(); string(got) != want.String() {
		t.Errorf("raw response:\n%q\nwant\n%q", got, want.String())
	}
	if h := x.Response.Header(); len(h["X-Multi"]) != 2 || x.Response.Proto != "HTTP/1.1" || x.Status != 201 {
		t.Errorf("response: %s %d %v", x.Response.Proto, x.Status, h)
	}
}
