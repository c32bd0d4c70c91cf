package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"porthole/forwarder"
	tt "porthole/internal/tunneltest"
	"porthole/wire"
)

func upstreamSaying(t *testing.T, body string) string {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }))
	t.Cleanup(up.Close)
	return up.URL
}

// TestLiveNameIsNeverTakenOver: on a relay without authentication, as with
// a shared token, a second agent asking for a live name is refused with a
// code, and the first keeps its name.
func TestLiveNameIsNeverTakenOver(t *testing.T) {
	srv := tt.StartRelay(t, tt.RelayConfig(t))
	_, st := tt.StartAgent(t, tt.AgentConfig(t, srv, httpTunnel(upstreamSaying(t, "first"))))
	err := runUntilFailed(t, tt.AgentConfig(t, srv, httpTunnel(upstreamSaying(t, "second"))))
	if !wire.IsCode(err, wire.CodeNameTaken) {
		t.Errorf("second agent: %v, want %s", err, wire.CodeNameTaken)
	}
	if _, body := get(t, tt.Client(srv), tt.URL(t, st, "http")); body != "first" {
		t.Errorf("the name now serves %q", body)
	}
}

// TestReplacedAgentIsTold: a session with the instance id of a live one
// replaces it at once, and the agent it displaced is told, reports the
// code and stops rather than fight for the name.
func TestReplacedAgentIsTold(t *testing.T) {
	srv := tt.StartRelay(t, tt.RelayConfig(t))
	cfgA := tt.AgentConfig(t, srv, httpTunnel(upstreamSaying(t, "first")))
	cfgA.InstanceID = "agent-instance-1"
	a, _ := tt.StartAgent(t, cfgA)

	cfgB := tt.AgentConfig(t, srv, httpTunnel(upstreamSaying(t, "second")))
	cfgB.InstanceID = cfgA.InstanceID
	_, st := tt.StartAgent(t, cfgB)
	failed := a.WaitPhase(t, forwarder.Failed)
	if !wire.IsCode(failed.Err, wire.CodeReplaced) {
		t.Errorf("displaced agent: %v, want %s", failed.Err, wire.CodeReplaced)
	}
	<-a.Done
	if !wire.IsCode(a.Err, wire.CodeReplaced) {
		t.Errorf("displaced agent's Run: %v", a.Err)
	}
	if _, body := get(t, tt.Client(srv), tt.URL(t, st, "http")); body != "second" {
		t.Errorf("the name serves %q after the replacement", body)
	}
}

// TestAgentBackAfterADeadLinkGetsItsNamesAtOnce: the relay has not noticed
// the dead link (its keepalive is long), yet the agent's new session gets
// its name back at once, because it carries the same instance id.
func TestAgentBackAfterADeadLinkGetsItsNamesAtOnce(t *testing.T) {
	rc := tt.RelayConfig(t)
	rc.KeepAliveInterval = time.Hour
	srv := tt.StartRelay(t, rc)
	bh := newBlackhole(t, srv.AgentAddr())
	cfg := tt.AgentConfig(t, srv, httpTunnel(upstreamSaying(t, "back")))
	cfg.RelayAddr = bh.ln.Addr().String()
	cfg.KeepAliveInterval = 100 * time.Millisecond
	a, st := tt.StartAgent(t, cfg)

	bh.killSilently()
	re := a.WaitPhase(t, forwarder.Reconnecting)
	if re.Err == nil {
		t.Fatal("no reason for the reconnect")
	}
	for s := range a.States {
		if s.Phase == forwarder.Online {
			break
		}
		if s.Phase != forwarder.Connecting {
			t.Fatalf("after the dead link: %v, want the first attempt to come online", s)
		}
	}
	if resp, body := get(t, tt.Client(srv), tt.URL(t, st, "http")); resp.StatusCode != 200 || body != "back" {
		t.Errorf("after the new session: %d %q", resp.StatusCode, body)
	}
}
