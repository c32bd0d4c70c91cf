package forwarder

import "testing"

func TestParseRelayAddr(t *testing.T) {
	for in, want := range map[string]string{
		"relay.example.com:7835":           "relay.example.com:7835",
		"relay.example.com:9000":           "relay.example.com:9000",
		"relay.example.com":                "relay.example.com:7835",
		" relay.example.com ":              "relay.example.com:7835",
		"https://relay.example.com/":       "relay.example.com:7835",
		"HTTPS://relay.example.com":        "relay.example.com:7835",
		"porthole://relay.example.com:900": "relay.example.com:900",
		"tls://relay.example.com:900/":     "relay.example.com:900",
		"192.0.2.1":                        "192.0.2.1:7835",
		"[2001:db8::1]:900":                "[2001:db8::1]:900",
		"2001:db8::1":                      "[2001:db8::1]:7835",
		"[2001:db8::1]":                    "[2001:db8::1]:7835",
		"":                                 "",
		":7835":                            "",
		"relay.example.com:0":              "",
		"relay.example.com:99999":          "",
		"relay.example.com:http":           "",
		"https://relay.example.com/agents": "",
		"user@relay.example.com":           "",
		"ftp://relay.example.com":          "",
	} {
		got, err := ParseRelayAddr(in)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("ParseRelayAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
