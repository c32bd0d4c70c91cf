// Package backlog bounds the memory that streams hold for receivers slower
// than their senders, and sheds load fairly when a bound is reached.
//
// A yamux stream holds what its peer has sent and its reader has not taken
// yet, up to its receive window, which yamux grants in full as the stream
// opens. A stream whose reader keeps up holds little; one whose reader is
// slower than the sender (a public client on a slow link, or one that stops
// reading on purpose; an upstream that reads slowly) fills its window and
// holds it as long as it stays behind. A Budget is charged what each stream
// holds, as counted by wire.Ledger, and bounds it twice: in all (Max), and
// per client address (Share), so that one client cannot take what others
// need. When a stream's growth takes its client over its share, that
// client's own streams are shed; when it takes the total over Max, the
// client holding the most in the network (IPv4 /24, IPv6 /48) holding the
// most loses streams. Either way the stream shed first
// is the one that has been behind the longest: its buffer has not been
// empty since the furthest back.
package backlog

import (
	"net/netip"
	"sync"
	"time"

	"porthole/internal/netutil"
)

// Reason says which bound shedding a stream kept.
type Reason int

// Reasons for shedding a stream.
const (
	// OverShare: its client held more than its share.
	OverShare Reason = iota
	// OverTotal: the streams of all clients held more than the budget.
	OverTotal
)

func (r Reason) String() string {
	if r == OverShare {
		return "client_share"
	}
	return "total"
}

// Budget is charged what streams hold, by client address.
type Budget struct {
	max, share int64
	now        func() time.Time

	mu      sync.Mutex
	total   int64
	clients map[netip.Addr]*client
	shed    [2]uint64 // by Reason
}

// client is one client address and its streams' charges.
type client struct {
	key     netip.Addr
	held    int64
	charges map[*Charge]struct{}
}

// New returns a budget of max bytes in all and share bytes per client
// address. A stream never holds more than its receive window, so share
// should be at least that, and max at least share.
func New(max, share int64) *Budget {
	return &Budget{max: max, share: share, now: time.Now, clients: map[netip.Addr]*client{}}
}

// Stats are a budget's figures.
type Stats struct {
	Held    int64                // bytes held by the streams charged
	Clients int                  // client addresses with streams charged
	Shed    map[Reason]uint64    // streams shed, by reason
	ByKey   map[netip.Addr]int64 // bytes held, by client address
}

// Stats returns the budget's figures now.
func (b *Budget) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := Stats{Held: b.total, Clients: len(b.clients), Shed: map[Reason]uint64{}, ByKey: map[netip.Addr]int64{}}
	for r, n := range b.shed {
		st.Shed[Reason(r)] = n
	}
	for k, c := range b.clients {
		st.ByKey[k] = c.held
	}
	return st
}

// Charge is what one stream holds, charged to its client. It is a
// wire.Holder.
type Charge struct {
	b     *Budget
	c     *client
	shed  func(Reason)
	held  int64
	since time.Time // when held last rose from nothing; zero while it holds nothing
	state chargeState
}

type chargeState int

const (
	charged chargeState = iota
	wasShed
	released
)

// Open returns a charge for a stream of the client at key. shed is called
// if the budget sheds the stream, at most once and with no lock held: it
// must end the stream and free what it holds, and must not block (the
// bytes that took the budget over are still arriving). From then on the
// stream is no longer charged.
func (b *Budget) Open(key netip.Addr, shed func(Reason)) *Charge {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.clients[key]
	if c == nil {
		c = &client{key: key, charges: map[*Charge]struct{}{}}
		b.clients[key] = c
	}
	ch := &Charge{b: b, c: c, shed: shed}
	c.charges[ch] = struct{}{}
	return ch
}

// Hold charges delta more bytes (fewer, if negative). Growth that takes the
// client over its share, or the budget over its total, sheds streams.
func (ch *Charge) Hold(delta int64) {
	b := ch.b
	b.mu.Lock()
	if ch.state != charged {
		b.mu.Unlock()
		return
	}
	was := ch.held
	ch.held += delta
	ch.c.held += delta
	b.total += delta
	switch {
	case ch.held <= 0:
		ch.since = time.Time{}
	case was <= 0:
		ch.since = b.now()
	}
	type victim struct {
		ch     *Charge
		reason Reason
	}
	var victims []victim
	for delta > 0 && ch.c.held > b.share {
		v := ch.c.behindLongest()
		if v == nil {
			break
		}
		b.shedLocked(v, OverShare)
		victims = append(victims, victim{v, OverShare})
	}
	for delta > 0 && b.total > b.max {
		v := b.heaviest().behindLongest()
		if v == nil {
			break
		}
		b.shedLocked(v, OverTotal)
		victims = append(victims, victim{v, OverTotal})
	}
	b.mu.Unlock()
	for _, v := range victims {
		v.ch.shed(v.reason)
	}
}

// Release ends the charge: the stream holds nothing any more.
func (ch *Charge) Release() {
	b := ch.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if ch.state == charged {
		b.uncharge(ch)
	}
	ch.state = released
}

// shedLocked takes ch off the budget for reason.
func (b *Budget) shedLocked(ch *Charge, reason Reason) {
	b.uncharge(ch)
	ch.state = wasShed
	b.shed[reason]++
}

// uncharge takes what ch holds off its client and the total, and ch off
// its client's charges.
func (b *Budget) uncharge(ch *Charge) {
	c := ch.c
	c.held -= ch.held
	b.total -= ch.held
	ch.held = 0
	delete(c.charges, ch)
	if len(c.charges) == 0 {
		delete(b.clients, c.key)
	}
}

// heaviest returns the client that holds the most in the network (IPv4
// /24, IPv6 /48) that holds the most: a stranger spreading stalled streams
// over many addresses of a network sheds its own streams, not those of a
// client elsewhere that holds more than any one of its addresses.
func (b *Budget) heaviest() *client {
	byNet := map[netip.Prefix]int64{}
	for key, c := range b.clients {
		byNet[netutil.NetworkKey(key)] += c.held
	}
	var top *client
	var topNet int64
	for key, c := range b.clients {
		n := byNet[netutil.NetworkKey(key)]
		if top == nil || n > topNet || n == topNet && c.held > top.held {
			top, topNet = c, n
		}
	}
	return top
}

// behindLongest returns the client's charge that has held something for
// the longest (of two as old, the larger), or nil if none holds anything.
func (c *client) behindLongest() *Charge {
	if c == nil {
		return nil
	}
	var v *Charge
	for ch := range c.charges {
		if ch.held <= 0 {
			continue
		}
		if v == nil || ch.since.Before(v.since) || ch.since.Equal(v.since) && ch.held > v.held {
			v = ch
		}
	}
	return v
}
