package inspect

import (
	"bytes"
	"encoding/binary"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// An entry is one exchange packed into one run of bytes: a fixed header
// (the numbers, and where each part ends), then the public client's
// address and both messages in their HTTP/1.1 form, which is the "raw"
// the API serves:
//
//	header | 127.0.0.1:50000 | GET /hello HTTP/1.1\r\n Host: h\r\n headers \r\n body | trailers |
//	HTTP/1.1 200 OK\r\n headers \r\n body | trailers
//
// The store keeps finished entries back to back in one region of memory
// and decodes one into an Exchange only when it is read, so that the
// exchanges it holds cost the garbage collector nothing and the budget is
// what they really take (see Store).

// The header's fields, by offset; integers are little-endian.
const (
	offSize     = 0  // uint32: bytes of the entry, header included
	offFlags    = 4  // uint16: flag bits
	offStatus   = 6  // uint16: the response status, 0 while pending
	offTunnel   = 8  // uint32: the tunnel's index in Store.tunnels
	offSeq      = 16 // uint64: the store's sequence number
	offReplayOf = 24 // uint64: the id (as a number) of the exchange replayed, 0 if none
	offStart    = 32 // int64: Unix nanoseconds
	offDuration = 40 // int64: nanoseconds, 0 while pending
	offReqSize  = 48 // int64: request body bytes seen (-1 while a body is being read)
	offRespSize = 56 // int64: response body bytes seen
	offEnds     = 64 // [numEnds]uint32: where each part ends, from the entry's start

	headerSize = offEnds + 4*numEnds
)

// The parts of an entry, in order; each begins where the one before ends
// (the first at headerSize). The method, target and protocol are the
// request line, separated by one space each and ended by CRLF; the host
// part is the "Host: h\r\n" line, empty when the request had none; the
// heads end with their blank line.
const (
	endRemote      = iota // the public client's ip:port
	endMethod             // "GET"
	endURI                // " /path?query"
	endLine               // " HTTP/1.1\r\n"
	endHost               // "Host: example.com\r\n"
	endReqHead            // the other headers, then "\r\n"
	endReqBody            // the kept request body
	endReqTrailer         // request trailers, as header lines
	endRespLine           // "HTTP/1.1 200 OK\r\n"
	endRespHead           // response headers, then "\r\n"
	endRespBody           // the kept response body
	endRespTrailer        // response trailers, as header lines
	numEnds
)

// Flag bits.
const (
	flagDone          = 1 << iota // the exchange has finished
	flagTLS                       // the public client spoke HTTPS
	flagUpgraded                  // the connection switched protocols
	flagReqTruncated              // the request body was longer than what is kept
	flagRespTruncated             // the response body was longer than what is kept
	flagResponse                  // a response was sent
	flagPad                       // not an exchange: unused space at the end of the store's ring
)

// meta is an entry's header.
type meta struct {
	size     uint32
	flags    uint16
	status   uint16
	tunnel   uint32
	seq      uint64
	replayOf uint64
	start    int64
	duration int64
	reqSize  int64
	respSize int64
	ends     [numEnds]uint32
}

var le = binary.LittleEndian

func (m *meta) put(b []byte) {
	_ = b[headerSize-1]
	le.PutUint32(b[offSize:], m.size)
	le.PutUint16(b[offFlags:], m.flags)
	le.PutUint16(b[offStatus:], m.status)
	le.PutUint32(b[offTunnel:], m.tunnel)
	le.PutUint32(b[offTunnel+4:], 0)
	le.PutUint64(b[offSeq:], m.seq)
	le.PutUint64(b[offReplayOf:], m.replayOf)
	le.PutUint64(b[offStart:], uint64(m.start))
	le.PutUint64(b[offDuration:], uint64(m.duration))
	le.PutUint64(b[offReqSize:], uint64(m.reqSize))
	le.PutUint64(b[offRespSize:], uint64(m.respSize))
	for i, e := range m.ends {
		le.PutUint32(b[offEnds+4*i:], e)
	}
}

func readMeta(b []byte) meta {
	_ = b[headerSize-1]
	m := meta{
		size:     le.Uint32(b[offSize:]),
		flags:    le.Uint16(b[offFlags:]),
		status:   le.Uint16(b[offStatus:]),
		tunnel:   le.Uint32(b[offTunnel:]),
		seq:      le.Uint64(b[offSeq:]),
		replayOf: le.Uint64(b[offReplayOf:]),
		start:    int64(le.Uint64(b[offStart:])),
		duration: int64(le.Uint64(b[offDuration:])),
		reqSize:  int64(le.Uint64(b[offReqSize:])),
		respSize: int64(le.Uint64(b[offRespSize:])),
	}
	for i := range m.ends {
		m.ends[i] = le.Uint32(b[offEnds+4*i:])
	}
	return m
}

// part returns where part i begins and ends.
func (m *meta) part(i int) (int, int) {
	from := uint32(headerSize)
	if i > 0 {
		from = m.ends[i-1]
	}
	return int(from), int(m.ends[i])
}

// markEnd records that part i ends at the current length of b.
func (m *meta) markEnd(i int, b []byte) { m.ends[i] = uint32(len(b)) }

// appendRequestHead appends the client's address and the request's head to
// b, which holds the entry's header so far, and records where each part
// ends. The value of the header named mask, if any, is replaced by masked.
// keys is scratch space for sorting header names; it is returned for reuse.
func appendRequestHead(b []byte, m *meta, r *http.Request, mask, masked string, keys []string) ([]byte, []string) {
	b = append(b, r.RemoteAddr...)
	m.markEnd(endRemote, b)
	b = appendClean(b, r.Method)
	m.markEnd(endMethod, b)
	b = appendClean(append(b, ' '), r.RequestURI)
	m.markEnd(endURI, b)
	b = append(appendClean(append(b, ' '), r.Proto), "\r\n"...)
	m.markEnd(endLine, b)
	if r.Host != "" {
		b = append(appendClean(append(b, "Host: "...), r.Host), "\r\n"...)
	}
	m.markEnd(endHost, b)
	b, keys = appendHeader(b, r.Header, keys, mask, masked)
	b = append(b, "\r\n"...)
	m.markEnd(endReqHead, b)
	return b, keys
}

// appendStatusLine appends a response's status line, as http.Response.Write
// writes it.
func appendStatusLine(b []byte, proto string, status int) []byte {
	b = append(appendClean(b, proto), ' ')
	b = strconv.AppendInt(b, int64(status), 10)
	return append(append(append(b, ' '), http.StatusText(status)...), "\r\n"...)
}

// appendHeader appends h as "Key: value\r\n" lines the way http.Header.Write
// writes them: keys sorted, line breaks in values turned to spaces, values
// trimmed. The value of the header named mask is replaced by masked. keys
// is scratch space for sorting; it is returned for reuse.
func appendHeader(b []byte, h http.Header, keys []string, mask, masked string) ([]byte, []string) {
	keys = keys[:0]
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			if k == mask {
				v = masked
			}
			b = append(append(b, k...), ": "...)
			b = append(appendClean(b, trimSpace(v)), "\r\n"...)
		}
	}
	return b, keys
}

