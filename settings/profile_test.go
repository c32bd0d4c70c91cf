package settings

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"porthole/wire"
)

func valid() Profile {
	p := Example()
	p.Name = "web"
	return p
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	cases := []struct {
		name  string
		edit  func(*Profile)
		field Field // "" means valid
		says  string
	}{
		{"example is valid", func(p *Profile) {}, "", ""},
		{"empty name", func(p *Profile) { p.Name = "  " }, FieldName, "name"},
		{"remote relay needs an address", func(p *Profile) { p.BuiltinRelay = false }, FieldRelayAddr, "host:port"},
		{"bad relay address", func(p *Profile) { p.BuiltinRelay, p.RelayAddr = false, "relay.example" }, FieldRelayAddr, `"relay.example"`},
		{"bad relay port", func(p *Profile) { p.BuiltinRelay, p.RelayAddr = false, "relay:99999" }, FieldRelayAddr, "host:port"},
		{"good remote relay", func(p *Profile) { p.BuiltinRelay, p.RelayAddr = false, "relay.example:7835" }, "", ""},
		{"bad fingerprint", func(p *Profile) {
			p.BuiltinRelay, p.RelayAddr, p.RelayFingerprint = false, "r:1", "abc"
		}, FieldFingerprint, "64 hex"},
		{"missing relay CA", func(p *Profile) {
			p.BuiltinRelay, p.RelayAddr, p.RelayCAFile = false, "r:1", filepath.Join(dir, "nope.pem")
		}, FieldRelayCA, "no such file"},
		{"relay CA is not PEM", func(p *Profile) {
			p.BuiltinRelay, p.RelayAddr, p.RelayCAFile = false, "r:1", notPEM
		}, FieldRelayCA, "no PEM"},
		{"bad upstream port", func(p *Profile) { p.Upstream = "99999" }, FieldUpstream, "out of range"},
		{"bad upstream scheme", func(p *Profile) { p.Upstream = "ftp://x" }, FieldUpstream, `"ftp"`},
		{"empty upstream", func(p *Profile) { p.Upstream = "" }, FieldUpstream, "Empty"},
		{"bad subdomain", func(p *Profile) { p.Subdomain = "My_App" }, FieldSubdomain, "lowercase"},
		{"tls needs a subdomain", func(p *Profile) { p.Type, p.Subdomain, p.Upstream = wire.ProtoTLS, "", "8443" }, FieldSubdomain, "need a subdomain"},
		{"tcp port range", func(p *Profile) { p.Type, p.RemotePort, p.Upstream = wire.ProtoTCP, 70000, "22" }, FieldRemotePort, "1-65535"},
		{"tcp upstream rejects http", func(p *Profile) { p.Type, p.Upstream = wire.ProtoTCP, "http://localhost:1" }, FieldUpstream, "Scheme"},
		{"no type", func(p *Profile) { p.Type = 0 }, FieldType, "HTTP, TCP or TLS"},
		{"upstream CA missing", func(p *Profile) { p.VerifyUpstreamTLS, p.UpstreamCAFile = true, filepath.Join(dir, "x") }, FieldUpstreamCA, "Cannot read"},
		{"basic auth user with colon", func(p *Profile) { p.BasicAuthUser = "a:b" }, FieldBasicAuth, "colon"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := valid()
			c.edit(&p)
			bad := p.Validate()
			if c.field == "" {
				if len(bad) != 0 {
					t.Fatalf("unexpected problems: %v", bad)
				}
				return
			}
			if !strings.Contains(bad[c.field], c.says) {
				t.Errorf("problem at %s = %q, want it to say %q (all: %v)", c.field, bad[c.field], c.says, bad)
			}
			if len(bad) != 1 {
				t.Errorf("want one problem, got %v", bad)
			}
		})
	}
}

func TestNormalizedUpstreamShownLive(t *testing.T) {
	for in, want := range map[string]string{"443": "https://localhost:443", "8000": "http://localhost:8000", "app:80": "http://app:80"} {
		p := valid()
		p.Upstream = in
		if got, err := p.NormalizedUpstream(); err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestTunnelFromProfile(t *testing.T) {
	p := valid()
	p.RewriteHost, p.UpstreamHTTP2, p.BasicAuthUser = true, true, "alice"
	tun := p.Tunnel(Secrets{BasicAuthPassword: "pw"})
	if tun.Name != "myapp" || tun.HostHeader != "rewrite" || !tun.UpstreamHTTP2 || tun.BasicAuth != "alice:pw" || tun.Proto != wire.ProtoHTTP {
		t.Errorf("http tunnel: %+v", tun)
	}
	p.Type, p.RemotePort, p.Upstream = wire.ProtoTCP, 20001, "22"
	tun = p.Tunnel(Secrets{})
	if tun.Name != "" || tun.RemotePort != 20001 || tun.HostHeader != "" {
		t.Errorf("tcp tunnel: %+v", tun)
	}
}
