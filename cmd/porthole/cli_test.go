package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"porthole/settings"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bin is the porthole binary, built once with CGO_ENABLED=0 as users get it.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "porthole-cli")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "porthole")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		panic("building porthole with CGO_ENABLED=0 failed: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running porthole with its output as lines.
type proc struct {
	cmd    *exec.Cmd
	stdout chan string
	stderr *strings.Builder
	done   chan struct{}
}

func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	stderr := &strings.Builder{}
	cmd.Stderr = stderr
	p := startCmd(t, cmd)
	p.stderr = stderr
	return p
}

// startCmd starts cmd, a porthole (perhaps under a shell), with its
// standard output as lines; its standard error is the caller's to set up.
func startCmd(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, stdout: make(chan string, 100), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.stdout <- sc.Text()
		}
		close(p.stdout)
	}()
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
		if t.Failed() && p.stderr != nil {
			t.Logf("porthole %s stderr:\n%s", strings.Join(cmd.Args[1:min(2, len(cmd.Args))], " "), p.stderr)
		}
	})
	return p
}

// line waits for a stdout line matching re and returns its submatches.
func (p *proc) line(t *testing.T, re string) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-p.stdout:
			if !ok {
				t.Fatalf("porthole exited before printing %q", re)
			}
			if m := rx.FindStringSubmatch(l); m != nil {
				return m
			}
		case <-timeout:
			t.Fatalf("no line matching %q", re)
		}
	}
}

// stop sends sig and returns the exit code.
func (p *proc) stop(t *testing.T, sig os.Signal) int {
	t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("porthole did not exit")
	}
	return p.cmd.ProcessState.ExitCode()
}

func startRelay(t *testing.T, extra ...string) (agentAddr, httpAddr, fingerprint string, p *proc) {
	args := append([]string{"relay", "--addr", "127.0.0.1:0", "--http", "127.0.0.1:0", "--state-dir", t.TempDir()}, extra...)
	p = start(t, nil, args...)
	agentAddr = p.line(t, `^agents: (\S+)$`)[1]
	httpAddr = p.line(t, `^http: (\S+)$`)[1]
	fingerprint = p.line(t, `^fingerprint: ([0-9a-f]{64})$`)[1]
	return
}

func TestQuickStart(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello from :8000") }))
	defer up.Close()
	_, upPort, _ := net.SplitHostPort(up.Listener.Addr().String())

	agentAddr, httpAddr, fp, relay := startRelay(t, "--token", "s3cret")
	agent := start(t, []string{"PORTHOLE_TOKEN=s3cret"}, "http", upPort, "--relay", agentAddr, "--relay-fingerprint", fp, "--name", "app", "--web-addr=false")
	m := agent.line(t, `^forwarding (http://app\.localhost:(\d+)) -> (\S+)$`)
	if _, p, _ := net.SplitHostPort(httpAddr); m[2] != p {
		t.Errorf("public port %s, relay http on %s", m[2], httpAddr)
	}
	if m[3] != "http://localhost:"+upPort {
		t.Errorf("normalized upstream %q", m[3])
	}
	if body := getVia(t, httpAddr, m[1]+"/"); body != "hello from :8000" {
		t.Errorf("body %q", body)
	}
	if code := agent.stop(t, syscall.SIGINT); code != 0 {
		t.Errorf("agent exit %d after SIGINT, want 0", code)
	}
	if code := relay.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("relay exit %d after SIGTERM, want 0", code)
	}
	if strings.Contains(relay.stderr.String(), "s3cret") || strings.Contains(agent.stderr.String(), "s3cret") {
		t.Error("a token reached the logs")
	}
}

