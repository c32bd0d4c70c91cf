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
// done one goroutine reads it (read) and hands each reply to the caller
// waiting for it; the relay answers binds and unbinds in order.
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

// ErrSessionLost is why a session that was up ended without a word from
// the relay (the connection closed or stopped answering). It wraps the
// cause; the forwarder reconnects.
var ErrSessionLost = errors.New("session lost")

func errSessionLost(err error) error { return fmt.Errorf("%w: %w", ErrSessionLost, err) }

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
		case m.Type == wire.TypeBound || m.Type == wire.TypeUnbound || m.Type == wire.TypeError && m.ErrorFor != 0:
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
	ch, err := c.send(&wire.Message{Type: wire.TypeBind, Bind: b})
	if err != nil {
		return nil, err
	}
	return wait(ctx, ch)
}

// unbind asks the relay to release a tunnel and waits until it has.
func (c *control) unbind(ctx context.Context, id uint32) error {
	ch, err := c.send(&wire.Message{Type: wire.TypeUnbind, Unbind: &wire.Unbind{TunnelID: id}})
	if err != nil {
		return err
	}
	_, err = wait(ctx, ch)
	return err
}

// send writes a request and queues the channel its reply will come on.
func (c *control) send(m *wire.Message) (chan *wire.Message, error) {
	ch := make(chan *wire.Message, 1)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return nil, errSessionEnded
	}
	c.pending = append(c.pending, ch)
	c.mu.Unlock()
	return ch, wire.WriteMessage(c.st, m)
}

// wait returns the reply on ch. If ctx ends first, the reply is dropped
// when it comes.
func wait(ctx context.Context, ch chan *wire.Message) (*wire.Message, error) {
	select {
	case m, ok := <-ch:
		if !ok {
			return nil, errSessionEnded
		}
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
