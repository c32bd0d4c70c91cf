package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// needProgram skips a test whose outside program is missing, except where
// the full check runs (PORTHOLE_DESKTOP_TESTS=require), where it fails.
func needProgram(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			if os.Getenv("PORTHOLE_DESKTOP_TESTS") == "require" {
				t.Fatalf("%s is required (scripts/deps.sh test installs it)", name)
			}
			t.Skipf("%s not installed", name)
		}
	}
}

// upstreamRecorder answers every request and reports what it received.
type upstreamRecorder struct {
	*httptest.Server
	seen chan string // "METHOD URI BODY"
}

func newUpstreamRecorder(t *testing.T) *upstreamRecorder {
	u := &upstreamRecorder{seen: make(chan string, 16)}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.seen <- r.Method + " " + r.RequestURI + " " + string(b)
		io.WriteString(w, "ok")
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstreamRecorder) next(t *testing.T) string {
	t.Helper()
	select {
	case s := <-u.seen:
		return s
	case <-time.After(30 * time.Second):
		t.Fatal("the upstream saw no request")
		return ""
	}
}

func post(t *testing.T, relayHTTP, url, body string) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", relayHTTP)
	}}}
	resp, err := client.Post(url, "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
}

// inspectedAgent runs a relay and `porthole http` with its inspector on a
// free loopback port, and returns the public URL and the inspector's.
func inspectedAgent(t *testing.T, upstream string) (publicURL, inspector, relayHTTP string, agent *proc) {
	agentAddr, httpAddr, fp, _ := startRelay(t, "--token", "s3cret")
	_, upPort, _ := net.SplitHostPort(upstream)
	agent = start(t, []string{"PORTHOLE_TOKEN=s3cret"}, "http", upPort, "--relay", agentAddr, "--relay-fingerprint", fp,
		"--name", "app", "--web-addr", "127.0.0.1:0")
	publicURL = agent.line(t, `^forwarding (\S+) -> `)[1]
	inspector = agent.line(t, `^inspect (http://127\.0\.0\.1:\d+)$`)[1]
	return publicURL, inspector, httpAddr, agent
}

func TestInspectorOneLinerPrintsThePublicURL(t *testing.T) {
	needProgram(t, "curl", "jq")
	up := newUpstreamRecorder(t)
	publicURL, inspector, _, agent := inspectedAgent(t, up.Listener.Addr().String())
	out, err := exec.Command("sh", "-c", "curl -s "+inspector+"/api/tunnels | jq -r '.tunnels[0].public_url'").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != publicURL {
		t.Errorf("the one-liner printed %q, want %q", got, publicURL)
	}
	if code := agent.stop(t, syscall.SIGINT); code != 0 {
		t.Errorf("exit %d", code)
	}
}

func TestWebAddrFalseServesNothing(t *testing.T) {
	agentAddr, _, fp, _ := startRelay(t, "--token", "s3cret")
	agent := start(t, []string{"PORTHOLE_TOKEN=s3cret"}, "http", "8000", "--relay", agentAddr, "--relay-fingerprint", fp, "--web-addr=false")
	agent.line(t, `^forwarding `)
	agent.stop(t, syscall.SIGINT)
	for l := range agent.stdout {
		if strings.HasPrefix(l, "inspect ") {
			t.Errorf("with --web-addr=false the agent printed %q", l)
		}
	}
}

// TestNgrokClientDrivesTheAPI runs the API client of the ngrok npm package,
// a client nobody here wrote, against a real agent: it lists, starts and
// stops tunnels, reads and replays a request, and clears them.
func TestNgrokClientDrivesTheAPI(t *testing.T) {
	needProgram(t, "node", "npm")
	dir := t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json", "drive.js"} {
		b, err := os.ReadFile(filepath.Join("testdata", "ngrok-client", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	// The pinned lock file, without install scripts: the package's own
	// binary is never fetched.
	npm := exec.Command("npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline")
	npm.Dir = dir
	if out, err := npm.CombinedOutput(); err != nil {
		t.Fatalf("npm ci: %v\n%s", err, out)
	}

	up := newUpstreamRecorder(t)
	publicURL, inspector, relayHTTP, _ := inspectedAgent(t, up.Listener.Addr().String())
	post(t, relayHTTP, publicURL+"/webhook?n=1", "payload")
	if got := up.next(t); got != "POST /webhook?n=1 payload" {
		t.Fatalf("upstream saw %q", got)
	}

	node := exec.Command("node", "drive.js", inspector, up.Listener.Addr().String())
	node.Dir = dir
	var stderr strings.Builder
	node.Stderr = &stderr
	out, err := node.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	var got struct {
		Listed   []string
		Started  string
		Detail   string
		Replayed bool
		Raw      string
		Stopped  bool
		Missing  struct {
			Name       string
			ErrorCode  int `json:"error_code"`
			StatusCode int `json:"status_code"`
		}
		Cleared bool
		Left    int
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(got.Listed) == 0 || got.Listed[0] != publicURL {
		t.Errorf("listTunnels: %v, want %s first", got.Listed, publicURL)
	}
	if !strings.HasPrefix(got.Started, "http://fromnode.localhost:") || got.Detail != got.Started {
		t.Errorf("startTunnel %q, tunnelDetail %q", got.Started, got.Detail)
	}
	if !got.Replayed {
		t.Error("replayRequest did not get 204")
	}
	if r := up.next(t); r != "POST /webhook?n=1 payload" {
		t.Errorf("the replay reached the upstream as %q", r)
	}
	if !strings.HasPrefix(got.Raw, "POST /webhook?n=1 HTTP/1.1\r\n") || !strings.HasSuffix(got.Raw, "\r\n\r\npayload") {
		t.Errorf("requestDetail raw: %q", got.Raw)
	}
	if !got.Stopped || got.Missing.Name != "NgrokClientError" || got.Missing.ErrorCode != 100 || got.Missing.StatusCode != 404 {
		t.Errorf("stopTunnel %v, then tunnelDetail failed with %+v", got.Stopped, got.Missing)
	}
	if !got.Cleared || got.Left != 0 {
		t.Errorf("deleteAllRequests %v, %d requests left", got.Cleared, got.Left)
	}
}
