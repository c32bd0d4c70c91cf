package inspect

import (
	"bytes"
	"math"
	"runtime"
	"sync"
	"time"
)

// Defaults and bounds of Config.
const (
	DefaultBodyCap = 1 << 20  // bytes of each request or response body kept
	DefaultBudget  = 50 << 20 // bytes of all captured exchanges, like ngrok's inspect_db_size
	MaxBudget      = 1 << 30  // the largest budget: a store addresses its memory with 32-bit offsets
)

// Config bounds what a Store keeps.
type Config struct {
	BodyCap int   // bytes kept of each body; the rest is counted, not kept
	Budget  int64 // bytes of memory for all kept exchanges, at most MaxBudget; the oldest go first
}

// DefaultConfig returns the default bounds.
func DefaultConfig() Config { return Config{BodyCap: DefaultBodyCap, Budget: DefaultBudget} }

// Store keeps captured exchanges within a memory budget, the oldest out
// first. It is safe for concurrent use.
//
// Its memory is one region of Budget bytes, taken when the store is made
// (outside the Go heap where the system allows, see newRegion) and written
// as the store fills: an index of 4 bytes per exchange by sequence number,
// then a ring of finished exchanges, each packed into one entry (see
// entry.go), in the order they finished. The budget is therefore what the
// exchanges really cost, whatever their number, and the exchanges kept
// cost the garbage collector nothing. An exchange in flight is held by its
// capture until it finishes, and listed meanwhile.
//
// Making room drops the ring's oldest entry and, so that the oldest by
// start always go first, every exchange that started before it: one that
// finished late (a long download, a stream) goes when the exchanges that
// started after it go; one that is still in flight then is not kept when
// it finishes.
type Store struct {
	cfg     Config
	epoch   uint32 // in every id, so that ids of an earlier store are not taken for this one's
	offHeap bool   // the region is outside the Go heap

	mu          sync.Mutex
	index       []byte   // slots of 4 bytes: where exchange seq%slots is (a ring offset, or slotInFlight and a place)
	slots       uint64   // len(index) / 4
	ring        []byte   // finished entries, back to back, 8-byte aligned
	first, next uint64   // the exchanges kept have sequence numbers in [first, next)
	head, tail  uint64   // ring positions, ever growing: the oldest entry, and the end of the newest
	inFlight    [][]byte // entries of exchanges in flight, each owned by its capture; nil where free
	free        []uint32 // places free in inFlight
	tunnels     []string // tunnel labels, by the index entries hold
	tunnelIDs   map[string]uint32
	subs        map[*subscriber]struct{}
}

// slotInFlight marks the index slot of an exchange in flight: the other
// bits are its entry's place in Store.inFlight. (Ring offsets are below
// MaxBudget, so below this bit.)
const slotInFlight = 1 << 31

// minEntry is about the size of the smallest entry (a header and the
// shortest request line), so an index of one slot per minEntry bytes of
// the region seldom fills before the ring; when it does, the oldest
// exchanges go first all the same.
const minEntry = 128

// NewStore returns an empty store. Zero fields of cfg take the defaults;
// a budget over MaxBudget is lowered to it.
func NewStore(cfg Config) *Store {
	if cfg.BodyCap <= 0 {
		cfg.BodyCap = DefaultBodyCap
	}
	if cfg.Budget <= 0 {
		cfg.Budget = DefaultBudget
	}
	cfg.Budget = min(cfg.Budget, MaxBudget)
	slots := max(int(cfg.Budget)/minEntry, 16)
	region, release, offHeap := newRegion(max(int(cfg.Budget), 4*slots+8))
	ringStart := 4 * slots
	ringLen := (len(region) - ringStart) &^ 7
	s := &Store{
		cfg:       cfg,
		epoch:     uint32(time.Now().Unix()),
		offHeap:   offHeap,
		index:     region[:ringStart:ringStart],
		slots:     uint64(slots),
		ring:      region[ringStart : ringStart+ringLen : ringStart+ringLen],
		first:     1,
		next:      1,
		tunnelIDs: map[string]uint32{},
		subs:      map[*subscriber]struct{}{},
	}
	runtime.AddCleanup(s, func(release func()) { release() }, release)
	return s
}

// Config returns the store's bounds.
func (s *Store) Config() Config { return s.cfg }

// Used returns the bytes of the store's memory that the kept exchanges
// take: their entries (with space freed in the ring but not yet reused)
// and their index slots. It never exceeds the budget.
func (s *Store) Used() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(s.tail-s.head) + 4*int64(s.next-s.first)
}

// Len returns the number of exchanges kept.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.next - s.first)
}

// maxEntry is the size of the largest entry the ring holds.
func (s *Store) maxEntry() int { return len(s.ring) }

