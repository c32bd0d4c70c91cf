package wire

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"log"
	mrand "math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// ledgerPair returns a client and a server session over loopback TCP, each
// on a ledger, each granting window on every stream.
func ledgerPair(t *testing.T, window int64, edit func(*yamux.Config)) (client, server *yamux.Session, cl, sl *Ledger) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-accepted
	cfg := YamuxConfig(KeepAliveInterval, window, log.New(io.Discard, "", 0))
	if edit != nil {
		edit(cfg)
	}
	cl, sl = NewLedger(a), NewLedger(b)
	if client, err = yamux.Client(cl, cfg); err != nil {
		t.Fatal(err)
	}
	if server, err = yamux.Server(sl, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server, cl, sl
}

// holder records what a ledger tells it.
type holder struct {
	mu       sync.Mutex
	held     int64
	released bool
	changed  chan struct{}
}

func newHolder() *holder { return &holder{changed: make(chan struct{}, 1)} }

func (h *holder) Hold(d int64) {
	h.mu.Lock()
	if h.released {
		panic("Hold after Release")
	}
	h.held += d
	h.mu.Unlock()
	h.notify()
}

func (h *holder) Release() {
	h.mu.Lock()
	if h.released {
		panic("released twice")
	}
	h.released = true
	h.mu.Unlock()
	h.notify()
}

func (h *holder) notify() {
	select {
	case h.changed <- struct{}{}:
	default:
	}
}

func (h *holder) state() (int64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.held, h.released
}

// await waits until the holder is in the state ok describes.
func (h *holder) await(t *testing.T, what string, ok func(held int64, released bool) bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		if ok(h.state()) {
			return
		}
		select {
		case <-h.changed:
		case <-deadline:
			held, released := h.state()
			t.Fatalf("%s: holder at %d bytes, released %v", what, held, released)
		}
	}
}

