package wire

import "encoding/binary"

// frames follows yamux's framing through the bytes a session reads, so
// that a reader between the connection and yamux (GuardAgent, Ledger) sees
// each frame header as it passes, however the reads cut the frames.
type frames struct {
	hdr  [yamuxHeaderSize]byte // the frame header being read
	got  int                   // bytes of hdr read so far
	body uint32                // bytes of the current data frame's body still to come
}

// between reports whether the bytes seen so far end between two frames.
func (f *frames) between() bool { return f.got == 0 && f.body == 0 }

// scan follows p, the bytes read after those seen so far, and calls header
// with each frame header it completes and where in p that header began
// (before p, if negative: it began in an earlier read). When header returns
// false, scan stops there.
func (f *frames) scan(p []byte, header func(h []byte, start int) bool) {
	for i := 0; i < len(p); {
		if f.body > 0 {
			k := min(uint32(len(p)-i), f.body)
			f.body -= k
			i += int(k)
			continue
		}
		start := i - f.got
		k := copy(f.hdr[f.got:], p[i:])
		f.got += k
		i += k
		if f.got < yamuxHeaderSize {
			return
		}
		f.got = 0
		if !header(f.hdr[:], start) {
			return
		}
		if f.hdr[1] == yamuxTypeData {
			f.body = binary.BigEndian.Uint32(f.hdr[8:])
		}
	}
}