// tunnelID returns the number entries use for a tunnel's label.
func (s *Store) tunnelID(label string) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.tunnelIDs[label]
	if !ok {
		id = uint32(len(s.tunnels))
		s.tunnels = append(s.tunnels, label)
		s.tunnelIDs[label] = id
	}
	return id
}

// id returns the id of the exchange with a sequence number: the store's
// epoch and the number, 16 hex digits, so that ids sort in capture order
// like ngrok's.
func (s *Store) id(seq uint64) string { return formatID(uint64(s.epoch)<<32 | seq&math.MaxUint32) }

// seqOf returns the sequence number of the kept exchange with the id;
// called with s.mu held. The kept exchanges' numbers span less than 2^32,
// so the id's low 32 bits tell them apart.
func (s *Store) seqOf(id string) (uint64, bool) {
	v, ok := parseID(id)
	if !ok || uint32(v>>32) != s.epoch {
		return 0, false
	}
	seq := s.first + uint64(uint32(v)-uint32(s.first))
	return seq, seq < s.next
}

func (s *Store) slot(seq uint64) uint32 {
	i := seq % s.slots * 4
	return le.Uint32(s.index[i:])
}

func (s *Store) setSlot(seq uint64, v uint32) {
	i := seq % s.slots * 4
	le.PutUint32(s.index[i:], v)
}

// entry returns the bytes of a kept exchange's entry; called with s.mu
// held. They stay valid only while s.mu is held.
func (s *Store) entry(seq uint64) []byte {
	v := s.slot(seq)
	if v&slotInFlight != 0 {
		return s.inFlight[v&^slotInFlight]
	}
	e := s.ring[v:]
	return e[:le.Uint32(e[offSize:])]
}

// flight is an exchange in flight: its sequence number and its entry's
// place in Store.inFlight.
type flight struct {
	seq   uint64
	place uint32
}

// begin keeps the entry of a request whose response is pending. The entry
// stays the caller's, who must not change it before calling finish.
func (s *Store) begin(e []byte) flight {
	s.mu.Lock()
	defer s.mu.Unlock()
	seq := s.next
	s.next++
	if s.next-s.first > s.slots {
		s.forget(s.next - s.slots - 1)
	}
	le.PutUint64(e[offSeq:], seq)
	f := flight{seq: seq, place: uint32(len(s.inFlight))}
	if n := len(s.free); n > 0 {
		f.place, s.free = s.free[n-1], s.free[:n-1]
		s.inFlight[f.place] = e
	} else {
		s.inFlight = append(s.inFlight, e)
	}
	s.setSlot(seq, slotInFlight|f.place)
	s.publish(EventRequest, seq)
	return f
}

