package forwarder

import (
	"errors"
	"strings"
	"testing"

	"porthole/wire"
)

func TestParseUpstream(t *testing.T) {
	tests := []struct {
		in    string
		proto wire.Proto
		want  string
	}{
		// The reference table.
		{"http://localhost:1234", wire.ProtoHTTP, "http://localhost:1234"},
		{"https://localhost:1234", wire.ProtoHTTP, "https://localhost:1234"},
		{"localhost:1234", wire.ProtoHTTP, "http://localhost:1234"},
		{"1234", wire.ProtoHTTP, "http://localhost:1234"},
		{"localhost:443", wire.ProtoHTTP, "https://localhost:443"},
		{"443", wire.ProtoHTTP, "https://localhost:443"},
		// Only 443 exactly means https.
		{"4430", wire.ProtoHTTP, "http://localhost:4430"},
		{"localhost:4430", wire.ProtoHTTP, "http://localhost:4430"},
		{"http://localhost:443", wire.ProtoHTTP, "http://localhost:443"},
		// Default ports, case, trailing slash, IPs.
		{"http://example.internal", wire.ProtoHTTP, "http://example.internal:80"},
		{"https://example.internal", wire.ProtoHTTP, "https://example.internal:443"},
		{"HTTP://LocalHost:8080/", wire.ProtoHTTP, "http://localhost:8080"},
		{"127.0.0.1:9000", wire.ProtoHTTP, "http://127.0.0.1:9000"},
		{"[::1]:9000", wire.ProtoHTTP, "http://[::1]:9000"},
		{"https://[::1]:9443", wire.ProtoHTTP, "https://[::1]:9443"},
		// TCP and TLS tunnels.
		{"5432", wire.ProtoTCP, "tcp://localhost:5432"},
		{"db.internal:5432", wire.ProtoTCP, "tcp://db.internal:5432"},
		{"443", wire.ProtoTCP, "tcp://localhost:443"},
		{"tls://localhost:8443", wire.ProtoTCP, "tls://localhost:8443"},
		{"tcp://localhost:22", wire.ProtoTCP, "tcp://localhost:22"},
		{"8443", wire.ProtoTLS, "tcp://localhost:8443"},
		{"tls://localhost:8443", wire.ProtoTLS, "tls://localhost:8443"},
	}
	for _, tt := range tests {
		t.Run(tt.proto.String()+"/"+tt.in, func(t *testing.T) {
			u, err := ParseUpstream(tt.in, tt.proto)
			if err != nil {
				t.Fatalf("ParseUpstream(%q) error: %v", tt.in, err)
			}
			if got := u.String(); got != tt.want {
				t.Errorf("ParseUpstream(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseUpstreamErrors(t *testing.T) {
	tests := []struct {
		in     string
		proto  wire.Proto
		reason string
	}{
		{"", wire.ProtoHTTP, "empty"},
		{"http://", wire.ProtoHTTP, "empty host"},
		{":0", wire.ProtoHTTP, "empty host"},
		{"localhost:0", wire.ProtoHTTP, "out of range"},
		{"0", wire.ProtoHTTP, "out of range"},
		{"99999", wire.ProtoHTTP, "out of range"},
		{"localhost:65536", wire.ProtoHTTP, "out of range"},
		{"ftp://x", wire.ProtoHTTP, `scheme "ftp"`},
		{"tls://localhost:1", wire.ProtoHTTP, `scheme "tls"`},
		{"http://localhost:1", wire.ProtoTCP, `scheme "http"`},
		{"http://localhost:8080/app", wire.ProtoHTTP, "path"},
		{"http://localhost:8080/?q=1", wire.ProtoHTTP, "query"},
		{"http://u:p@localhost:8080", wire.ProtoHTTP, "credentials"},
		{"http://:8080", wire.ProtoHTTP, "empty host"},
		{"localhost", wire.ProtoHTTP, "want a port"},
		{"localhost:http", wire.ProtoHTTP, "bad port"},
		{"tcp://localhost", wire.ProtoTCP, "port is required"},
		{"localhost:-1", wire.ProtoHTTP, "bad port"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseUpstream(tt.in, tt.proto)
			var ue *UpstreamError
			if !errors.As(err, &ue) {
				t.Fatalf("ParseUpstream(%q) error = %v, want *UpstreamError", tt.in, err)
			}
			if !strings.Contains(err.Error(), tt.reason) || !strings.Contains(err.Error(), `"`+tt.in+`"`) {
				t.Errorf("ParseUpstream(%q) error = %q, want it to name the input and contain %q", tt.in, err, tt.reason)
			}
		})
	}
}
