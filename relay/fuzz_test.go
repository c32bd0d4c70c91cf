package relay

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzRequestHead feeds the relay's routing read what a public client could
// send: it must never panic, never read past its limit, and hand back
// exactly the bytes it read, to be replayed to the agent.
func FuzzRequestHead(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: app.localhost\r\n\r\n",
		"POST /up HTTP/1.1\r\nHost: app.localhost:8080\r\nContent-Length: 5\r\n\r\nhello",
		"GET http://app.localhost/ HTTP/1.1\r\nHost: other\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: " + strings.Repeat("a", 300) + "\r\n\r\n",
		"\x16\x03\x01\x00\x05hello",
	} {
		f.Add([]byte(seed))
	}
	const max = 4 << 10
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		req, read, err := readRequestHead(r, max)
		consumed := len(in) - r.Len()
		if consumed > max {
			t.Fatalf("read %d bytes, limit %d", consumed, max)
		}
		if !bytes.Equal(read, in[:consumed]) {
			t.Fatalf("returned %d bytes that are not the %d read", len(read), consumed)
		}
		if err == nil && req == nil {
			t.Fatal("no request and no error")
		}
	})
}
