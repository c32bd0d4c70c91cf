package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// golden pins the JSON of every control message: each file in testdata
// decodes to its value and the value encodes back to the same bytes, so a
// renamed field or tag fails here before it reaches an agent or relay of
// another build.
var golden = []struct {
	file string
	msg  Message
}{
	{"hello.json", Message{Type: TypeHello, Hello: &Hello{Version: 2, Token: "s3cret", Agent: "porthole", Instance: "3QJUDNBGUSVNCOHUIH7PDI4UFO"}}},
	{"welcome.json", Message{Type: TypeWelcome, Welcome: &Welcome{Version: 2, SessionID: "a1b2c3d4e5f6", MaxStreams: 10000}}},
	{"bind.json", Message{Type: TypeBind, Bind: &Bind{TunnelID: 1, Proto: ProtoHTTP, Name: "app"}}},
	{"bind-tcp.json", Message{Type: TypeBind, Bind: &Bind{TunnelID: 2, Proto: ProtoTCP, RemotePort: 20001}}},
	{"bind-rules.json", Message{Type: TypeBind, Bind: &Bind{TunnelID: 3, Proto: ProtoHTTP, Hostname: "app.example.com",
		CIDRAllow: []string{"192.0.2.0/24", "2001:db8::/32"}, CIDRDeny: []string{"192.0.2.7/32"}}}},
	{"bound-rules.json", Message{Type: TypeBound, Bound: &Bound{TunnelID: 3, Name: "app.example.com", URLs: []string{"https://app.example.com"}, Rules: []string{RuleCIDR}}}},
	{"bound.json", Message{Type: TypeBound, Bound: &Bound{TunnelID: 1, Name: "app", URLs: []string{"http://app.localhost:8080", "https://app.localhost:8443"}}}},
	{"unbind.json", Message{Type: TypeUnbind, Unbind: &Unbind{TunnelID: 2}}},
	{"unbound.json", Message{Type: TypeUnbound, Unbound: &Unbind{TunnelID: 2}}},
	{"error.json", Message{Type: TypeError, Error: &Error{Code: CodeNameTaken, Message: `name "app" is in use by another agent`}, ErrorFor: 1}},
	{"error-session.json", Message{Type: TypeError, Error: &Error{Code: CodeReplaced, Message: "a newer session of this agent took over"}}},
	{"drain.json", Message{Type: TypeDrain}},
}

func TestGoldenControlMessages(t *testing.T) {
	covered := map[string]bool{}
	for _, g := range golden {
		t.Run(g.file, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join("testdata", g.file))
			if err != nil {
				t.Fatal(err)
			}
			want = bytes.TrimSuffix(want, []byte("\n"))
			// Decode the golden bytes as a peer would, framing included.
			framed := binary.BigEndian.AppendUint32(nil, uint32(len(want)))
			got, err := ReadMessage(bytes.NewReader(append(framed, want...)))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(*got, g.msg) {
				t.Errorf("decoded %+v, want %+v", *got, g.msg)
			}
			// Encode the value back: the same bytes, the same framing.
			var buf bytes.Buffer
			if err := WriteMessage(&buf, &g.msg); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), append(framed, want...)) {
				t.Errorf("encoded\n%s\nwant\n%s", buf.Bytes()[4:], want)
			}
		})
		covered[g.msg.Type] = true
	}
	for _, typ := range []string{TypeHello, TypeWelcome, TypeBind, TypeBound, TypeUnbind, TypeUnbound, TypeError, TypeDrain} {
		if !covered[typ] {
			t.Errorf("no golden file for %q messages", typ)
		}
	}
}

// TestGoldenCodes pins the error codes' wire spelling, which agents of
// other builds branch on.
func TestGoldenCodes(t *testing.T) {
	want := map[Code]string{
		CodeBadVersion: "bad_version", CodeAuthFailed: "auth_failed", CodeBadRequest: "bad_request",
		CodeHandshakeTimeout: "handshake_timeout", CodeProtocol: "protocol_error", CodeRateLimited: "rate_limited",
		CodeReplaced: "replaced", CodeNameTaken: "name_taken", CodeNameInvalid: "name_invalid",
		CodeNameDenied: "name_reserved", CodePortTaken: "port_unavailable", CodeNoPorts: "no_ports",
		CodeTunnelLimit: "tunnel_limit", CodePortLimit: "port_limit", CodeUnsupported: "unsupported",
		CodeInternal: "internal",
	}
	for c, s := range want {
		b, _ := json.Marshal(c)
		if string(b) != `"`+s+`"` {
			t.Errorf("code %s encodes as %s", s, b)
		}
	}
}