func runExit(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	done := make(chan struct{})
	go func() { cmd.Run(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("porthole %v hung", args)
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

func TestBadUsageExits2WithOneLine(t *testing.T) {
	relay := []string{"--relay", "127.0.0.1:1"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"http", "http://"}, `"http://"`},
		{[]string{"http", ":0"}, `":0"`},
		{[]string{"http", "99999"}, `"99999"`},
		{[]string{"http", "ftp://x"}, `"ftp://x"`},
		{[]string{"http"}, "UPSTREAM"},
		{[]string{"http", "8000", "9000"}, "UPSTREAM"},
		{[]string{"http", "8000", "--relay", ""}, "--relay"},
		{[]string{"http", "8000", "--upstream-protocol", "h3"}, "h3"},
		{[]string{"http", "8000", "--nope"}, "-nope"},
		{[]string{"http", "8000", "--token", "a", "--token-file", "f"}, "mutually exclusive"},
		{[]string{"tls", "8443"}, "--name"},
		{[]string{"http", "8000", "--url", "https://nodot/"}, "--url"},
		{[]string{"http", "8000", "--rate-limit", "5/d"}, "--rate-limit"},
		{[]string{"http", "8000", "--cidr-deny", "10.0.0.0/33"}, "--cidr-deny"},
		{[]string{"tcp", "5432", "--remote-port", "70000"}, "70000"},
		{[]string{"relay", "--tcp-ports", "9-1"}, "9-1"},
		{[]string{"relay", "--token", "a", "--tokens-file", "f"}, "mutually exclusive"},
		{[]string{"relay", "--token", "a", "--acme-email", "me@example.com"}, `"localhost"`},
		{[]string{"relay", "--token", "a", "--acme-email", "me@example.com", "--domain", "t.example.com", "--tls-cert", "c", "--tls-key", "k"}, "--tls-cert"},
		{[]string{"relay", "--acme-ca-root", "ca.pem"}, "--acme-ca-root"},
		// No open relay by accident: an empty or missing token is bad usage,
		// and --no-auth is for loopback only.
		{[]string{"relay", "--token", ""}, "--token is empty"},
		{[]string{"relay"}, "--no-auth"},
		{[]string{"relay", "--no-auth", "--addr", "0.0.0.0:0"}, "--no-auth"},
		{[]string{"relay", "--no-auth", "--http", ":0"}, "--no-auth"},
		{[]string{"relay", "--no-auth", "--token", "a"}, "--no-auth"},
		// Config errors name the flag, not the library's field.
		{[]string{"relay", "--token", "a", "--max-streams", "0"}, "--max-streams"},
		{[]string{"relay", "--token", "a", "--handshake-timeout", "-1s"}, "--handshake-timeout"},
		{[]string{"relay", "--token", "a", "--tls-cert", "c.pem"}, "--tls-key"},
		{[]string{"http", "8000", "--name", "Bad_Name"}, "--name"},
		{[]string{"http", "8000", "--web-addr", "4040"}, "--web-addr"},
		{[]string{"relay", "--token", "a", "--stream-window", "1KiB"}, "--stream-window"},
		{[]string{"relay", "--token", "a", "--stream-window", "2GiB"}, "stream window 2GiB"},
		{[]string{"http", "8000", "--stream-window", "100KiB"}, "--stream-window"},
		{[]string{"http", "8000", "--stream-window", "lots"}, `"lots"`},
		{[]string{"relay", "--token", "a", "--max-backlog", "1MiB"}, "--max-backlog"},
		{[]string{"relay", "--token", "a", "--max-backlog", "-1"}, `"-1"`},
		{[]string{"relay", "--token", "a", "--client-backlog", "1MiB"}, "--client-backlog"},
		{[]string{"relay", "--token", "a", "--client-backlog", "some"}, `"some"`},
		{[]string{"http", "8000", "--max-backlog", "1MiB"}, "--max-backlog"},
		{[]string{"http", "8000", "--max-backlog", "lots"}, `"lots"`},
		{[]string{"http", "8000", "--client-backlog", "1MiB"}, "--client-backlog"},
		{[]string{"tcp", "5432", "--client-backlog", "1MiB"}, "--client-backlog"},
		{[]string{"frobnicate"}, "frobnicate"},
	} {
		args := c.args
		if args[0] != "relay" && args[0] != "frobnicate" && !contains(args, "--relay") {
			args = append(args, relay...)
		}
		code, stderr := runExit(t, nil, args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != 2 || len(lines) != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("porthole %v: exit %d, stderr %q; want exit 2 and one line naming %q", args, code, stderr, c.want)
		}
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func TestRuntimeFailuresExit1(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"http", "8000", "--relay", "127.0.0.1:1", "--upstream-tls-verify-cas", "/does/not/exist"}, "/does/not/exist"},
		{[]string{"http", "8000", "--relay", "127.0.0.1:1", "--relay-ca", "/does/not/exist"}, "/does/not/exist"},
		{[]string{"http", "8000", "--relay", "127.0.0.1:1", "--token-file", "/does/not/exist"}, "/does/not/exist"},
		{[]string{"relay", "--token", "a", "--state-dir", dir, "--tls-cert", "/does/not/exist", "--tls-key", "/does/not/exist"}, "/does/not/exist"},
		{[]string{"relay", "--tokens-file", "/does/not/exist", "--state-dir", dir}, "/does/not/exist"},
	} {
		code, stderr := runExit(t, nil, c.args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != 1 || len(lines) != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("porthole %v: exit %d, stderr %q; want exit 1 and one line naming %q", c.args, code, stderr, c.want)
		}
	}
}

