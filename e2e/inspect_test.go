package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"porthole/forwarder"
	"porthole/inspect"
	tt "porthole/internal/tunneltest"
	"porthole/relay"
	"porthole/wire"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// seen is one request as the upstream received it.
type seen struct {
	Method, URI string
	Header      http.Header
	Body        string
}

// recordingUpstream answers "hello" and reports every request it gets.
func recordingUpstream(t *testing.T) (*httptest.Server, chan seen) {
	ch := make(chan seen, 100)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- seen{r.Method, r.RequestURI, r.Header.Clone(), string(b)}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Date", "masked")
		io.WriteString(w, "hello")
	}))
	t.Cleanup(up.Close)
	return up, ch
}

func next(t *testing.T, ch chan seen) seen {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream saw no request")
		return seen{}
	}
}

// inspected runs a relay and an agent whose inspector serves on loopback.
type inspected struct {
	srv   *relay.Server
	agent *tt.Agent
	store *inspect.Store
	api   *inspect.Server
	state forwarder.State
}

func startInspected(t *testing.T, cfg inspect.Config, tunnels ...forwarder.Tunnel) *inspected {
	t.Helper()
	in := &inspected{srv: tt.StartRelay(t, tt.RelayConfig(t)), store: inspect.NewStore(cfg)}
	ac := tt.AgentConfig(t, in.srv, tunnels...)
	ac.Inspect = in.store
	in.agent, in.state = tt.StartAgent(t, ac)
	ln, err := inspect.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	in.api = inspect.Serve(ln, inspect.NewAPI(in.store, in.agent.F.InspectAgent(), tt.Logger(t)), tt.Logger(t))
	t.Cleanup(func() { in.api.Close() })
	return in
}

// call sends a request to the agent API and decodes a JSON answer into out.
func (in *inspected) call(t *testing.T, method, path, body string, out any) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, in.api.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if m, ok := out.(*map[string]any); ok {
		*m = nil // decode afresh, not into the last answer
	}
	if out != nil && len(b) > 0 {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q", method, path, ct)
		}
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return resp
}

// volatile names JSON fields whose values change from run to run.
var volatile = map[string]bool{
	"id": true, "start": true, "duration": true, "replay_of": true, "bytes": true,
	"rate1": true, "rate5": true, "rate15": true, "p50": true, "p90": true, "p95": true, "p99": true,
	"raw": true, "bytes_in": true, "bytes_out": true, "X-Forwarded-For": true, "User-Agent": true,
}

var (
	portRE = regexp.MustCompile(`(127\.0\.0\.1|localhost|port)([: ])\d+\b`)
	idRE   = regexp.MustCompile(`\b[0-9a-f]{16}\b`)
)

// golden compares v, with volatile fields masked, to testdata/inspect/NAME.json.
func golden(t *testing.T, name string, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	var generic any
	json.Unmarshal(b, &generic)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	enc.Encode(mask(generic))
	out := portRE.ReplaceAll(buf.Bytes(), []byte("$1${2}PORT"))
	out = idRE.ReplaceAll(out, []byte("<id>"))
	path := filepath.Join("testdata", "inspect", name+".json")
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		os.WriteFile(path, out, 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(out, want) {
		t.Errorf("%s differs from %s:\n%s", name, path, out)
	}
}

func mask(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if volatile[k] && x != nil {
				switch x.(type) {
				case string:
					if x != "" {
						v[k] = "<" + k + ">"
					}
				case []any:
					v[k] = []any{"<" + k + ">"}
				default:
					v[k] = "<" + k + ">"
				}
				continue
			}
			v[k] = mask(x)
		}
	case []any:
		for i := range v {
			v[i] = mask(v[i])
		}
	}
	return v
}

