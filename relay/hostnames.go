package relay

import (
	"fmt"
	"strings"

	"porthole/wire"
)

// A tunnel's public name is a label under the relay's domain ("app" for
// app.tunnels.example.com), or a full hostname that the tokens file gives
// to one token ("app.example.com", whose DNS points at the relay). The
// registry keys both the same way: a key with a dot is a full hostname.

// requestedName checks a bind's name or hostname and returns its registry
// key ("" for a random name or a tcp tunnel). Only the token that owns a
// hostname may bind it.
func (s *Server) requestedName(req wire.Bind, owner identity) (string, error) {
	switch {
	case req.Hostname != "" && req.Name != "":
		return "", wire.Errorf(wire.CodeBadRequest, "give a name or a hostname, not both")
	case req.Hostname != "":
		host := strings.ToLower(req.Hostname)
		if err := wire.ValidHostname(host); err != nil {
			return "", err
		}
		if label, ok := strings.CutSuffix(host, "."+s.cfg.Domain); ok && !strings.Contains(label, ".") {
			return label, nil // a name under the domain, spelled in full
		}
		if !s.reg.reservedFor(host, owner) {
			return "", wire.Errorf(wire.CodeNameDenied, "hostname %q is not one of this token's (the relay's tokens file gives hostnames to tokens)", host)
		}
		return host, nil
	case req.Name != "":
		return req.Name, wire.ValidName(req.Name)
	}
	return "", nil
}

// hostOf is the public hostname of a registry key.
func (s *Server) hostOf(key string) string {
	if strings.Contains(key, ".") {
		return key
	}
	return key + "." + s.cfg.Domain
}

// checkReservedName checks a name the tokens file reserves for a token: a
// label, or a full hostname outside the relay's domain.
func checkReservedName(n, domain string) error {
	if !strings.Contains(n, ".") {
		return wire.ValidName(n)
	}
	if err := wire.ValidHostname(n); err != nil {
		return err
	}
	if label, ok := strings.CutSuffix(n, "."+domain); ok && !strings.Contains(label, ".") {
		return fmt.Errorf("%q is under the relay's domain: reserve just %q", n, label)
	}
	return nil
}
