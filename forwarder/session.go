package forwarder

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"porthole/wire"
)

// session is what one relay session serves: an HTTP server per HTTP
// tunnel, and the raw connections in flight.
type session struct {
	ys   *yamux.Session
	ctrl *control
	raw  sync.WaitGroup

	mu      sync.Mutex
	servers map[uint32]*tunnelServer
	drained sync.Once
}

func (sess *session) server(id uint32) *tunnelServer {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.servers[id]
}

// serve accepts the relay's streams until the session ends or ctx is done,
// in which case it drains. It also obeys the relay's drain request.
func (f *Forwarder) serve(ctx context.Context, ys *yamux.Session, ctrlStream *yamux.Stream) error {
	sess := &session{ys: ys, servers: map[uint32]*tunnelServer{}}
	sess.ctrl = newControl(ctrlStream, func() {
		f.log.Info("relay is shutting down; draining")
		go f.drainServers(sess)
	})
	f.mu.Lock()
	for _, t := range f.byID {
		if t.http != nil {
			sess.servers[t.id] = t.http.newServer()
		}
	}
	f.live = sess
	st := State{Phase: Online, Forwarding: f.forwardings()}
	f.mu.Unlock()
	f.setState(st)

	accepted := make(chan error, 1)
	go func() {
		for {
			st, err := ys.AcceptStream()
			if err != nil {
				accepted <- err
				return
			}
			go f.handleStream(sess, st)
		}
	}()
	// The control stream stays open for the life of the session: it carries
	// the binds of tunnels added while online, and the relay's drain request.
	go sess.ctrl.read()

	var err error
	select {
	case aerr := <-accepted:
		err = fmt.Errorf("session lost: %w", aerr)
	case <-ys.CloseChan():
		err = errors.New("session lost")
	case <-ctx.Done():
		ys.GoAway()
		f.drainServers(sess)
		err = ctx.Err()
	}
	f.mu.Lock()
	f.live = nil
	f.mu.Unlock()
	ys.Close()
	sess.mu.Lock()
	for _, ts := range sess.servers {
		ts.close()
	}
	sess.mu.Unlock()
	return err
}

// drainServers stops new streams, lets in-flight requests and connections
// finish for up to DrainTimeout, and closes idle ones.
func (f *Forwarder) drainServers(sess *session) {
	sess.drained.Do(func() {
		dctx, cancel := context.WithTimeout(context.Background(), f.cfg.DrainTimeout)
		defer cancel()
		var wg sync.WaitGroup
		sess.mu.Lock()
		for _, ts := range sess.servers {
			wg.Go(func() { ts.shutdown(dctx) })
		}
		sess.mu.Unlock()
		wg.Go(func() {
			done := make(chan struct{})
			go func() { sess.raw.Wait(); close(done) }()
			select {
			case <-done:
			case <-dctx.Done():
			}
		})
		wg.Wait()
	})
}

func (f *Forwarder) handleStream(sess *session, st *yamux.Stream) {
	st.SetReadDeadline(time.Now().Add(wire.HandshakeTimeout))
	h, err := wire.ReadStreamHeader(st)
	st.SetReadDeadline(time.Time{})
	if err != nil {
		st.Close()
		return
	}
	f.mu.Lock()
	t := f.byID[h.TunnelID]
	f.mu.Unlock()
	if t == nil || t.Proto != h.Proto {
		f.log.Warn("stream for unknown tunnel", "tunnel", h.TunnelID, "proto", h.Proto)
		st.Close()
		return
	}
	if t.http != nil {
		if ts := sess.server(t.id); ts != nil {
			ts.listener.Push(t.http.wrapConn(st, h))
			return
		}
		st.Close()
		return
	}
	sess.raw.Add(1)
	defer sess.raw.Done()
	t.raw.serve(st, h)
}
