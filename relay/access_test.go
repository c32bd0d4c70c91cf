package relay

import (
	"net"
	"testing"

	"porthole/wire"
)

func TestAccessRules(t *testing.T) {
	addr := func(s string) net.Addr { a, _ := net.ResolveTCPAddr("tcp", s); return a }
	for _, c := range []struct {
		allow, deny []string
		client      string
		want        bool
	}{
		{nil, nil, "192.0.2.1:1", true},
		{[]string{"192.0.2.0/24"}, nil, "192.0.2.1:1", true},
		{[]string{"192.0.2.0/24"}, nil, "198.51.100.1:1", false},
		{nil, []string{"192.0.2.0/24"}, "192.0.2.1:1", false},
		{nil, []string{"192.0.2.0/24"}, "198.51.100.1:1", true},
		{[]string{"192.0.2.0/24"}, []string{"192.0.2.7/32"}, "192.0.2.7:1", false}, // deny wins
		{[]string{"192.0.2.0/24"}, []string{"192.0.2.7/32"}, "192.0.2.8:1", true},
		{[]string{"2001:db8::/32"}, nil, "[2001:db8::1]:1", true},
		{[]string{"2001:db8::/32"}, nil, "192.0.2.1:1", false},
		{[]string{"192.0.2.0/24"}, nil, "[::ffff:192.0.2.1]:1", true}, // mapped IPv4
	} {
		a, err := parseAccess(wire.Bind{CIDRAllow: c.allow, CIDRDeny: c.deny})
		if err != nil {
			t.Fatal(err)
		}
		if got := a.allows(addr(c.client)); got != c.want {
			t.Errorf("allow %v deny %v: %s allowed %v, want %v", c.allow, c.deny, c.client, got, c.want)
		}
	}
	if _, err := parseAccess(wire.Bind{CIDRDeny: []string{"nope"}}); !wire.IsCode(err, wire.CodeBadRequest) {
		t.Errorf("bad prefix: %v", err)
	}
	many := make([]string, maxAccessPrefixes+1)
	for i := range many {
		many[i] = "192.0.2.0/24"
	}
	if _, err := parseAccess(wire.Bind{CIDRAllow: many}); !wire.IsCode(err, wire.CodeBadRequest) {
		t.Errorf("too many prefixes: %v", err)
	}
}
