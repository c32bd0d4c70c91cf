package wire

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
)

// yamuxFlagRST resets a stream (yamux's other frame types and flags are in
// transport.go, guard.go and v1.go).
const yamuxFlagRST = 1 << 3

// Holder is told how many bytes a stream holds as that changes: Hold with
// each change (positive as the peer's data arrives, negative as it is
// read), and Release once, when the stream holds nothing any more and
// never will. Calls for one stream come one at a time, in order.
type Holder interface {
	Hold(delta int64)
	Release()
}

// ErrLedgerClosed is returned by a reset sent on a session that has ended.
var ErrLedgerClosed = errors.New("wire: session closed")

// Ledger is the connection a yamux session runs on, read frame by frame so
// that the session's memory can be accounted for. yamux keeps the data the
// peer sends on a stream until the stream's reader takes it, up to the
// stream's receive window; how much that is, yamux does not say. The
// ledger counts it: the data bytes of each stream's frames as they arrive,
// less what the stream's reader takes (see Stream.Read), for as long as
// yamux keeps the stream. It also lets a stream be reset (see
// Stream.Abort), which yamux v0.1.2 offers no call for.
//
// A stream is counted from its opening frame (SYN), sent or received, so
// that none of its data escapes the count, and until yamux lets go of it:
// when both ends have closed it (FIN each way), or either end reset it
// (RST), this end's own included (see Stream.Abort). Frames of a
// stream yamux no longer has are dropped by yamux, and not counted.
type Ledger struct {
	net.Conn

	// Read side: only yamux's receive goroutine reads.
	frames frames

	// Write side: yamux writes a frame's header and its body as two
	// writes; a reset must not come between them.
	wmu      sync.Mutex
	wcond    *sync.Cond
	midFrame bool // a data header was written, its body not yet
	wclosed  bool

	mu       sync.Mutex
	accounts map[uint32]*account
	closed   bool
	resets   []uint32 // streams to reset here, handed to yamux between two of the peer's frames
}

// NewLedger returns c, the connection under a yamux session, with its
// frames counted. Give it to yamux.Client or yamux.Server in place of c.
func NewLedger(c net.Conn) *Ledger {
	l := &Ledger{Conn: c, accounts: map[uint32]*account{}}
	l.wcond = sync.NewCond(&l.wmu)
	return l
}

// account is what the ledger knows of one stream.
type account struct {
	mu       sync.Mutex
	held     int64
	holder   Holder
	finIn    bool // the peer closed its side
	finOut   bool // we closed ours
	gone     bool // yamux let go of the stream
	let      bool // the local reader let go (Stream.Close)
	released bool
}

// Read reads what yamux reads, counting each data frame's bytes as they
// are announced (a frame's header comes before its body, which yamux reads
// whole into the stream's buffer).
func (l *Ledger) Read(p []byte) (int, error) {
	if l.frames.between() {
		if n := l.resetsHere(p); n > 0 {
			return n, nil
		}
	}
	n, err := l.Conn.Read(p)
	l.frames.scan(p[:n], func(h []byte, _ int) bool {
		l.received(h)
		return true
	})
	return n, err
}

// received accounts for one frame header from the peer.
func (l *Ledger) received(h []byte) {
	typ, flags, id := h[1], binary.BigEndian.Uint16(h[2:]), binary.BigEndian.Uint32(h[4:])
	if typ != yamuxTypeData && typ != yamuxTypeWindowUpdate {
		return
	}
	a := l.account(id, flags&yamuxFlagSYN != 0)
	if a == nil {
		return
	}
	a.mu.Lock()
	if n := int64(binary.BigEndian.Uint32(h[8:])); typ == yamuxTypeData && n > 0 && !a.gone {
		a.held += n
		if a.holder != nil {
			a.holder.Hold(n)
		}
	}
	if flags&yamuxFlagFIN != 0 {
		a.finIn = true
	}
	if flags&yamuxFlagRST != 0 || a.finIn && a.finOut {
		l.goneLocked(id, a)
	}
	a.mu.Unlock()
}

// Write writes what yamux writes, noting the streams it opens and the ones
// it ends.
func (l *Ledger) Write(p []byte) (int, error) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	header := !l.midFrame && len(p) == yamuxHeaderSize
	if header {
		l.sent(p)
	}
	n, err := l.Conn.Write(p)
	l.midFrame = header && p[1] == yamuxTypeData && binary.BigEndian.Uint32(p[8:]) > 0 && err == nil
	if err != nil {
		l.wclosed = true
	}
	l.wcond.Broadcast()
	return n, err
}

// sent accounts for one frame header yamux sends: a stream it opens, its
// half-close, and its reset (which yamux sends when it refuses one).
func (l *Ledger) sent(h []byte) {
	typ, flags, id := h[1], binary.BigEndian.Uint16(h[2:]), binary.BigEndian.Uint32(h[4:])
	if typ != yamuxTypeData && typ != yamuxTypeWindowUpdate || flags&(yamuxFlagSYN|yamuxFlagFIN|yamuxFlagRST) == 0 {
		return
	}
	a := l.account(id, flags&yamuxFlagSYN != 0)
	if a == nil {
		return
	}
	a.mu.Lock()
	if flags&yamuxFlagFIN != 0 {
		a.finOut = true
	}
	if flags&yamuxFlagRST != 0 || a.finIn && a.finOut {
		l.goneLocked(id, a)
	}
	a.mu.Unlock()
}

