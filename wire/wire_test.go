package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestStreamHeaderRoundTrip(t *testing.T) {
	for _, h := range []StreamHeader{
		{Proto: ProtoHTTP, TunnelID: 1},
		{Proto: ProtoTCP, TunnelID: 0xfffffffe, ClientAddr: "203.0.113.9:51234"},
		{Proto: ProtoTLS, TunnelID: 7, ClientAddr: "[2001:db8::1]:443"},
		{Proto: ProtoHTTP, Flags: FlagTLS, TunnelID: 9, ClientAddr: "198.51.100.4:60000"},
		{Proto: ProtoTCP, TunnelID: 2, ClientAddr: strings.Repeat("a", MaxClientAddr)},
	} {
		b, err := AppendStreamHeader(nil, h)
		if err != nil {
			t.Fatal(err)
		}
		// The header is followed by traffic that must be left unread.
		r := bytes.NewReader(append(b, "payload"...))
		got, err := ReadStreamHeader(r)
		if err != nil || got != h {
			t.Errorf("round trip %+v: got %+v, %v", h, got, err)
		}
		rest, _ := io.ReadAll(r)
		if string(rest) != "payload" {
			t.Errorf("header read into the payload: %q", rest)
		}
	}
}

func TestStreamHeaderErrors(t *testing.T) {
	if _, err := AppendStreamHeader(nil, StreamHeader{ClientAddr: strings.Repeat("a", MaxClientAddr+1)}); err == nil {
		t.Error("an over-long client address was encoded")
	}
	if _, err := ReadStreamHeader(strings.NewReader("GET / HTTP/1.1\r\n")); !errors.Is(err, ErrBadStreamHeader) {
		t.Errorf("non-header: %v", err)
	}
	b, _ := AppendStreamHeader(nil, StreamHeader{Proto: ProtoTCP, ClientAddr: "1.2.3.4:5"})
	if _, err := ReadStreamHeader(bytes.NewReader(b[:len(b)-2])); err == nil {
		t.Error("a truncated header was accepted")
	}
}

func TestAppendStreamHeaderDoesNotAllocate(t *testing.T) {
	var buf [StreamHeaderMax]byte
	h := StreamHeader{Proto: ProtoTCP, TunnelID: 3, ClientAddr: "127.0.0.1:4000"}
	if n := testing.AllocsPerRun(100, func() { AppendStreamHeader(buf[:0], h) }); n != 0 {
		t.Errorf("%v allocations per header", n)
	}
}

func TestControlMessages(t *testing.T) {
	var buf bytes.Buffer
	in := &Message{Type: TypeBind, Bind: &Bind{TunnelID: 4, Proto: ProtoTLS, Name: "app"}}
	if err := WriteMessage(&buf, in); err != nil {
		t.Fatal(err)
	}
	out, err := ReadMessage(&buf)
	if err != nil || out.Bind == nil || !reflect.DeepEqual(*out.Bind, *in.Bind) {
		t.Fatalf("round trip: %+v, %v", out, err)
	}
	unbind := &Message{Type: TypeUnbind, Unbind: &Unbind{TunnelID: 9}}
	if err := WriteMessage(&buf, unbind); err != nil {
		t.Fatal(err)
	}
	if out, err := ReadMessage(&buf); err != nil || out.Unbind == nil || out.Unbind.TunnelID != 9 {
		t.Fatalf("unbind round trip: %+v, %v", out, err)
	}
	unbound := &Message{Type: TypeUnbound, Unbound: &Unbind{TunnelID: 9}}
	if err := WriteMessage(&buf, unbound); err != nil {
		t.Fatal(err)
	}
	if out, err := ReadMessage(&buf); err != nil || out.Unbound == nil || out.Unbound.TunnelID != 9 {
		t.Fatalf("unbound round trip: %+v, %v", out, err)
	}
	// A length over the limit is refused before the body is read.
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], MaxControlMessage+1)
	if _, err := ReadMessage(bytes.NewReader(hdr[:])); !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("oversized: %v", err)
	}
	big := &Message{Type: TypeHello, Hello: &Hello{Token: strings.Repeat("x", MaxControlMessage)}}
	if err := WriteMessage(io.Discard, big); !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("writing oversized: %v", err)
	}
	if _, err := ReadMessage(strings.NewReader("\x00\x00\x00\x03{x}")); err == nil {
		t.Error("bad JSON accepted")
	}
}

func TestFingerprints(t *testing.T) {
	fp := Fingerprint([]byte("cert"))
	for _, in := range []string{fp, strings.ToUpper(fp), "sha256:" + fp, colons(fp)} {
		if got, err := ParseFingerprint(in); err != nil || got != fp {
			t.Errorf("ParseFingerprint(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "abc", fp[:62], fp + "00", "zz" + fp[2:]} {
		if _, err := ParseFingerprint(bad); err == nil {
			t.Errorf("ParseFingerprint(%q) accepted", bad)
		}
	}
}

func colons(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(s[i : i+2])
	}
	return b.String()
}

func TestValidName(t *testing.T) {
	for _, ok := range []string{"a", "app", "my-app-2", strings.Repeat("a", 63)} {
		if err := ValidName(ok); err != nil {
			t.Errorf("ValidName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", "a-", "App", "a.b", "a_b", strings.Repeat("a", 64), "ü"} {
		if err := ValidName(bad); !IsCode(err, CodeNameInvalid) {
			t.Errorf("ValidName(%q) = %v, want %s", bad, err, CodeNameInvalid)
		}
	}
}

func BenchmarkStreamHeader(b *testing.B) {
	h := StreamHeader{Proto: ProtoTCP, TunnelID: 3, ClientAddr: "127.0.0.1:40000"}
	var buf [StreamHeaderMax]byte
	r := bytes.NewReader(nil)
	b.ReportAllocs()
	for b.Loop() {
		enc, _ := AppendStreamHeader(buf[:0], h)
		r.Reset(enc)
		if _, err := ReadStreamHeader(r); err != nil {
			b.Fatal(err)
		}
	}
}
