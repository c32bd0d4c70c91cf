package forwarder

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/yamux"

	"porthole/wire"
)

// errSessionEnded is returned to a bind in flight when the session ends.
var errSessionEnded = errors.New("relay session ended")

// control is the control stream of a live session. Once the handshake is
// done one goroutine reads it (read) and hands each bind reply to the
// caller waiting for it; the relay answers binds in order.
type control struct {
	st      *yamux.Stream
	onDrain func()

	wmu     sync.Mutex // serializes writes, and keeps pending in write order
	mu      sync.Mutex
	pending []chan *wire.Message
	ended   bool
}

func newControl(st *yamux.Stream, onDrain func()) *control {
	return &control{st: st, onDrain: onDrain}
}

// errSessionLost wraps the reason a session ended without a word from the relay.
func errSessionLost(err error) error { return fmt.Errorf("session lost: %w", err) }

// read dispatches the relay's messages until the stream ends, or until the
// relay ends the session with a coded error (a newer session of this agent
// took over, a broken limit), which it returns.
func (c *control) read() error {
	defer c.end()
	for {
		m, err := wire.ReadMessage(c.st)
		if err != nil {
			return errSessionLost(err)
		}
		switch {
		case m.Type == wire.TypeDrain:
			c.onDrain()
		case m.Type == wire.TypeError && m.ErrorFor == 0 && m.Error != nil:
			return m.Error
		case m.Type == wire.TypeBound || m.Type == wire.TypeError && m.ErrorFor != 0:
			c.mu.Lock()
			var ch chan *wire.Message
			if len(c.pending) > 0 {
				ch, c.pending = c.pending[0], c.pending[1:]
			}
			c.mu.Unlock()
			if ch != nil {
				ch <- m
			}
		}
	}
}

// end wakes every caller still waiting for a reply.
func (c *control) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ended = true
	for _, ch := range c.pending {
		close(ch)
	}
	c.pending = nil
}

// bind sends a bind and waits for its reply.
func (c *control) bind(ctx context.Context, b *wire.Bind) (*wire.Message, error) {
	ch := make(chan *wire.Message, 1)
	c.wmu.Lock()
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		c.wmu.Unlock()
		return nil, errSessionEnded
	}
	c.pending = append(c.pending, ch)
	c.mu.Unlock()
	err := wire.WriteMessage(c.st, &wire.Message{Type: wire.TypeBind, Bind: b})
	c.wmu.Unlock()
	if err != nil {
		return nil, err
	}
	select {
	case m, ok := <-ch:
		if !ok {
			return nil, errSessionEnded
		}
		return m, nil
	case <-ctx.Done():
		// The reply, when it comes, goes to ch and is dropped.
		return nil, ctx.Err()
	}
}

// unbind tells the relay to release a tunnel; the relay does not reply.
func (c *control) unbind(id uint32) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return wire.WriteMessage(c.st, &wire.Message{Type: wire.TypeUnbind, Unbind: &wire.Unbind{TunnelID: id}})
}
