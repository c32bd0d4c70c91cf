package forwarder

import (
	"errors"
	"reflect"
	"testing"

	"porthole/inspect"
	"porthole/wire"
)

func TestTunnelFromAPI(t *testing.T) {
	no := false
	for _, c := range []struct {
		name string
		req  inspect.TunnelRequest
		want Tunnel
		bad  bool
	}{
		{"ngrok's example", inspect.TunnelRequest{Addr: "22", Proto: "tcp", Name: "ssh"},
			Tunnel{Label: "ssh", Proto: wire.ProtoTCP, Upstream: "22"}, false},
		{"http by default", inspect.TunnelRequest{Addr: "8080", Subdomain: "app", Auth: "u:p", HostHeader: "rewrite", Inspect: &no},
			Tunnel{Proto: wire.ProtoHTTP, Upstream: "8080", Name: "app", BasicAuth: "u:p", HostHeader: "rewrite", NoInspect: true}, false},
		{"basic_auth list", inspect.TunnelRequest{Addr: "80", BasicAuth: []string{"a:b"}},
			Tunnel{Proto: wire.ProtoHTTP, Upstream: "80", BasicAuth: "a:b"}, false},
		{"remote_addr host:port", inspect.TunnelRequest{Addr: "22", Proto: "tcp", RemoteAddr: "1.tcp.example:20001"},
			Tunnel{Proto: wire.ProtoTCP, Upstream: "22", RemotePort: 20001}, false},
		{"upstream options", inspect.TunnelRequest{Addr: "https://localhost:8443", UpstreamProtocol: "http2", UpstreamTLSVerify: true, UpstreamTLSVerifyCAs: "ca.pem"},
			Tunnel{Proto: wire.ProtoHTTP, Upstream: "https://localhost:8443", UpstreamHTTP2: true, UpstreamTLSVerify: true, UpstreamCAFile: "ca.pem"}, false},
		{"tls termination", inspect.TunnelRequest{Addr: "tls://localhost:8443", Proto: "tls", Subdomain: "app", Crt: "c.pem", Key: "k.pem"},
			Tunnel{Proto: wire.ProtoTLS, Upstream: "tls://localhost:8443", Name: "app", TerminateCertFile: "c.pem", TerminateKeyFile: "k.pem"}, false},
		{"ip restriction", inspect.TunnelRequest{Addr: "80", IPRestriction: &inspect.IPRestriction{AllowCIDRs: []string{"10.0.0.0/8"}, DenyCIDRs: []string{"10.1.0.0/16"}}},
			Tunnel{Proto: wire.ProtoHTTP, Upstream: "80", CIDRAllow: []string{"10.0.0.0/8"}, CIDRDeny: []string{"10.1.0.0/16"}}, false},
		{"no addr", inspect.TunnelRequest{Proto: "http"}, Tunnel{}, true},
		{"unknown proto", inspect.TunnelRequest{Addr: "80", Proto: "udp"}, Tunnel{}, true},
		{"bad upstream protocol", inspect.TunnelRequest{Addr: "80", UpstreamProtocol: "h3"}, Tunnel{}, true},
		{"bad remote_addr", inspect.TunnelRequest{Addr: "22", Proto: "tcp", RemoteAddr: "x"}, Tunnel{}, true},
		{"two credentials", inspect.TunnelRequest{Addr: "80", BasicAuth: []string{"a:b", "c:d"}}, Tunnel{}, true},
		{"name with parentheses", inspect.TunnelRequest{Addr: "80", Name: "web (https)"}, Tunnel{}, true},
	} {
		got, err := TunnelFromAPI(c.req)
		if c.bad {
			if !errors.Is(err, inspect.ErrInvalid) {
				t.Errorf("%s: err %v, want ErrInvalid", c.name, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %+v, %v\nwant %+v", c.name, got, err, c.want)
		}
	}
}

func TestAPIErrorMapping(t *testing.T) {
	for _, c := range []struct {
		err  error
		want error
	}{
		{ErrTunnelNotFound, inspect.ErrNotFound},
		{ErrTunnelExists, inspect.ErrExists},
		{ErrOffline, inspect.ErrUnavailable},
		{ErrInvalidTunnel, inspect.ErrInvalid},
		{ErrNotReplayable, inspect.ErrNotReplayable},
		{wire.Errorf(wire.CodeNameInvalid, "x"), inspect.ErrInvalid},
		{wire.Errorf(wire.CodeNameTaken, "x"), inspect.ErrStartFailed},
	} {
		if got := APIError(c.err); !errors.Is(got, c.want) || !errors.Is(got, c.err) {
			t.Errorf("APIError(%v) = %v, want it to wrap %v", c.err, got, c.want)
		}
	}
	if APIError(nil) != nil {
		t.Error("APIError(nil) is not nil")
	}
}
