package netutil

import "net/netip"

// ClientKey returns the address a per-client limit counts an "ip:port" by:
// the IPv4 address, or the /64 of an IPv6 address (which one host is
// usually given whole). An address that does not parse counts as the zero
// address.
func ClientKey(addr string) netip.Addr {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return netip.Addr{}
	}
	ip := ap.Addr().Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		ip = p.Addr()
	}
	return ip
}

// NetworkKey returns the network a client address belongs to, as one
// party usually holds it whole: the IPv4 /24, or the IPv6 /48. Limits that
// pick whom to drop count by it, so that the many addresses of one network
// (cheap to come by) cannot make someone elsewhere look the heaviest.
func NetworkKey(a netip.Addr) netip.Prefix {
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits)
	return p
}
