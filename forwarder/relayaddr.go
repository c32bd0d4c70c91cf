package forwarder

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"porthole/wire"
)

// ParseRelayAddr reads a relay's agent address as people write it and
// returns it as host:port: "host:port", a bare "host" (the default agent
// port, wire.DefaultAgentPort), or the same behind "porthole://",
// "tls://" or "https://" and before a trailing slash, as a relay's address
// is often pasted. The port is the agent port in every form: a relay takes
// agents on its own port, not on its public HTTPS one.
func ParseRelayAddr(s string) (string, error) {
	addr := strings.TrimSpace(s)
	for _, scheme := range []string{"porthole://", "tls://", "https://"} {
		if strings.HasPrefix(strings.ToLower(addr), scheme) {
			addr = addr[len(scheme):]
			break
		}
	}
	addr = strings.TrimSuffix(addr, "/")
	bad := fmt.Errorf("relay address %q: want host:port, or a host alone for port %d", s, wire.DefaultAgentPort)
	if addr == "" || strings.ContainsAny(addr, "/?#@ ") {
		return "", bad
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		// No port: a host name, an IPv4 address, or a bare IPv6 address.
		host, port = strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]"), strconv.Itoa(wire.DefaultAgentPort)
		if strings.ContainsAny(host, "[]") || strings.Count(host, ":") == 1 {
			return "", bad
		}
	}
	if n, err := strconv.Atoi(port); err != nil || host == "" || n < 1 || n > 65535 {
		return "", bad
	}
	return net.JoinHostPort(host, port), nil
}