func TestTokenFile(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "via token file") }))
	defer up.Close()
	agentAddr, httpAddr, fp, _ := startRelay(t, "--token", "file-s3cret")
	good := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(good, []byte("file-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	agent := start(t, nil, "http", up.URL, "--relay", agentAddr, "--token-file", good, "--relay-fingerprint", fp, "--name", "tf", "--web-addr=false")
	m := agent.line(t, `^forwarding (http://tf\.localhost:\d+) -> `)
	if body := getVia(t, httpAddr, m[1]); body != "via token file" {
		t.Errorf("body %q", body)
	}
	bad := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(bad, []byte("wrong-file-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stderr := runExit(t, nil, "http", "8000", "--relay", agentAddr, "--token-file", bad, "--relay-fingerprint", fp, "--web-addr=false")
	if code != 1 || !strings.Contains(stderr, "auth_failed") || strings.Contains(stderr, "wrong-file-token") {
		t.Errorf("wrong token in a file: exit %d, stderr %q", code, stderr)
	}
}

// TestSecondAgentIsRefusedAndFirstKeepsItsName: a live name is never taken
// over; the agent that asked is told, and exits 1 with the code.
func TestSecondAgentIsRefusedAndFirstKeepsItsName(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "first") }))
	defer up.Close()
	agentAddr, httpAddr, fp, _ := startRelay(t, "--token", "shared")
	first := start(t, nil, "http", up.URL, "--relay", agentAddr, "--token", "shared", "--relay-fingerprint", fp, "--name", "web", "--web-addr=false")
	m := first.line(t, `^forwarding (http://web\.localhost:\d+) -> `)
	code, stderr := runExit(t, nil, "http", "9", "--relay", agentAddr, "--token", "shared", "--relay-fingerprint", fp, "--name", "web", "--web-addr=false")
	if code != 1 || !strings.Contains(stderr, "name_taken") {
		t.Errorf("second agent for a live name: exit %d, stderr %q", code, stderr)
	}
	if body := getVia(t, httpAddr, m[1]); body != "first" {
		t.Errorf("after the second agent was refused the first serves %q", body)
	}
}

func TestFatalErrorsExit1(t *testing.T) {
	agentAddr, _, fp, _ := startRelay(t, "--token", "s3cret")
	code, stderr := runExit(t, nil, "http", "8000", "--relay", agentAddr, "--token", "guess", "--relay-fingerprint", fp, "--web-addr=false")
	if code != 1 || !strings.Contains(stderr, "authentication failed") || !strings.Contains(stderr, "auth_failed") {
		t.Errorf("wrong token: exit %d, stderr %q", code, stderr)
	}
	if strings.Contains(stderr, "guess") {
		t.Errorf("the token reached stderr: %q", stderr)
	}
	wrong := strings.Repeat("0", 64)
	code, stderr = runExit(t, nil, "http", "8000", "--relay", agentAddr, "--token", "s3cret", "--relay-fingerprint", wrong, "--web-addr=false")
	if code != 1 || !strings.Contains(stderr, "fingerprint mismatch") {
		t.Errorf("pinned fingerprint mismatch: exit %d, stderr %q", code, stderr)
	}
	code, stderr = runExit(t, nil, "http", "8000", "--relay", agentAddr, "--token", "s3cret", "--web-addr=false")
	if code != 1 || !strings.Contains(stderr, "not trusted") {
		t.Errorf("self-signed relay against system roots: exit %d, stderr %q", code, stderr)
	}
}

func TestRelayKeepsItsCertificate(t *testing.T) {
	dir := t.TempDir()
	var fps []string
	for range 2 {
		p := start(t, nil, "relay", "--addr", "127.0.0.1:0", "--http", "", "--state-dir", dir, "--no-auth")
		fps = append(fps, p.line(t, `^fingerprint: ([0-9a-f]{64})$`)[1])
		if code := p.stop(t, syscall.SIGTERM); code != 0 {
			t.Errorf("relay exit %d", code)
		}
	}
	if fps[0] != fps[1] {
		t.Errorf("fingerprint changed across restarts: %s then %s", fps[0], fps[1])
	}
}