// finish replaces the pending entry of an exchange with its finished one,
// made of m's header and the parts (which m's ends describe), if the
// exchange is still kept. The pending entry is the caller's again.
func (s *Store) finish(f flight, m *meta, parts [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight[f.place] = nil
	s.free = append(s.free, f.place)
	seq := f.seq
	if seq < s.first {
		return // dropped or cleared meanwhile
	}
	n := align(uint64(m.size))
	if n > uint64(len(s.ring)) {
		// Its heads alone are larger than the ring: it goes as if kept
		// and dropped at once, and so do the older ones.
		s.forget(seq)
		return
	}
	pos := s.reserve(n)
	if seq < s.first {
		// Making room dropped this exchange too: an entry that finished
		// earlier but started later went, and the oldest go first. The
		// space reserved, the ring's newest, is given back.
		s.tail -= n
		s.forget(seq)
		return
	}
	e := s.ring[pos : pos+n]
	m.seq = seq
	m.put(e)
	w := headerSize
	for _, p := range parts {
		w += copy(e[w:], p)
	}
	s.setSlot(seq, uint32(pos))
	s.publish(EventUpdate, seq)
}

// align rounds n up to a multiple of 8.
func align(n uint64) uint64 { return (n + 7) &^ 7 }

// reserve makes room for n bytes in the ring, dropping the oldest entries
// as needed, and returns where they start; called with s.mu held. An
// entry that would not fit before the ring's end starts over at its
// beginning, the space skipped marked as padding.
func (s *Store) reserve(n uint64) uint64 {
	size := uint64(len(s.ring))
	for {
		if s.head == s.tail {
			// Empty: start at the beginning, so that any entry fits.
			s.tail = (s.tail + size - 1) / size * size
			s.head = s.tail
		}
		need, pos := n, s.tail%size
		if pos+n > size {
			need += size - pos
		}
		if size-(s.tail-s.head) >= need {
			break
		}
		s.drop()
	}
	pos := s.tail % size
	if pos+n > size {
		s.pad(pos, size-pos)
		s.tail += size - pos
		pos = 0
	}
	s.tail += n
	return pos
}

// pad marks n bytes of the ring at pos as holding no exchange.
func (s *Store) pad(pos, n uint64) {
	le.PutUint32(s.ring[pos+offSize:], uint32(n))
	le.PutUint16(s.ring[pos+offFlags:], flagPad)
}

// drop frees the ring's oldest entry, dropping its exchange and every
// older one; called with s.mu held.
func (s *Store) drop() {
	e := s.ring[s.head%uint64(len(s.ring)):]
	s.head += align(uint64(le.Uint32(e[offSize:])))
	if le.Uint16(e[offFlags:])&flagPad == 0 {
		s.forget(le.Uint64(e[offSeq:]))
	}
}

// forget drops exchange seq and every older one; called with s.mu held.
// Once none is left, the ring holds only dropped entries: it is emptied.
func (s *Store) forget(seq uint64) {
	s.first = max(s.first, seq+1)
	if s.first == s.next {
		s.head = s.tail
	}
}

// copyEntry returns a copy of a kept exchange's entry and its tunnel's
// label; called with s.mu held.
func (s *Store) copyEntry(seq uint64) ([]byte, string) {
	e := s.entry(seq)
	return bytes.Clone(e), s.tunnels[le.Uint32(e[offTunnel:])]
}

// Get returns the exchange with the id, or nil.
func (s *Store) Get(id string) *Exchange {
	s.mu.Lock()
	seq, ok := s.seqOf(id)
	var e []byte
	var tunnel string
	if ok {
		e, tunnel = s.copyEntry(seq)
	}
	s.mu.Unlock()
	if e == nil {
		return nil
	}
	return decodeEntry(e, id, tunnel)
}

// listBatch bounds the bytes List copies while holding the lock, so that
// listing a full store holds up captures for microseconds at a time.
const listBatch = 256 << 10

// List returns up to limit exchanges (all when limit <= 0), newest first,
// only those of the tunnel when tunnel is not empty. Exchanges dropped
// while it runs are left out.
func (s *Store) List(limit int, tunnel string) []*Exchange {
	var out []*Exchange
	s.mu.Lock()
	tid, known := s.tunnelIDs[tunnel]
	seq := s.next // the next to look at is seq-1
	s.mu.Unlock()
	if tunnel != "" && !known {
		return out
	}
	type kept struct {
		seq    uint64
		e      []byte
		tunnel string
	}
	full := func(n int) bool { return limit > 0 && n >= limit }
	var batch []kept
	for {
		batch, copied := batch[:0], 0
		s.mu.Lock()
		for seq = min(seq, s.next); seq > s.first && copied < listBatch && !full(len(out)+len(batch)); seq-- {
			e := s.entry(seq - 1)
			if tunnel != "" && le.Uint32(e[offTunnel:]) != tid {
				continue
			}
			batch = append(batch, kept{seq - 1, bytes.Clone(e), s.tunnels[le.Uint32(e[offTunnel:])]})
			copied += len(e)
		}
		done := seq <= s.first || full(len(out)+len(batch))
		s.mu.Unlock()
		for _, k := range batch {
			out = append(out, decodeEntry(k.e, s.id(k.seq), k.tunnel))
		}
		if done {
			return out
		}
	}
}

// Clear forgets every exchange.
func (s *Store) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forget(s.next - 1)
	for sub := range s.subs {
		s.send(sub, Event{Type: EventClear})
	}
}

// EventType says what changed in the store.
type EventType string

// Event types.
const (
	EventRequest EventType = "request" // a new exchange, response pending
	EventUpdate  EventType = "update"  // an exchange finished
	EventClear   EventType = "clear"   // every exchange was deleted
)

// Event is one change, delivered to subscribers.
type Event struct {
	Type     EventType
	Exchange *Exchange // nil for EventClear
}

// subscriber receives events until it falls behind by more than its buffer,
// when its channel is closed so that it starts over from a fresh list.
type subscriber struct {
	ch chan Event
}

// Subscribe returns a channel of changes and a function that ends the
// subscription. The channel is closed if the reader falls behind.
func (s *Store) Subscribe() (<-chan Event, func()) {
	sub := &subscriber{ch: make(chan Event, 256)}
	s.mu.Lock()
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
	return sub.ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.subs[sub]; ok {
			delete(s.subs, sub)
			close(sub.ch)
		}
	}
}

// publish tells the subscribers, if any, about a change to exchange seq;
// called with s.mu held. The exchange is decoded once, for all of them.
func (s *Store) publish(t EventType, seq uint64) {
	if len(s.subs) == 0 {
		return
	}
	e, tunnel := s.copyEntry(seq)
	ev := Event{Type: t, Exchange: decodeEntry(e, s.id(seq), tunnel)}
	for sub := range s.subs {
		s.send(sub, ev)
	}
}

// send gives sub an event without blocking, or drops sub; called with
// s.mu held.
func (s *Store) send(sub *subscriber, e Event) {
	select {
	case sub.ch <- e:
	default:
		delete(s.subs, sub)
		close(sub.ch)
	}
}