// openPair opens a stream from the client and returns it with the server's
// end, counted by the server's ledger.
func openPair(t *testing.T, client, server *yamux.Session, sl *Ledger) (*yamux.Stream, *Stream) {
	t.Helper()
	out, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := out.Write([]byte{1}); err != nil { // yamux sends the SYN with the first write or window update
		t.Fatal(err)
	}
	st, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	in := sl.Stream(st)
	if _, err := io.ReadFull(in, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	return out, in
}

func TestLedgerCountsWhatAStreamHolds(t *testing.T) {
	const window = 1 << 20
	client, server, _, sl := ledgerPair(t, window, nil)
	out, in := openPair(t, client, server, sl)
	h := newHolder()
	in.Attach(h)

	// The writer fills the window and waits: the stream holds it all.
	data := make([]byte, 3*window)
	rand.Read(data)
	sent := make(chan error, 1)
	go func() {
		_, err := out.Write(data)
		if err == nil {
			err = out.Close()
		}
		sent <- err
	}()
	// (All but the byte openPair sent: yamux gives it back with the next
	// half window read.)
	h.await(t, "a full window", func(held int64, _ bool) bool { return held == window-1 })

	// Reading takes it down; the rest arrives and is read, whole.
	got, err := io.ReadAll(in)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes (%v), want the %d sent", len(got), err, len(data))
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if held, released := h.state(); held != 0 || released {
		t.Fatalf("read to the end: %d bytes held, released %v; want 0, not yet released", held, released)
	}
	// Closed both ways, yamux lets go of the stream.
	in.Close()
	h.await(t, "released after both closed", func(held int64, released bool) bool { return released })
}

// TestLedgerCountsAStreamItOpens: a stream opened on this side is counted
// from its opening frame, so that the peer's first bytes, which may come
// before OpenStream's caller has the stream, are not missed.
func TestLedgerCountsAStreamItOpens(t *testing.T) {
	client, server, cl, _ := ledgerPair(t, 1<<20, nil)
	go func() {
		st, err := server.AcceptStream()
		if err == nil {
			st.Write(make([]byte, 1000))
		}
	}()
	out, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	// The peer's bytes are announced before the holder comes.
	deadline := time.Now().Add(20 * time.Second)
	for cl.held(out.StreamID()) < 1000 {
		if time.Now().After(deadline) {
			t.Fatalf("the ledger counted %d bytes", cl.held(out.StreamID()))
		}
		time.Sleep(time.Millisecond)
	}
	st := cl.Stream(out)
	h := newHolder()
	st.Attach(h)
	if held, _ := h.state(); held != 1000 {
		t.Fatalf("attached holder told of %d bytes, want 1000", held)
	}
}

// held returns what the ledger counts for stream id, for tests.
func (l *Ledger) held(id uint32) int64 {
	a := l.account(id, false)
	if a == nil {
		return -1
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.held
}

// TestAbortResetsAndFrees: a stream whose reader stopped holds a window;
// aborting it stops the peer's writer at once, with a reset (a close would
// only tell it that this end sends no more), frees what it held, and leaves
// the session and its other streams working.
func TestAbortResetsAndFrees(t *testing.T) {
	const window = 4 << 20
	client, server, _, sl := ledgerPair(t, window, nil)
	out, in := openPair(t, client, server, sl)
	h := newHolder()
	in.Attach(h)
	aborted := make(chan struct{})
	in.OnAbort(func() { close(aborted) })

	// An endless writer, as an upstream that sends until its client leaves.
	wrote := make(chan error, 1)
	go func() {
		piece := make([]byte, 64<<10)
		for {
			if _, err := out.Write(piece); err != nil {
				wrote <- err
				return
			}
		}
	}()
	h.await(t, "a full window", func(held int64, _ bool) bool { return held >= window-1 })
	base := liveHeap()

	in.Abort()
	<-aborted
	if err := <-wrote; !errors.Is(err, yamux.ErrConnectionReset) {
		t.Errorf("the peer's writer got %v, want a reset", err)
	}
	if held, _ := h.state(); held != 0 {
		t.Errorf("after the abort the stream holds %d bytes", held)
	}
	if freed := int64(base) - int64(liveHeap()); freed < window/2 {
		t.Errorf("the abort freed %d KiB of a %d KiB window", freed>>10, window>>10)
	}

	// The session still carries other streams, both ways.
	out2, in2 := openPair(t, client, server, sl)
	go out2.Write([]byte("still here"))
	b := make([]byte, 10)
	if _, err := io.ReadFull(in2, b); err != nil || string(b) != "still here" {
		t.Fatalf("a new stream after the abort: %q, %v", b, err)
	}
}

// TestResetsBetweenFrames aborts streams while others carry data both
// ways: a reset must go between two of yamux's frames, never inside one, or
// the session would break.
func TestResetsBetweenFrames(t *testing.T) {
	client, server, _, sl := ledgerPair(t, 1<<20, nil)
	const busy, aborts = 8, 64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(stop)
	errs := make(chan error, busy)
	for range busy {
		out, in := openPair(t, client, server, sl)
		go io.Copy(in, in) // the server echoes, until the session ends
		data := make([]byte, 256<<10)
		rand.Read(data)
		wg.Go(func() {
			got := make([]byte, len(data))
			for {
				select {
				case <-stop:
					return
				default:
				}
				go out.Write(data)
				if _, err := io.ReadFull(out, got); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got, data) {
					errs <- errors.New("echoed bytes differ")
					return
				}
			}
		})
	}
	var doomed []*Stream
	for range aborts {
		out, in := openPair(t, client, server, sl)
		go io.Copy(out, rand.Reader) // the server's side keeps receiving
		go in.Write(make([]byte, 64<<10))
		doomed = append(doomed, in)
	}
	var aborting sync.WaitGroup
	for _, in := range doomed {
		aborting.Go(in.Abort)
	}
	aborting.Wait()
	select {
	case err := <-errs:
		t.Fatalf("a stream broke while others were reset: %v", err)
	default:
	}
	if client.IsClosed() || server.IsClosed() {
		t.Fatal("the session ended")
	}
}

// writeSignal is a connection that reports when a write has begun.
type writeSignal struct {
	net.Conn
	once    sync.Once
	writing chan struct{}
}

func (c *writeSignal) Write(p []byte) (int, error) {
	c.once.Do(func() { close(c.writing) })
	return c.Conn.Write(p)
}

// TestCloseEndsAWriteThePeerDoesNotTake: a peer that stops reading (gone
// without a word, or never reading again) leaves yamux's send loop waiting
// in a write. Closing the session, as yamux does when its keepalive fails,
// must close the connection under that write and end it; it must not wait
// for the write to finish first, or the session would never end, and a
// reset waiting for its turn would wait with it.
func TestCloseEndsAWriteThePeerDoesNotTake(t *testing.T) {
	a, b := net.Pipe() // b is never read: every write to a waits
	defer b.Close()
	conn := &writeSignal{Conn: a, writing: make(chan struct{})}
	l := NewLedger(conn)
	sess, err := yamux.Client(l, YamuxConfig(KeepAliveInterval, MinStreamWindow, log.New(io.Discard, "", 0)))
	if err != nil {
		t.Fatal(err)
	}
	go sess.OpenStream() // its SYN is a write the peer does not take
	<-conn.writing

	reset := make(chan error, 1)
	go func() { reset <- l.reset(1) }()
	closed := make(chan struct{})
	go func() {
		sess.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second): // a hang, not a slow close
		t.Fatal("closing the session waits on a write the peer never takes")
	}
	if err := <-reset; err == nil {
		t.Error("a reset on a closed session succeeded")
	}
}

