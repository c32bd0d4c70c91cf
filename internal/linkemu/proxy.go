package linkemu

import (
	"net"
	"sync"
	"time"
)

// socketBuffer bounds the kernel's receive buffer on the emulator's own
// sockets. Left to autotuning it can grow to many megabytes, a queue in
// front of the emulated one that no real path has.
const socketBuffer = 256 << 10

// Proxy accepts TCP connections and carries each through a Link to its
// target.
type Proxy struct {
	link   *Link
	target string
	ln     net.Listener

	mu     sync.Mutex
	conns  map[*proxyConn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Listen starts a proxy on addr (such as "127.0.0.1:0") whose connections
// reach target through the link: what the dialer sends takes the forward
// direction, what the target answers takes the back direction.
func (l *Link) Listen(addr, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &Proxy{link: l, target: target, ln: ln, conns: map[*proxyConn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Close stops accepting, tears down every connection and waits for them.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.teardown()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		pc := &proxyConn{client: c, done: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.conns[pc] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go func() {
			defer p.wg.Done()
			pc.serve(p.link, p.target)
			p.mu.Lock()
			delete(p.conns, pc)
			p.mu.Unlock()
		}()
	}
}

// proxyConn is one connection through the link.
type proxyConn struct {
	client net.Conn
	done   chan struct{}
	once   sync.Once

	mu     sync.Mutex
	server net.Conn
}

func (c *proxyConn) teardown() {
	c.once.Do(func() {
		close(c.done)
		c.client.Close()
		c.mu.Lock()
		if c.server != nil {
			c.server.Close()
		}
		c.mu.Unlock()
	})
}

func (c *proxyConn) serve(l *Link, target string) {
	defer c.teardown()
	accepted := time.Now()
	server, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	c.mu.Lock()
	c.server = server
	c.mu.Unlock()
	select {
	case <-c.done: // torn down while dialing
		server.Close()
		return
	default:
	}
	for _, conn := range []net.Conn{c.client, server} {
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetReadBuffer(socketBuffer)
		}
	}
	fwd := newPump(l.forward, c.client, server, c.done)
	back := newPump(l.back, server, c.client, c.done)
	var readers sync.WaitGroup
	// The client's first byte leaves after the handshake's round trip; the
	// server may speak first once the client's SYN has reached it.
	readers.Go(func() { fwd.read(accepted.Add(l.RTT())) })
	readers.Go(func() { back.read(accepted.Add(l.forward.Delay)) })
	errc := make(chan error, 2)
	go func() { errc <- fwd.write() }()
	go func() { errc <- back.write() }()
	// The connection lasts until both directions have passed on their end,
	// or one of them fails to deliver.
	if err := <-errc; err != nil {
		c.teardown()
	}
	<-errc
	c.teardown()
	readers.Wait()
	fwd.drop()
	back.drop()
}