// appendClean appends s with carriage returns and line feeds turned into
// spaces, so that it cannot end the line it is on.
func appendClean(b []byte, s string) []byte {
	n := len(b)
	b = append(b, s...)
	for i := n; i < len(b); i++ {
		if b[i] == '\r' || b[i] == '\n' {
			b[i] = ' '
		}
	}
	return b
}

// trimSpace trims the ASCII white space that textproto.TrimString trims.
func trimSpace(s string) string {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// decodeEntry builds the Exchange an entry holds. It keeps slices of b,
// which must be the caller's own copy.
func decodeEntry(b []byte, id, tunnel string) *Exchange {
	m := readMeta(b)
	str := func(i int) []byte { from, to := m.part(i); return b[from:to] }
	x := &Exchange{
		ID:         id,
		Tunnel:     tunnel,
		Start:      time.Unix(0, m.start),
		Duration:   time.Duration(m.duration),
		RemoteAddr: string(str(endRemote)),
		TLS:        m.flags&flagTLS != 0,
		Status:     int(m.status),
		Upgraded:   m.flags&flagUpgraded != 0,
		Done:       m.flags&flagDone != 0,
	}
	if m.replayOf != 0 {
		x.ReplayOf = formatID(m.replayOf)
	}
	_, lineStart := m.part(endRemote)
	_, bodyEnd := m.part(endReqBody)
	host := str(endHost)
	if len(host) > 0 {
		host = host[len("Host: ") : len(host)-2]
	}
	line := str(endLine)
	head := str(endReqHead)
	x.Request = Message{
		Method:    string(str(endMethod)),
		URI:       string(str(endURI)[1:]),
		Host:      string(host),
		Proto:     string(line[1 : len(line)-2]),
		Body:      str(endReqBody),
		BodySize:  m.reqSize,
		Truncated: m.flags&flagReqTruncated != 0,
		raw:       b[lineStart:bodyEnd],
		header:    head[:len(head)-2],
		trailer:   str(endReqTrailer),
	}
	if m.flags&flagResponse != 0 {
		respStart, _ := m.part(endRespLine)
		_, respEnd := m.part(endRespBody)
		proto, _, _ := bytes.Cut(str(endRespLine), []byte(" "))
		rhead := str(endRespHead)
		x.Response = &Message{
			Proto:     string(proto),
			Status:    int(m.status),
			Body:      str(endRespBody),
			BodySize:  m.respSize,
			Truncated: m.flags&flagRespTruncated != 0,
			raw:       b[respStart:respEnd],
			header:    rhead[:len(rhead)-2],
			trailer:   str(endRespTrailer),
		}
	}
	return x
}

// formatID renders an id number as 16 hex digits.
func formatID(v uint64) string {
	var b [16]byte
	const hex = "0123456789abcdef"
	for i := 15; i >= 0; i-- {
		b[i] = hex[v&0xf]
		v >>= 4
	}
	return string(b[:])
}

// parseID is the inverse of formatID.
func parseID(id string) (uint64, bool) {
	if len(id) != 16 {
		return 0, false
	}
	v, err := strconv.ParseUint(id, 16, 64)
	return v, err == nil
}
