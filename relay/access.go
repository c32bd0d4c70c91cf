package relay

import (
	"errors"
	"net"
	"net/netip"

	"porthole/wire"
)

// ErrIPDenied is why a public connection was refused by its tunnel's
// address rules, before the relay opened a stream for it: a refused client
// costs the agent nothing.
var ErrIPDenied = errors.New("relay: the tunnel's address rules refuse this client")

// maxAccessPrefixes bounds the prefixes one tunnel may list; a bind with
// more is refused.
const maxAccessPrefixes = 256

// accessRules are a tunnel's client address rules (wire.RuleCIDR): a
// client in a denied prefix is refused; so is one outside every allowed
// prefix, when there are any. The zero value lets everyone through.
type accessRules struct {
	allow, deny []netip.Prefix
}

// parseAccess reads a bind's address rules.
func parseAccess(req wire.Bind) (accessRules, error) {
	var a accessRules
	if len(req.CIDRAllow)+len(req.CIDRDeny) > maxAccessPrefixes {
		return a, wire.Errorf(wire.CodeBadRequest, "more than %d address prefixes", maxAccessPrefixes)
	}
	for _, list := range []struct {
		in  []string
		out *[]netip.Prefix
	}{{req.CIDRAllow, &a.allow}, {req.CIDRDeny, &a.deny}} {
		for _, s := range list.in {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return a, wire.Errorf(wire.CodeBadRequest, "bad address prefix %q: want CIDR notation such as 192.0.2.0/24", s)
			}
			*list.out = append(*list.out, p.Masked())
		}
	}
	return a, nil
}

// rules lists the rules in force, for Bound.Rules.
func (a accessRules) rules() []string {
	if len(a.allow)+len(a.deny) == 0 {
		return nil
	}
	return []string{wire.RuleCIDR}
}

// allows reports whether the rules let a public client through.
func (a accessRules) allows(client net.Addr) bool {
	if len(a.allow)+len(a.deny) == 0 {
		return true
	}
	ap, err := netip.ParseAddrPort(client.String())
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range a.deny {
		if p.Contains(ip) {
			return false
		}
	}
	if len(a.allow) == 0 {
		return true
	}
	for _, p := range a.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
