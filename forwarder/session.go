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
	ys      *yamux.Session
	servers map[uint32]*tunnelServer
	raw     sync.WaitGroup
	drained sync.Once
}

// serve accepts the relay's streams until the session ends or ctx is done,
// in which case it drains. It also obeys the relay's drain request.
func (f *Forwarder) serve(ctx context.Context, ys *yamux.Session, ctrl *yamux.Stream) error {
	sess := &session{ys: ys, servers: map[uint32]*tunnelServer{}}
	for _, t := range f.tunnels {
		if t.http != nil {
			sess.servers[t.id] = t.http.newServer()
		}
	}
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
	// The control stream stays open for the life of the session. The relay
	// may ask the agent to drain before it shuts down.
	go func() {
		for {
			m, err := wire.ReadMessage(ctrl)
			if err != nil {
				return
			}
			if m.Type == wire.TypeDrain {
				f.log.Info("relay is shutting down; draining")
				go f.drainServers(sess)
			}
		}
	}()
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
	ys.Close()
	for _, ts := range sess.servers {
		ts.close()
	}
	return err
}

// drainServers stops new streams, lets in-flight requests and connections
// finish for up to DrainTimeout, and closes idle ones.
func (f *Forwarder) drainServers(sess *session) {
	sess.drained.Do(func() {
		dctx, cancel := context.WithTimeout(context.Background(), f.cfg.DrainTimeout)
		defer cancel()
		var wg sync.WaitGroup
		for _, ts := range sess.servers {
			wg.Go(func() { ts.shutdown(dctx) })
		}
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
	t := f.byID[h.TunnelID]
	if t == nil || t.Proto != h.Proto {
		f.log.Warn("stream for unknown tunnel", "tunnel", h.TunnelID, "proto", h.Proto)
		st.Close()
		return
	}
	if ts := sess.servers[t.id]; ts != nil {
		ts.listener.Push(newStreamConn(st, h))
		return
	}
	sess.raw.Add(1)
	defer sess.raw.Done()
	t.raw.serve(st, h)
}
