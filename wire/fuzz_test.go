package wire

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// The fuzz targets feed each decoder what a hostile peer could send. They
// check that decoding never panics, never reads past its limit, and that
// what decodes encodes back to something that decodes the same.

func frame(body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

func seedGolden(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(frame(bytes.TrimSpace(b)))
	}
	f.Add([]byte{0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0}) // a yamux SYN where a message belongs
	f.Add(frame([]byte(`{"type":"hello","hello":null}`)))
	f.Add(frame([]byte(`{"type":"bind","bind":{"proto":"ftp"}}`)))
	f.Add(binary.BigEndian.AppendUint32(nil, MaxControlMessage+1))
}

func FuzzReadMessage(f *testing.F) {
	seedGolden(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		m, err := ReadMessage(r)
		if read := len(in) - r.Len(); read > 4+MaxControlMessage {
			t.Fatalf("read %d bytes", read)
		}
		if err != nil {
			return
		}
		// What encodes (a zero tunnel type does not) decodes to what
		// encodes the same.
		var first, second bytes.Buffer
		if WriteMessage(&first, m) != nil {
			return
		}
		again, err := ReadMessage(bytes.NewReader(first.Bytes()))
		if err != nil {
			t.Fatalf("re-decoding %s: %v", first.Bytes()[4:], err)
		}
		if err := WriteMessage(&second, again); err != nil || !bytes.Equal(first.Bytes(), second.Bytes()) {
			t.Fatalf("%s re-encoded as %s (%v)", first.Bytes()[4:], second.Bytes()[4:], err)
		}
	})
}

func FuzzReadHello(f *testing.F) {
	seedGolden(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		h, err := ReadHello(r)
		if read := len(in) - r.Len(); read > 4+MaxHelloMessage {
			t.Fatalf("read %d bytes", read)
		}
		if err == nil && h == nil {
			t.Fatal("no hello and no error")
		}
	})
}

func FuzzReadStreamHeader(f *testing.F) {
	for _, h := range []StreamHeader{
		{Proto: ProtoHTTP, TunnelID: 1, ClientAddr: "203.0.113.9:51234"},
		{Proto: ProtoTLS, Flags: FlagTLS, TunnelID: 7, ClientAddr: "[2001:db8::1]:443"},
		{Proto: ProtoTCP, TunnelID: 2},
	} {
		b, _ := AppendStreamHeader(nil, h)
		f.Add(b)
	}
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		h, err := ReadStreamHeader(r)
		if read := len(in) - r.Len(); read > StreamHeaderMax {
			t.Fatalf("read %d bytes", read)
		}
		if err != nil {
			return
		}
		b, err := AppendStreamHeader(nil, h)
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", h, err)
		}
		if !bytes.Equal(b, in[:len(b)]) {
			t.Fatalf("re-encoded %x, read %x", b, in[:len(b)])
		}
	})
}
