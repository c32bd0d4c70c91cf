package forwarder

import (
	"context"
	"io"
	"maps"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"

	"porthole/internal/backlog"
	"porthole/internal/group"
	"porthole/internal/netutil"
	"porthole/wire"
)

// session is what one relay session serves: an HTTP server per HTTP
// tunnel, and the raw connections in flight. Every goroutine it starts
// belongs to tasks, raw or a tunnelServer, and is joined before serve
// returns.
type session struct {
	f      *Forwarder
	ys     *yamux.Session
	ledger *wire.Ledger
	ctrl   *control
	ctx    context.Context // canceled when the session ends: dials and handshakes stop
	cancel context.CancelFunc
	tasks  group.Group // accept loop, control reader, streams, drain
	raw    group.Group // raw streams in flight, for drain

	// Streams the relay has open to us, and its cap on them. From
	// highWater on, idle HTTP connections are closed at once, so that a
	// client holding many idle keep-alive connections cannot use up the
	// cap and lock other clients out.
	open      atomic.Int64
	highWater int64

	mu      sync.Mutex
	servers map[uint32]*tunnelServer
	drained sync.Once
}

// highWaterQuarters is the share of the relay's stream cap, in quarters,
// from which idle HTTP connections are closed.
const highWaterQuarters = 3

func (sess *session) server(id uint32) *tunnelServer {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.servers[id]
}

func (sess *session) allServers() []*tunnelServer {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return slices.Collect(maps.Values(sess.servers))
}

// serve accepts the relay's streams until the session ends or ctx is done,
// in which case it drains. It also obeys the relay's drain request, and
// ends with the relay's error when the relay ends the session with one.
func (f *Forwarder) serve(ctx context.Context, l *link) error {
	ys, ctrlStream := l.ys, l.ctrl
	sess := &session{f: f, ys: ys, ledger: l.ledger, servers: map[uint32]*tunnelServer{}}
	sess.ctx, sess.cancel = context.WithCancel(context.Background())
	if l.welcome.MaxStreams > 0 {
		sess.highWater = int64(l.welcome.MaxStreams) * highWaterQuarters / 4
	}
	sess.ctrl = newControl(ctrlStream, func() {
		f.log.Info("relay is shutting down; draining")
		sess.tasks.Go(sess.drain)
	})
	f.mu.Lock()
	for _, t := range f.byID {
		if t.http != nil {
			sess.servers[t.id] = t.http.newServer(sess)
		}
	}
	f.live = sess
	st := State{Phase: Online, Forwarding: f.forwardings()}
	f.mu.Unlock()
	f.setState(st)

	// The control stream stays open for the life of the session: it carries
	// the binds of tunnels added while online, the relay's drain request,
	// and the error with which the relay may end the session.
	ended := make(chan error, 2)
	sess.tasks.Go(func() { ended <- sess.acceptStreams() })
	sess.tasks.Go(func() { ended <- sess.ctrl.read() })
	var err error
	select {
	case err = <-ended:
	case <-ctx.Done():
		ys.GoAway()
		sess.drain()
		sess.goodbye(ctrlStream)
		err = ctx.Err()
	}
	f.mu.Lock()
	f.live = nil
	f.mu.Unlock()
	ys.Close()
	sess.cancel()
	for _, ts := range sess.allServers() {
		ts.close()
	}
	sess.tasks.Wait()
	sess.raw.Wait()
	return err
}

// goodbye closes the control stream, which tells the relay the agent is
// leaving, and waits (briefly) for the relay to end the session: it
// releases the tunnels' names first, so that once Run returns they may be
// bound again at once, by this agent or another.
func (sess *session) goodbye(ctrl *yamux.Stream) {
	ctrl.Close()
	t := time.NewTimer(goodbyeTimeout)
	defer t.Stop()
	select {
	case <-sess.ys.CloseChan():
	case <-t.C:
	}
}

// goodbyeTimeout bounds the wait for the relay to end a session the agent leaves.
const goodbyeTimeout = 2 * time.Second

// acceptStreams serves each stream the relay opens, until the session ends.
func (sess *session) acceptStreams() error {
	for {
		st, err := sess.ys.AcceptStream()
		if err != nil {
			return errSessionLost(err)
		}
		cs := sess.count(st)
		if !sess.tasks.Go(func() { sess.handleStream(cs) }) {
			cs.Close()
		}
	}
}

// drain stops new streams, lets in-flight requests and connections finish
// for up to DrainTimeout, and closes idle ones.
func (sess *session) drain() {
	sess.drained.Do(func() {
		dctx, cancel := context.WithTimeout(context.Background(), sess.f.cfg.DrainTimeout)
		defer cancel()
		var wg sync.WaitGroup
		for _, ts := range sess.allServers() {
			wg.Go(func() { ts.shutdown(dctx) })
		}
		// Raw streams end on their own, or when the session closes.
		rawDone := make(chan struct{})
		if sess.tasks.Go(func() { sess.raw.Wait(); close(rawDone) }) {
			wg.Go(func() {
				select {
				case <-rawDone:
				case <-dctx.Done():
				}
			})
		}
		wg.Wait()
	})
}

func (sess *session) handleStream(st *countedStream) {
	f := sess.f
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
	if f.backlog != nil {
		st.Attach(f.backlog.Open(netutil.ClientKey(h.ClientAddr), func(r backlog.Reason) { sess.shed(st, h.ClientAddr, r) }))
	}
	if t.http != nil {
		if ts := sess.server(t.id); ts != nil {
			ts.listener.Push(t.http.wrapConn(st, h))
			return
		}
		st.Close()
		return
	}
	if !sess.raw.Go(func() { t.raw.serve(sess.ctx, st, h) }) {
		st.Close()
	}
}

// shed aborts a stream the backlog budget sheds: the relay is told to stop
// sending on it (and closes the public connection), the upstream request
// or connection is ended (see OnAbort in http.go and raw.go), and what the
// stream holds is freed.
func (sess *session) shed(st *countedStream, client string, r backlog.Reason) {
	sess.tasks.Go(func() {
		sess.f.shedLog.Shed(client, r)
		st.Abort()
	})
}

// count wraps a stream so that the session knows how many are open, and
// closes idle HTTP connections when the count reaches the high water mark.
func (sess *session) count(st *yamux.Stream) *countedStream {
	if n := sess.open.Add(1); sess.highWater > 0 && n == sess.highWater {
		for _, ts := range sess.allServers() {
			ts.closeIdle()
		}
	}
	return &countedStream{Stream: sess.ledger.Stream(st), ys: sess.ys, open: &sess.open}
}

// underPressure reports whether the relay's stream cap is near.
func (sess *session) underPressure() bool {
	return sess.highWater > 0 && sess.open.Load() >= sess.highWater
}

// countedStream is a relay stream that the session counts until it is closed.
type countedStream struct {
	*wire.Stream
	ys   *yamux.Session
	open *atomic.Int64
	once sync.Once
}

// Read reports the end of the session as such: yamux ends every stream of
// a closed session with io.EOF, which would read as the relay's clean
// half-close and leave the upstream connection open.
func (s *countedStream) Read(p []byte) (int, error) {
	n, err := s.Stream.Read(p)
	if err == io.EOF && s.ys.IsClosed() {
		err = yamux.ErrSessionShutdown
	}
	return n, err
}

func (s *countedStream) Close() error {
	s.once.Do(func() { s.open.Add(-1) })
	return s.Stream.Close()
}

var _ net.Conn = (*countedStream)(nil)
