package engine

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"porthole/forwarder"
	"porthole/inspect"
	tt "porthole/internal/tunneltest"
	"porthole/settings"
)

// TestAgentAPIStartsProfilesAndAdHocTunnels drives the desktop's agent API:
// saved profiles start and stop by name, an ad-hoc tunnel runs on the
// built-in relay, and requests through either are captured and replayed.
func TestAgentAPIStartsProfilesAndAdHocTunnels(t *testing.T) {
	seen := make(chan string, 10)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Method + " " + r.RequestURI
		io.WriteString(w, "up")
	}))
	defer up.Close()
	local := localRelay(t)
	store := inspect.NewStore(inspect.DefaultConfig())
	m := New(Config{LocalRelay: local, Inspect: store, Logger: tt.Logger(t)})
	t.Cleanup(func() { m.Shutdown(t.Context()) })
	p := settings.Example()
	p.Name, p.Subdomain, p.Upstream = "web", "web", up.URL
	api := httptest.NewServer(inspect.NewAPI(store, m.API(func() []settings.Profile { return []settings.Profile{p} }), tt.Logger(t)))
	defer api.Close()

	call := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, api.URL+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}

	// Nothing runs yet; a name that is no profile, without an addr, is unknown.
	if code, out := call("GET", "/api/tunnels", ""); code != 200 || len(out["tunnels"].([]any)) != 0 {
		t.Fatalf("tunnels at start: %d %v", code, out)
	}
	if code, _ := call("POST", "/api/tunnels", `{"name":"nope"}`); code != 404 {
		t.Errorf("unknown profile: %d", code)
	}

	// The saved profile starts by name, and answers through its tunnel.
	code, web := call("POST", "/api/tunnels", `{"name":"web"}`)
	if code != 201 || !strings.HasPrefix(web["public_url"].(string), "http://web.localhost:") {
		t.Fatalf("start profile: %d %v", code, web)
	}
	if !m.Status(p.ID).Running {
		t.Error("the profile's status does not say it runs")
	}
	srv, _ := local.Ensure()
	resp, err := tt.Client(srv).Get(web["public_url"].(string) + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	<-seen
	if got := m.Metrics(p.ID).Requests(); got != 1 {
		t.Errorf("the profile counted %d requests", got)
	}

	// An ad-hoc tunnel on the built-in relay, beside it.
	code, ad := call("POST", "/api/tunnels", `{"name":"scratch","addr":"`+tt.HostPort(up.URL)+`","subdomain":"scratch"}`)
	if code != 201 || !strings.HasPrefix(ad["public_url"].(string), "http://scratch.localhost:") {
		t.Fatalf("ad-hoc: %d %v", code, ad)
	}
	if code, _ := call("POST", "/api/tunnels", `{"name":"web","addr":"80"}`); code != 409 {
		t.Errorf("an ad-hoc tunnel named like a profile: %d", code)
	}
	_, list := call("GET", "/api/tunnels", "")
	var names []string
	for _, e := range list["tunnels"].([]any) {
		names = append(names, e.(map[string]any)["name"].(string))
	}
	if strings.Join(names, ",") != "web,web (https),scratch,scratch (https)" {
		t.Errorf("tunnels: %v", names)
	}

	// The captured request replays to the profile's upstream.
	x := store.List(1, "web")
	if len(x) != 1 {
		t.Fatalf("captured: %v", x)
	}
	if code, out := call("POST", "/api/requests/http", `{"id":"`+x[0].ID+`"}`); code != 204 {
		t.Fatalf("replay: %d %v", code, out)
	}
	if got := <-seen; got != "GET /hello" {
		t.Errorf("replay reached the upstream as %q", got)
	}

	// DELETE stops both; the profile's status says stopped.
	for _, name := range []string{"web", "scratch"} {
		if code, out := call("DELETE", "/api/tunnels/"+name, ""); code != 204 {
			t.Errorf("stop %s: %d %v", name, code, out)
		}
	}
	if s := m.Status(p.ID); s.Running {
		t.Errorf("after DELETE the profile runs: %+v", s)
	}
	if code, out := call("GET", "/api/tunnels", ""); code != 200 || len(out["tunnels"].([]any)) != 0 {
		t.Errorf("tunnels at the end: %d %v", code, out)
	}
	if code, _ := call("DELETE", "/api/tunnels/web", ""); code != 404 {
		t.Errorf("stopping a stopped profile: %d", code)
	}
}

// TestCountOnlyKeepsNoRequests: with CountOnly the profiles' requests are
// counted, not kept.
func TestCountOnlyKeepsNoRequests(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "up") }))
	defer up.Close()
	local := localRelay(t)
	store := inspect.NewStore(inspect.DefaultConfig())
	changes := make(watch, 100)
	m := New(Config{LocalRelay: local, Inspect: store, CountOnly: true, Logger: tt.Logger(t), OnChange: changes.onChange})
	t.Cleanup(func() { m.Shutdown(t.Context()) })
	p := settings.Example()
	p.Upstream = up.URL
	m.Start(p)
	st := changes.wait(t, p.ID, forwarder.Online)
	srv, _ := local.Ensure()
	resp, err := tt.Client(srv).Get(st.Forwarding[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	metrics := m.Metrics(p.ID)
	for {
		changed := metrics.Changed()
		if metrics.Totals().Requests == 1 {
			break
		}
		select {
		case <-changed:
		case <-time.After(10 * time.Second):
			t.Fatalf("counted %+v", metrics.Totals())
		}
	}
	if n := len(store.List(0, "")); n != 0 {
		t.Errorf("%d requests kept", n)
	}
}