func TestStartSavedProfiles(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "saved profile") }))
	defer up.Close()
	agentAddr, httpAddr, fp, _ := startRelay(t, "--no-auth")
	config := t.TempDir()
	store := &settings.Store{Path: filepath.Join(config, "porthole", "profiles.json")}
	p := settings.Example()
	p.Name, p.BuiltinRelay, p.RelayAddr, p.RelayFingerprint, p.Upstream = "web", false, agentAddr, fp, up.URL
	if err := store.Save(settings.Data{Profiles: []settings.Profile{p}}); err != nil {
		t.Fatal(err)
	}
	env := []string{"XDG_CONFIG_HOME=" + config, "DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent"}

	code, stderr := runExit(t, env, "start", "nope")
	if code != 2 || !strings.Contains(stderr, `no profile named "nope" (saved: "web")`) {
		t.Errorf("unknown profile: exit %d, %q", code, stderr)
	}
	agent := start(t, env, "start", "web", "--web-addr", "127.0.0.1:0")
	m := agent.line(t, `^forwarding (http://myapp\.localhost:\d+) -> (\S+) \(web\)$`)
	if body := getVia(t, httpAddr, m[1]); body != "saved profile" {
		t.Errorf("body %q", body)
	}
	// The inspector lists the profile's tunnel under the profile's name.
	inspector := agent.line(t, `^inspect (http://127\.0\.0\.1:\d+)$`)[1]
	resp, err := http.Get(inspector + "/api/tunnels/web")
	if err != nil {
		t.Fatal(err)
	}
	var tunnel struct {
		PublicURL string `json:"public_url"`
	}
	json.NewDecoder(resp.Body).Decode(&tunnel)
	resp.Body.Close()
	if resp.StatusCode != 200 || tunnel.PublicURL != m[1] {
		t.Errorf("inspector: %d %+v", resp.StatusCode, tunnel)
	}
	// The request is captured under it (listed from its start).
	resp, err = http.Get(inspector + "/api/requests/http?tunnel_name=web")
	if err != nil {
		t.Fatal(err)
	}
	var captured struct {
		Requests []struct {
			TunnelName string `json:"tunnel_name"`
		}
	}
	json.NewDecoder(resp.Body).Decode(&captured)
	resp.Body.Close()
	if len(captured.Requests) != 1 {
		t.Errorf("captured: %+v", captured)
	}
	if code := agent.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// getVia GETs url through the relay's HTTP listener at addr, resolving the
// URL's *.localhost host to it as curl and browsers do, and returns the body.
func getVia(t *testing.T, addr, url string) string {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}}}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// TestStartFailsClosedAndExits: `porthole start` with a profile whose
// secret cannot be read, named twice, reports it and exits 1; a profiles
// file it cannot use is reported, exits 1, and is left as it is.
func TestStartFailsClosedAndExits(t *testing.T) {
	config := t.TempDir()
	store := &settings.Store{Path: filepath.Join(config, "porthole", "profiles.json")}
	web := settings.Example()
	web.Name, web.BuiltinRelay, web.RelayAddr, web.HasToken = "web", false, "127.0.0.1:1", true
	private := settings.Example()
	private.Name, private.BasicAuthUser = "private", "alice"
	if err := store.Save(settings.Data{Profiles: []settings.Profile{web, private}}); err != nil {
		t.Fatal(err)
	}
	// No keyring on this bus: the secrets the profiles say they have cannot be read.
	env := []string{"XDG_CONFIG_HOME=" + config, "DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent"}

	code, stderr := runExit(t, env, "start", "--web-addr=false", "web", "web", "WEB")
	if code != 1 || !strings.Contains(stderr, "web: the relay token could not be read") {
		t.Errorf("start web web: exit %d, %q", code, stderr)
	}
	code, stderr = runExit(t, env, "start", "--web-addr=false", "private")
	if code != 1 || !strings.Contains(stderr, "private: the basic-auth password could not be read") {
		t.Errorf("start private: exit %d, %q", code, stderr)
	}

	for name, content := range map[string]string{
		"corrupt":       "{not json",
		"newer version": `{"version": 99, "profiles": []}`,
	} {
		os.WriteFile(store.Path, []byte(content), 0o600)
		code, stderr := runExit(t, env, "start", "--web-addr=false", "--all")
		if code != 1 || !strings.Contains(stderr, store.Path) {
			t.Errorf("%s file: exit %d, %q", name, code, stderr)
		}
		if raw, _ := os.ReadFile(store.Path); string(raw) != content {
			t.Errorf("%s file changed: %q", name, raw)
		}
		if entries, _ := os.ReadDir(filepath.Dir(store.Path)); len(entries) != 1 {
			t.Errorf("%s file: the directory holds %d entries", name, len(entries))
		}
	}
}