func TestAgentAPIFollowsNgrokShapes(t *testing.T) {
	up, upstream := recordingUpstream(t)
	tun := httpTunnel(up.URL)
	tun.Label = "command_line"
	in := startInspected(t, inspect.DefaultConfig(), tun)
	publicURL := tt.URL(t, in.state, "http")
	client := tt.Client(in.srv)

	var tunnels struct {
		Tunnels []struct {
			Name      string
			PublicURL string `json:"public_url"`
		}
	}
	// The README's one-liner: .tunnels[0].public_url is the first forwarding URL.
	var raw map[string]any
	in.call(t, "GET", "/api/tunnels", "", &raw)
	golden(t, "tunnels", raw)
	b, _ := json.Marshal(raw)
	json.Unmarshal(b, &tunnels)
	if tunnels.Tunnels[0].PublicURL != in.state.Forwarding[0].URL {
		t.Errorf("tunnels[0].public_url = %q, want %q", tunnels.Tunnels[0].PublicURL, in.state.Forwarding[0].URL)
	}

	// One request through the tunnel, then its capture.
	req, _ := http.NewRequest("POST", publicURL+"/hooks/github?delivery=7", strings.NewReader(`{"action":"opened"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature", "sha1=abc")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	original := next(t, upstream)
	waitFinished(t, in.store)

	var list struct {
		Requests []struct {
			ID       string
			Request  struct{ Raw []byte }
			Response struct {
				StatusCode int `json:"status_code"`
			}
		}
	}
	in.call(t, "GET", "/api/requests/http?limit=10", "", &raw)
	golden(t, "requests", raw)
	b, _ = json.Marshal(raw)
	json.Unmarshal(b, &list)
	if len(list.Requests) != 1 || list.Requests[0].Response.StatusCode != 200 {
		t.Fatalf("requests: %s", b)
	}
	id := list.Requests[0].ID

	var detail struct {
		Request  struct{ Raw string }
		Response struct{ Raw string }
	}
	in.call(t, "GET", "/api/requests/http/"+id, "", &raw)
	golden(t, "request", raw)
	b, _ = json.Marshal(raw)
	json.Unmarshal(b, &detail)
	reqRaw, _ := base64.StdEncoding.DecodeString(detail.Request.Raw)
	respRaw, _ := base64.StdEncoding.DecodeString(detail.Response.Raw)
	if !strings.HasPrefix(string(reqRaw), "POST /hooks/github?delivery=7 HTTP/1.1\r\n") || !strings.HasSuffix(string(reqRaw), "\r\n\r\n"+`{"action":"opened"}`) {
		t.Errorf("raw request:\n%s", reqRaw)
	}
	if !strings.HasPrefix(string(respRaw), "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(string(respRaw), "\r\n\r\nhello") {
		t.Errorf("raw response:\n%s", respRaw)
	}

	// Replay: the upstream gets the same method, path, headers and body.
	if resp := in.call(t, "POST", "/api/requests/http", `{"id":"`+id+`"}`, nil); resp.StatusCode != 204 {
		t.Fatalf("replay: %d", resp.StatusCode)
	}
	again := next(t, upstream)
	if again.Method != original.Method || again.URI != original.URI || again.Body != original.Body || !sameHeaders(again.Header, original.Header) {
		t.Errorf("replay differs:\n original %+v\n replayed %+v", original, again)
	}
	// It is captured and marked as a replay.
	var after struct {
		Requests []struct {
			ID       string
			ReplayOf string `json:"replay_of"`
		}
	}
	in.call(t, "GET", "/api/requests/http", "", &after)
	if len(after.Requests) != 2 || after.Requests[0].ReplayOf != id {
		t.Errorf("after replay: %+v", after.Requests)
	}

	// Replay with changes: another method, path, header and body.
	change := `{"id":"` + id + `","method":"PUT","uri":"/other","headers":{"X-Changed":["yes"],"Content-Type":["text/plain"]},"body":"changed"}`
	if resp := in.call(t, "POST", "/api/requests/http", change, nil); resp.StatusCode != 204 {
		t.Fatalf("replay with changes: %d", resp.StatusCode)
	}
	changed := next(t, upstream)
	if changed.Method != "PUT" || changed.URI != "/other" || changed.Body != "changed" || changed.Header.Get("X-Changed") != "yes" || changed.Header.Get("X-Hub-Signature") != "" {
		t.Errorf("changed replay: %+v", changed)
	}

	// Errors are JSON with error_code, status_code and msg.
	in.call(t, "GET", "/api/requests/http/nope", "", &raw)
	golden(t, "error-request-not-found", raw)
	in.call(t, "GET", "/api/tunnels/nope", "", &raw)
	golden(t, "error-tunnel-not-found", raw)
	in.call(t, "POST", "/api/tunnels", `{"addr":"0"}`, &raw)
	golden(t, "error-invalid-tunnel", raw)
	if resp := in.call(t, "PUT", "/api/tunnels", "", &raw); resp.StatusCode != 405 {
		t.Errorf("PUT: %d", resp.StatusCode)
	}
	golden(t, "error-method", raw)

	in.call(t, "GET", "/api/status", "", &raw)
	golden(t, "status", raw)

	// Prometheus metrics under the relay's names: the request and both replays.
	resp, err = http.Get(in.api.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	prom, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`porthole_http_requests_total{status="200",tunnel="command_line"} 3`,
		`porthole_public_connections_total{protocol="http",tunnel="command_line"} 1`,
		`porthole_received_bytes_total{tunnel="command_line"}`,
	} {
		if !strings.Contains(string(prom), want) {
			t.Errorf("/metrics lacks %s:\n%s", want, prom)
		}
	}

	// HAR: one request, or the list.
	var har struct {
		Log struct {
			Version string
			Entries []struct {
				Request  struct{ Method, URL string }
				Response struct{ Status int }
			}
		}
	}
	in.call(t, "GET", "/api/har/"+id, "", &har)
	if har.Log.Version != "1.2" || len(har.Log.Entries) != 1 || har.Log.Entries[0].Request.URL != publicURL+"/hooks/github?delivery=7" || har.Log.Entries[0].Response.Status != 200 {
		t.Errorf("HAR of one: %+v", har)
	}
	in.call(t, "GET", "/api/har", "", &har)
	if len(har.Log.Entries) != 3 || har.Log.Entries[0].Request.Method != "POST" || har.Log.Entries[2].Request.Method != "PUT" {
		t.Errorf("HAR of the list (oldest first): %+v", har.Log.Entries)
	}

	// DELETE clears the captures.
	if resp := in.call(t, "DELETE", "/api/requests/http", "", nil); resp.StatusCode != 204 {
		t.Errorf("delete requests: %d", resp.StatusCode)
	}
	in.call(t, "GET", "/api/requests/http", "", &after)
	if len(after.Requests) != 0 {
		t.Errorf("after delete: %+v", after.Requests)
	}
}

// sameHeaders compares the headers an upstream saw, leaving out those that
// describe the connection rather than the request.
func sameHeaders(a, b http.Header) bool {
	keys := func(h http.Header) string {
		var ks []string
		for k, v := range h {
			if k != "Accept-Encoding" {
				ks = append(ks, k+"="+strings.Join(v, ","))
			}
		}
		sort.Strings(ks)
		return strings.Join(ks, "\n")
	}
	return keys(a) == keys(b)
}

// waitFinished waits until every kept exchange has its response.
func waitFinished(t *testing.T, s *inspect.Store) {
	t.Helper()
	ch, cancel := s.Subscribe()
	defer cancel()
	deadline := time.After(10 * time.Second)
	for {
		pending := false
		for _, x := range s.List(0, "") {
			pending = pending || !x.Done
		}
		if !pending {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatal("exchanges did not finish")
		}
	}
}

func TestAgentAPIStartsAndStopsTunnels(t *testing.T) {
	up, _ := recordingUpstream(t)
	in := startInspected(t, inspect.DefaultConfig(), httpTunnel(up.URL))
	var raw map[string]any
	resp := in.call(t, "POST", "/api/tunnels", `{"name":"second","addr":"`+tt.HostPort(up.URL)+`","proto":"http","subdomain":"second","inspect":false}`, &raw)
	if resp.StatusCode != 201 {
		t.Fatalf("start: %d %v", resp.StatusCode, raw)
	}
	golden(t, "tunnel-started", raw)
	publicURL := raw["public_url"].(string)
	if r, body := get(t, tt.Client(in.srv), publicURL); r.StatusCode != 200 || body != "hello" {
		t.Errorf("started tunnel answers %d %q", r.StatusCode, body)
	}
	in.call(t, "GET", "/api/tunnels/second", "", &raw)
	if raw["public_url"] != publicURL || raw["config"].(map[string]any)["inspect"] != false {
		t.Errorf("tunnel detail: %v", raw)
	}
	// The same name again is a conflict; the relay's refusal is a 502.
	if resp := in.call(t, "POST", "/api/tunnels", `{"name":"second","addr":"80"}`, &raw); resp.StatusCode != 409 {
		t.Errorf("same name: %d %v", resp.StatusCode, raw)
	}
	_, httpPort, _ := strings.Cut(in.srv.HTTPAddr(), ":")
	if resp := in.call(t, "POST", "/api/tunnels", `{"name":"third","addr":"80","proto":"tcp","remote_addr":"`+httpPort+`"}`, &raw); resp.StatusCode != 502 {
		t.Errorf("refused by the relay: %d %v", resp.StatusCode, raw)
	}
	golden(t, "error-start-failed", raw)

	if resp := in.call(t, "DELETE", "/api/tunnels/second", "", nil); resp.StatusCode != 204 {
		t.Errorf("stop: %d", resp.StatusCode)
	}
	if resp := in.call(t, "GET", "/api/tunnels/second", "", &raw); resp.StatusCode != 404 {
		t.Errorf("after stop: %d", resp.StatusCode)
	}
	if r, _ := get(t, tt.Client(in.srv), publicURL); r.StatusCode != 503 {
		t.Errorf("stopped tunnel answers %d", r.StatusCode)
	}
	if resp := in.call(t, "DELETE", "/api/tunnels/second", "", &raw); resp.StatusCode != 404 {
		t.Errorf("stop twice: %d", resp.StatusCode)
	}
}

func TestAgentAPIRefusesRebindingAndCrossSiteWrites(t *testing.T) {
	in := startInspected(t, inspect.DefaultConfig(), httpTunnel("8000"))
	do := func(method, host, origin, ctype, body string) int {
		req, _ := http.NewRequest(method, in.api.URL()+"/api/tunnels", strings.NewReader(body))
		if host != "" {
			req.Host = host
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("CORS header sent: %q", resp.Header.Get("Access-Control-Allow-Origin"))
		}
		return resp.StatusCode
	}
	_, port, _ := strings.Cut(in.api.Addr(), ":")
	body := `{"addr":"80","name":"x"}`
	for _, c := range []struct {
		name                              string
		method, host, origin, ctype, body string
		want                              int
	}{
		{"rebinding GET", "GET", "attacker.example:" + port, "", "", "", 403},
		{"rebinding POST", "POST", "attacker.example:" + port, "", "application/json", body, 403},
		{"other port", "GET", "127.0.0.1:1", "", "", "", 403},
		{"localhost", "GET", "localhost:" + port, "", "", "", 200},
		{"cross-site POST", "POST", "", "http://attacker.example", "application/json", body, 403},
		{"form POST", "POST", "", "", "text/plain", body, 415},
	} {
		if got := do(c.method, c.host, c.origin, c.ctype, c.body); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

func TestCaptureCapsAndBudgetThroughTheTunnel(t *testing.T) {
	up, upstream := recordingUpstream(t)
	in := startInspected(t, inspect.Config{BodyCap: 1 << 10, Budget: 64 << 10}, httpTunnel(up.URL))
	client := tt.Client(in.srv)
	publicURL := tt.URL(t, in.state, "http")
	body := strings.Repeat("x", 10<<10)
	var first string
	for i := range 100 {
		resp, err := client.Post(fmt.Sprintf("%s/n/%d", publicURL, i), "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := next(t, upstream); got.Body != body {
			t.Fatalf("the upstream got %d bytes of %d", len(got.Body), len(body))
		}
		if i == 0 {
			first = in.store.List(1, "")[0].ID
		}
		if used := in.store.Used(); used > 64<<10 {
			t.Fatalf("store holds %d bytes, over its budget", used)
		}
	}
	waitFinished(t, in.store)
	var raw map[string]any
	if resp := in.call(t, "GET", "/api/requests/http/"+first, "", &raw); resp.StatusCode != 404 {
		t.Errorf("the oldest request is still there: %d", resp.StatusCode)
	}
	var list struct {
		Requests []struct {
			Request struct {
				URI       string
				BodySize  int64 `json:"body_size"`
				Truncated bool
			}
		}
	}
	in.call(t, "GET", "/api/requests/http", "", &list)
	if n := len(list.Requests); n < 10 || n >= 100 {
		t.Fatalf("%d requests kept", n)
	}
	r := list.Requests[0].Request
	if r.URI != "/n/99" || r.BodySize != 10<<10 || !r.Truncated {
		t.Errorf("newest request: %+v", r)
	}
	// A truncated body cannot be replayed as captured.
	x := in.store.List(1, "")[0]
	if resp := in.call(t, "POST", "/api/requests/http", `{"id":"`+x.ID+`"}`, &raw); resp.StatusCode != 400 || raw["error_code"] != float64(inspect.CodeNotReplayable) {
		t.Errorf("replaying a truncated body: %d %v", resp.StatusCode, raw)
	}
}

func TestTCPTunnelsAreCountedNotInspected(t *testing.T) {
	echo := tt.Listen(t)
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	in := startInspected(t, inspect.DefaultConfig(), forwarder.Tunnel{Proto: wire.ProtoTCP, Upstream: echo.Addr().String()})
	addr := tt.HostPort(in.state.Forwarding[0].URL)
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "ping")
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("echo: %q %v", buf, err)
		}
		c.Close()
	}
	// The counters settle once the agent has seen each connection end.
	m := in.agent.F.Tunnels()[0].Tap.Metrics()
	for {
		changed := m.Changed()
		if c := m.Snapshot().Conns; c.Count == 3 && c.Gauge == 0 {
			break
		}
		select {
		case <-changed:
		case <-time.After(10 * time.Second):
			t.Fatalf("conns: %+v", m.Snapshot().Conns)
		}
	}
	var tunnels struct {
		Tunnels []struct {
			Proto   string
			Config  struct{ Inspect bool }
			Metrics inspect.Snapshot
		}
	}
	in.call(t, "GET", "/api/tunnels", "", &tunnels)
	if c := tunnels.Tunnels[0].Metrics.Conns; c.Count != 3 || c.BytesIn != 12 || c.BytesOut != 12 || tunnels.Tunnels[0].Proto != "tcp" || tunnels.Tunnels[0].Config.Inspect {
		t.Errorf("tcp tunnel: %+v", tunnels.Tunnels[0])
	}
	if n := len(in.store.List(0, "")); n != 0 {
		t.Errorf("%d exchanges kept for a tcp tunnel", n)
	}
}

// TestBasicAuthPasswordNeverShown: a tunnel's basic-auth credentials are
// hidden in what the inspector keeps and serves, and a replay still
// reaches the upstream (the tunnel's auth guards the public side only).
func TestBasicAuthPasswordNeverShown(t *testing.T) {
	up, upstream := recordingUpstream(t)
	tun := httpTunnel(up.URL)
	tun.BasicAuth = "alice:s3cret-pass"
	in := startInspected(t, inspect.DefaultConfig(), tun)
	req, _ := http.NewRequest("GET", tt.URL(t, in.state, "http")+"/private", nil)
	req.SetBasicAuth("alice", "s3cret-pass")
	resp, err := tt.Client(in.srv).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := next(t, upstream); got.Header.Get("Authorization") != "" {
		t.Fatalf("the upstream got the tunnel's credentials: %v", got.Header)
	}
	waitFinished(t, in.store)
	id := in.store.List(1, "")[0].ID
	secret := []string{"s3cret-pass", base64.StdEncoding.EncodeToString([]byte("alice:s3cret-pass"))}
	for _, path := range []string{"/api/requests/http", "/api/requests/http/" + id, "/api/har/" + id} {
		resp, err := http.Get(in.api.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var detail struct{ Request struct{ Raw []byte } } // raw is base64 in the JSON
		json.Unmarshal(b, &detail)
		for _, text := range []string{string(b), string(detail.Request.Raw)} {
			for _, s := range secret {
				if strings.Contains(text, s) {
					t.Errorf("%s shows the password:\n%s", path, text)
				}
			}
		}
	}
	if resp := in.call(t, "POST", "/api/requests/http", `{"id":"`+id+`"}`, nil); resp.StatusCode != 204 {
		t.Fatalf("replay: %d", resp.StatusCode)
	}
	if got := next(t, upstream); got.URI != "/private" || got.Header.Get("Authorization") != "" {
		t.Errorf("replayed as %+v", got)
	}
}