// account returns the stream's account, opening one if open is set.
func (l *Ledger) account(id uint32, open bool) *account {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.accounts[id]
	if a == nil && open && !l.closed {
		a = &account{}
		l.accounts[id] = a
	}
	return a
}

// goneLocked records that yamux let go of the stream; called with a.mu held.
func (l *Ledger) goneLocked(id uint32, a *account) {
	if a.gone {
		return
	}
	a.gone = true
	l.mu.Lock()
	if l.accounts[id] == a {
		delete(l.accounts, id)
	}
	l.mu.Unlock()
	a.settleLocked()
}

// settleLocked releases the holder once nothing more can be held: yamux let
// go of the stream, and its buffer is empty or no one will read it.
func (a *account) settleLocked() {
	if a.released || !a.gone || a.held > 0 && !a.let {
		return
	}
	a.released = true
	if a.holder != nil {
		a.holder.Release()
	}
}

// reset sends the peer a reset of stream id, between two of yamux's frames.
// yamux itself still takes the stream for open: the caller closes it.
func (l *Ledger) reset(id uint32) error {
	var h [yamuxHeaderSize]byte
	h[1] = yamuxTypeWindowUpdate
	binary.BigEndian.PutUint16(h[2:], yamuxFlagRST)
	binary.BigEndian.PutUint32(h[4:], id)
	l.wmu.Lock()
	defer l.wmu.Unlock()
	for l.midFrame && !l.wclosed {
		l.wcond.Wait()
	}
	if l.wclosed {
		return ErrLedgerClosed
	}
	_, err := l.Conn.Write(h[:])
	if err != nil {
		l.wclosed = true
		l.wcond.Broadcast()
	}
	return err
}

// resetHere has yamux reset stream id on this end, as if the peer had: the
// reset is handed to yamux with what it reads next, between two of the
// peer's frames, and yamux lets go of the stream (whose record it would
// otherwise keep until the peer closed it too). yamux v0.1.2 has no call
// for it. A session that is reading nothing gets it with the next frame
// that arrives, a keepalive ping at the latest.
func (l *Ledger) resetHere(id uint32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.resets = append(l.resets, id)
	}
}

// resetsHere writes into p, for yamux to read, the resets resetHere asked
// for, as many as fit, and accounts for them as received.
func (l *Ledger) resetsHere(p []byte) int {
	l.mu.Lock()
	k := min(len(l.resets), len(p)/yamuxHeaderSize)
	ids := l.resets[:k:k]
	l.resets = l.resets[k:]
	l.mu.Unlock()
	for i, id := range ids {
		h := p[i*yamuxHeaderSize : (i+1)*yamuxHeaderSize]
		clear(h)
		h[0] = yamuxVersion
		h[1] = yamuxTypeWindowUpdate
		binary.BigEndian.PutUint16(h[2:], yamuxFlagRST)
		binary.BigEndian.PutUint32(h[4:], id)
		l.received(h)
	}
	return len(ids) * yamuxHeaderSize
}

// Close closes the connection; every stream's holder is released, since
// yamux lets go of every stream with its session. The connection is closed
// first: a write waiting on a peer that no longer reads holds the write
// lock, and only the close ends it.
func (l *Ledger) Close() error {
	err := l.Conn.Close()
	l.wmu.Lock()
	l.wclosed = true
	l.wcond.Broadcast()
	l.wmu.Unlock()
	l.mu.Lock()
	l.closed = true
	accounts := l.accounts
	l.accounts = map[uint32]*account{}
	l.mu.Unlock()
	for _, a := range accounts {
		a.mu.Lock()
		a.gone, a.let = true, true
		a.settleLocked()
		a.mu.Unlock()
	}
	return err
}

// stream returns the account of a stream yamux handed over. One the ledger
// no longer has is gone already (reset, or its session ended).
func (l *Ledger) stream(id uint32) *account {
	if a := l.account(id, false); a != nil {
		return a
	}
	return &account{gone: true}
}

// attach makes h the account's holder, telling it what the stream holds
// already.
func (a *account) attach(h Holder) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.holder != nil || a.released {
		if a.released {
			h.Release()
		}
		return
	}
	a.holder = h
	if a.held != 0 {
		h.Hold(a.held)
	}
	a.settleLocked()
}

// took counts n bytes read from the stream.
func (a *account) took(n int) {
	if n <= 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.held -= int64(n)
	if a.holder != nil && !a.released {
		a.holder.Hold(-int64(n))
	}
	a.settleLocked()
}

// letGo records that the local reader let go of the stream.
func (a *account) letGo() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.let = true
	a.settleLocked()
}
