package main

import (
	"flag"
	"strings"

	"porthole/forwarder"
	"porthole/wire"
)

// accessFlags are an agent's access rules for its tunnel, and its custom
// hostname.
type accessFlags struct {
	allow, deny listFlag
	rateLimit   string
	proxy       bool
	url         string
}

func (a *accessFlags) register(fs *flag.FlagSet, proto wire.Proto) {
	if proto != wire.ProtoTCP {
		fs.StringVar(&a.url, "url", "", "a full hostname this agent's token owns at the relay, instead of --name")
	}
	fs.Var(&a.allow, "cidr-allow", "let only clients in this CIDR through, at the relay (repeat or comma-separate)")
	fs.Var(&a.deny, "cidr-deny", "refuse clients in this CIDR, at the relay (repeat or comma-separate)")
	if proto == wire.ProtoHTTP {
		fs.StringVar(&a.rateLimit, "rate-limit", "", "requests per client address, as N/s, N/m or N/h (429 beyond)")
	} else {
		fs.BoolVar(&a.proxy, "proxy-protocol", false, "send a PROXY protocol v2 header with the client's address to the upstream")
	}
}

func (a *accessFlags) apply(t *forwarder.Tunnel) error {
	t.CIDRAllow, t.CIDRDeny, t.ProxyProtocol = a.allow, a.deny, a.proxy
	// --url takes a hostname, or a URL for it ("https://app.example.com").
	host := a.url
	if _, rest, ok := strings.Cut(host, "://"); ok {
		host = rest
	}
	t.Hostname = strings.ToLower(strings.TrimSuffix(host, "/"))
	if a.rateLimit != "" {
		rl, err := forwarder.ParseRateLimit(a.rateLimit)
		if err != nil {
			return usagef("--rate-limit: %v", err)
		}
		t.RateLimit = rl
	}
	return nil
}

// listFlag is a flag that may be repeated, each value possibly a
// comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}
