package e2e

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"porthole/forwarder"
	tt "porthole/internal/tunneltest"
	"porthole/relay"
	"porthole/wire"
)

func TestAddAndRemoveTunnelsOnALiveSession(t *testing.T) {
	rc := tt.RelayConfig(t)
	rc.Tokens, rc.NoAuth = []relay.Token{{Secret: "token-a"}, {Secret: "token-b"}}, false
	srv := tt.StartRelay(t, rc)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "second") }))
	defer up.Close()
	cfg := tt.AgentConfig(t, srv, httpTunnel("8000"))
	cfg.Token = "token-a"
	a, _ := tt.StartAgent(t, cfg)
	ctx := context.Background()

	second := httpTunnel(up.URL)
	second.Name, second.Label = "second", "api-second"
	info, err := a.F.AddTunnel(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	if info.Label != "api-second" || len(info.URLs) != 2 {
		t.Fatalf("added tunnel: %+v", info)
	}
	// The new address is in the next state, beside the first tunnel's.
	if st := a.WaitPhase(t, forwarder.Online); len(st.Forwarding) != 4 {
		t.Errorf("forwarding after add: %+v", st.Forwarding)
	}
	if resp, body := get(t, tt.Client(srv), info.URLs[0]); resp.StatusCode != 200 || body != "second" {
		t.Errorf("added tunnel answers %d %q", resp.StatusCode, body)
	}
	if got := a.F.Tunnels(); len(got) != 2 || got[0].Label != "app" || got[1].Label != "api-second" {
		t.Errorf("tunnels: %+v", got)
	}

	// Labels are unique; a name another token holds is the relay's coded refusal.
	if _, err := a.F.AddTunnel(ctx, second); !errors.Is(err, forwarder.ErrTunnelExists) {
		t.Errorf("same label again: %v", err)
	}
	cfgB := tt.AgentConfig(t, srv, forwarder.Tunnel{Proto: wire.ProtoHTTP, Upstream: "8000", Name: "other"})
	cfgB.Token = "token-b"
	b, _ := tt.StartAgent(t, cfgB)
	if _, err := a.F.AddTunnel(ctx, forwarder.Tunnel{Proto: wire.ProtoHTTP, Upstream: "8000", Name: "other"}); !wire.IsCode(err, wire.CodeNameTaken) {
		t.Errorf("name held by another token: %v", err)
	}
	b.Stop()

	// Removing unbinds at the relay: the public address stops routing here.
	if err := a.F.RemoveTunnel("api-second"); err != nil {
		t.Fatal(err)
	}
	if st := a.WaitPhase(t, forwarder.Online); len(st.Forwarding) != 2 {
		t.Errorf("forwarding after remove: %+v", st.Forwarding)
	}
	resp, _ := get(t, tt.Client(srv), info.URLs[0])
	if resp.StatusCode != 503 || resp.Header.Get("Porthole-Error") != "PH-503-TUNNEL-OFFLINE" {
		t.Errorf("removed tunnel: %d %q", resp.StatusCode, resp.Header.Get("Porthole-Error"))
	}
	if err := a.F.RemoveTunnel("api-second"); !errors.Is(err, forwarder.ErrTunnelNotFound) {
		t.Errorf("removing twice: %v", err)
	}
	// The same token gets the name back at once.
	if _, err := a.F.AddTunnel(ctx, second); err != nil {
		t.Errorf("adding again: %v", err)
	}

	// Tunnels added over the API survive a reconnect, at the same address.
	tcp, err := a.F.AddTunnel(ctx, forwarder.Tunnel{Proto: wire.ProtoTCP, Upstream: "8000"})
	if err != nil || !strings.HasPrefix(tcp.Label, "tcp-") || len(tcp.URLs) != 1 {
		t.Fatalf("tcp tunnel: %+v, %v", tcp, err)
	}
	srv.Close()
	a.WaitPhase(t, forwarder.Reconnecting)
	rc.AgentAddr, rc.HTTPAddr, rc.HTTPSAddr = srv.AgentAddr(), srv.HTTPAddr(), srv.HTTPSAddr()
	srv2 := tt.StartRelay(t, rc)
	st := a.WaitPhase(t, forwarder.Online)
	if len(st.Forwarding) != 5 {
		t.Errorf("forwarding after reconnect: %+v", st.Forwarding)
	}
	if resp, body := get(t, tt.Client(srv2), info.URLs[0]); resp.StatusCode != 200 || body != "second" {
		t.Errorf("added tunnel after reconnect answers %d %q", resp.StatusCode, body)
	}
	if got := a.F.Tunnels(); len(got) != 3 || got[2].URLs[0] != tcp.URLs[0] {
		t.Errorf("tunnels after reconnect: %+v", got)
	}
}

func TestAddTunnelWhileOffline(t *testing.T) {
	srv := tt.StartRelay(t, tt.RelayConfig(t))
	a, _ := tt.StartAgent(t, tt.AgentConfig(t, srv, httpTunnel("8000")))
	srv.Close()
	a.WaitPhase(t, forwarder.Reconnecting)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.F.AddTunnel(ctx, forwarder.Tunnel{Proto: wire.ProtoHTTP, Upstream: "8000"}); !errors.Is(err, forwarder.ErrOffline) {
		t.Errorf("offline: %v", err)
	}
	if _, err := a.F.AddTunnel(ctx, forwarder.Tunnel{Proto: wire.ProtoHTTP, Upstream: "0"}); err == nil {
		t.Error("a bad upstream was accepted")
	}
}
