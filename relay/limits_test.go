package relay

import (
	"net"
	"testing"
)

func TestClientKeyCountsIPv6ByItsSlash64(t *testing.T) {
	key := func(s string) clientKey {
		addr, err := net.ResolveTCPAddr("tcp", s)
		if err != nil {
			t.Fatal(err)
		}
		return clientKeyOf(addr)
	}
	same := [][2]string{
		{"192.0.2.1:1000", "192.0.2.1:2000"},
		{"[2001:db8:1:2::1]:1000", "[2001:db8:1:2:ffff::9]:2000"},
		{"[::ffff:192.0.2.1]:1000", "192.0.2.1:2000"},
	}
	for _, p := range same {
		if key(p[0]) != key(p[1]) {
			t.Errorf("%s and %s count apart", p[0], p[1])
		}
	}
	apart := [][2]string{
		{"192.0.2.1:1000", "192.0.2.2:1000"},
		{"[2001:db8:1:2::1]:1000", "[2001:db8:1:3::1]:1000"},
	}
	for _, p := range apart {
		if key(p[0]) == key(p[1]) {
			t.Errorf("%s and %s count together", p[0], p[1])
		}
	}
}
