package inspect

import (
	"strconv"
	"sync"
	"time"
)

// Defaults of Config.
const (
	DefaultBodyCap = 1 << 20  // bytes of each request or response body kept
	DefaultBudget  = 50 << 20 // bytes of all captured exchanges, like ngrok's inspect_db_size
)

// Config bounds what a Store keeps.
type Config struct {
	BodyCap int   // bytes kept of each body; the rest is counted, not kept
	Budget  int64 // bytes kept of all exchanges; the oldest go first
}

// DefaultConfig returns the default bounds.
func DefaultConfig() Config { return Config{BodyCap: DefaultBodyCap, Budget: DefaultBudget} }

// Store keeps captured exchanges, oldest first, within a memory budget. It
// is safe for concurrent use. Exchanges it hands out are never modified.
type Store struct {
	cfg Config

	mu    sync.Mutex
	list  []*Exchange // oldest first, by seq without gaps; list[head:] are live
	head  int
	used  int64
	seq   uint64 // of the newest exchange
	epoch int64
	subs  map[*subscriber]struct{}
}

// NewStore returns an empty store. Zero fields of cfg take the defaults.
func NewStore(cfg Config) *Store {
	if cfg.BodyCap <= 0 {
		cfg.BodyCap = DefaultBodyCap
	}
	if cfg.Budget <= 0 {
		cfg.Budget = DefaultBudget
	}
	return &Store{cfg: cfg, subs: map[*subscriber]struct{}{}, epoch: time.Now().Unix()}
}

// Config returns the store's bounds.
func (s *Store) Config() Config { return s.cfg }

// Used returns the bytes the kept exchanges account for.
func (s *Store) Used() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

// newID returns ids that sort in capture order, like ngrok's: the store's
// start time and the exchange's sequence number, 16 hex digits.
func (s *Store) newID(seq uint64) string {
	var b [16]byte
	const hex = "0123456789abcdef"
	v := uint64(uint32(s.epoch))<<32 | seq&0xffffffff
	for i := 15; i >= 0; i-- {
		b[i] = hex[v&0xf]
		v >>= 4
	}
	return string(b[:])
}

// index returns the position in s.list of the exchange with the id, or -1;
// called with s.mu held. Ids map to positions without a map: the live
// exchanges have consecutive sequence numbers.
func (s *Store) index(id string) int {
	if len(id) != 16 || s.head == len(s.list) {
		return -1
	}
	v, err := strconv.ParseUint(id, 16, 64)
	if err != nil || uint32(v>>32) != uint32(s.epoch) {
		return -1
	}
	first := s.list[s.head].seq & 0xffffffff
	i := s.head + int(v&0xffffffff-first)
	if v&0xffffffff < first || i >= len(s.list) || s.list[i].ID != id {
		return -1
	}
	return i
}

// add keeps a new exchange (its request seen, its response pending) and
// assigns its id.
func (s *Store) add(x *Exchange) {
	s.mu.Lock()
	s.seq++
	x.seq, x.ID = s.seq, s.newID(s.seq)
	x.size = x.footprint()
	s.list = append(s.list, x)
	s.used += x.size
	s.evict()
	s.publish(Event{Type: EventRequest, Exchange: x})
	s.mu.Unlock()
}

// replace swaps in the finished version of an exchange, if the pending one
// is still kept.
func (s *Store) replace(old, done *Exchange) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.index(old.ID)
	if i < 0 || s.list[i] != old {
		return // evicted or cleared meanwhile
	}
	done.size = done.footprint()
	s.list[i] = done
	s.used += done.size - old.size
	s.evict()
	if s.index(done.ID) >= 0 {
		s.publish(Event{Type: EventUpdate, Exchange: done})
	}
}

// evict drops the oldest exchanges while over budget, keeping at least the
// newest one; called with s.mu held.
func (s *Store) evict() {
	for s.used > s.cfg.Budget && len(s.list)-s.head > 1 {
		x := s.list[s.head]
		s.list[s.head] = nil
		s.head++
		s.used -= x.size
	}
	// Compact once the dead prefix is the larger part.
	if s.head > 64 && s.head > len(s.list)/2 {
		s.list = append([]*Exchange(nil), s.list[s.head:]...)
		s.head = 0
	}
}

// Get returns the exchange with the id, or nil.
func (s *Store) Get(id string) *Exchange {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.index(id); i >= 0 {
		return s.list[i]
	}
	return nil
}

// List returns up to limit exchanges (all when limit <= 0), newest first,
// only those of the tunnel when tunnel is not empty.
func (s *Store) List(limit int, tunnel string) []*Exchange {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Exchange
	for i := len(s.list) - 1; i >= s.head; i-- {
		x := s.list[i]
		if tunnel != "" && x.Tunnel != tunnel {
			continue
		}
		out = append(out, x)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return out
}

// Clear forgets every exchange.
func (s *Store) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list, s.head, s.used = nil, 0, 0
	s.publish(Event{Type: EventClear})
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

// publish sends e to every subscriber without blocking; called with s.mu held.
func (s *Store) publish(e Event) {
	for sub := range s.subs {
		select {
		case sub.ch <- e:
		default:
			delete(s.subs, sub)
			close(sub.ch)
		}
	}
}
