package linkemu

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// chunkSize is the most one read takes from a sender. At 1 Gbit/s a chunk
// is about a quarter of a millisecond on the wire.
const chunkSize = 32 << 10

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// chunk is bytes on their way through one direction, or the end of the
// stream (data nil) with the reason the sender stopped.
type chunk struct {
	buf    *[]byte // pooled, or nil for small chunks kept in data alone
	data   []byte
	arrive time.Time
	end    error // io.EOF for a clean end
}

func (c *chunk) release() {
	if c.buf != nil {
		chunkPool.Put(c.buf)
	}
}

// pump carries one connection's bytes in one direction: a reader that
// schedules what it reads on the direction's wire, and a writer that
// delivers each chunk when it arrives.
type pump struct {
	dir      *direction
	src, dst net.Conn
	done     <-chan struct{} // closed when the connection is torn down

	mu      sync.Mutex
	queue   []chunk
	pending int           // bytes in queue
	ready   chan struct{} // a chunk was queued
	room    chan struct{} // bytes left the queue
}

func newPump(dir *direction, src, dst net.Conn, done <-chan struct{}) *pump {
	return &pump{dir: dir, src: src, dst: dst, done: done, ready: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// sleep waits for d, or until the connection is torn down. It reports
// whether the connection is still up.
func sleep(d time.Duration, done <-chan struct{}) bool {
	if d <= 0 {
		select {
		case <-done:
			return false
		default:
			return true
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}

func (p *pump) push(c chunk) {
	p.mu.Lock()
	p.queue = append(p.queue, c)
	p.pending += len(c.data)
	p.mu.Unlock()
	signal(p.ready)
}

// read takes bytes from src and schedules them, from notBefore on (the
// connection's handshake), until src ends or the connection is torn down.
func (p *pump) read(notBefore time.Time) {
	if !sleep(time.Until(notBefore), p.done) {
		return
	}
	limit := p.dir.inFlight()
	for {
		for {
			p.mu.Lock()
			full := p.pending >= limit
			p.mu.Unlock()
			if !full {
				break
			}
			select {
			case <-p.room:
			case <-p.done:
				return
			}
		}
		buf := chunkPool.Get().(*[]byte)
		n, err := p.src.Read(*buf)
		if n > 0 {
			c := chunk{buf: buf, data: (*buf)[:n]}
			if n < chunkSize/8 {
				c.buf, c.data = nil, append([]byte(nil), (*buf)[:n]...)
				chunkPool.Put(buf)
			}
			var wait time.Duration
			c.arrive, wait = p.dir.send(n, time.Now())
			p.push(c)
			if !sleep(wait, p.done) {
				return
			}
		} else {
			chunkPool.Put(buf)
		}
		if err != nil {
			end, _ := p.dir.send(0, time.Now())
			p.push(chunk{arrive: end, end: err})
			return
		}
	}
}

// write delivers the queued chunks to dst as they arrive, and passes on the
// end of the stream: a clean end half-closes dst, any other closes it. It
// returns the error that stopped the delivery, if any.
func (p *pump) write() error {
	var out [][]byte
	var taken []chunk
	for {
		p.mu.Lock()
		queued := len(p.queue) > 0
		var arrive time.Time
		if queued {
			arrive = p.queue[0].arrive
		}
		p.mu.Unlock()
		if !queued {
			select {
			case <-p.ready:
				continue
			case <-p.done:
				return nil
			}
		}
		if !sleep(time.Until(arrive), p.done) {
			return nil
		}
		// Everything that has arrived by now goes out in one write.
		now := time.Now()
		p.mu.Lock()
		i, n := 0, 0
		var end error
		for ; i < len(p.queue) && !p.queue[i].arrive.After(now); i++ {
			c := p.queue[i]
			if c.data == nil {
				end = c.end
				i++
				break
			}
			out = append(out, c.data)
			taken = append(taken, c)
			n += len(c.data)
		}
		p.queue = p.queue[i:]
		p.pending -= n
		p.mu.Unlock()
		signal(p.room)
		var err error
		if len(out) > 0 {
			bufs := net.Buffers(out)
			_, err = bufs.WriteTo(p.dst)
		}
		for _, c := range taken {
			c.release()
		}
		clear(out)
		clear(taken)
		out, taken = out[:0], taken[:0]
		switch {
		case err != nil:
			return err
		case errors.Is(end, io.EOF):
			closeWrite(p.dst)
			return nil
		case end != nil:
			p.dst.Close()
			return nil
		}
	}
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}

// drop releases what is still queued once the connection is torn down.
func (p *pump) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.queue {
		p.queue[i].release()
	}
	p.queue, p.pending = nil, 0
}