// chunkedConn returns what it is given a few bytes at a time, cut at
// random: frame headers and bodies split across reads anywhere.
type chunkedConn struct {
	net.Conn
	r   *bytes.Reader
	rng *mrand.Rand
}

func (c *chunkedConn) Read(p []byte) (int, error) {
	return c.r.Read(p[:min(len(p), 1+c.rng.IntN(40))])
}

// yamuxFrame returns a frame: its header, then body.
func yamuxFrame(typ uint8, flags uint16, id, length uint32, body []byte) []byte {
	h := make([]byte, yamuxHeaderSize, yamuxHeaderSize+len(body))
	h[1] = typ
	binary.BigEndian.PutUint16(h[2:], flags)
	binary.BigEndian.PutUint32(h[4:], id)
	binary.BigEndian.PutUint32(h[8:], length)
	return append(h, body...)
}

// TestLedgerCountsFramesSplitAnywhere reads data frames among window
// updates, pings and go-aways (whose length field is no body), cut across
// reads at random, and counts exactly the data each stream received.
func TestLedgerCountsFramesSplitAnywhere(t *testing.T) {
	const yamuxTypeGoAway = 3
	for seed := range uint64(100) {
		rng := mrand.New(mrand.NewPCG(seed, 1))
		var in bytes.Buffer
		want := map[uint32]int64{}
		for id := uint32(1); id <= 5; id += 2 {
			in.Write(yamuxFrame(yamuxTypeWindowUpdate, yamuxFlagSYN, id, 0, nil))
			want[id] = 0
		}
		for range 300 {
			id := uint32(1 + 2*rng.IntN(3))
			switch rng.IntN(5) {
			case 0, 1:
				n := rng.IntN(100)
				in.Write(yamuxFrame(yamuxTypeData, 0, id, uint32(n), make([]byte, n)))
				want[id] += int64(n)
			case 2:
				in.Write(yamuxFrame(yamuxTypePing, uint16(1+rng.IntN(2)), 0, rng.Uint32(), nil))
			case 3:
				in.Write(yamuxFrame(yamuxTypeWindowUpdate, 0, id, rng.Uint32(), nil))
			case 4:
				in.Write(yamuxFrame(yamuxTypeGoAway, 0, 0, 0, nil))
			}
		}
		l := NewLedger(&chunkedConn{r: bytes.NewReader(in.Bytes()), rng: rng})
		if _, err := io.Copy(io.Discard, l); err != nil {
			t.Fatal(err)
		}
		for id, n := range want {
			if got := l.held(id); got != n {
				t.Fatalf("seed %d, stream %d: counted %d bytes, want %d", seed, id, got, n)
			}
		}
	}
}
