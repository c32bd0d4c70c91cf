package app

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"porthole/engine"
	"porthole/forwarder"
	"porthole/wire"
)

// sent records notifications.
type sent struct {
	mu     sync.Mutex
	titles []string
}

func (s *sent) send(title, _ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.titles = append(s.titles, title)
}

func (s *sent) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.titles
	s.titles = nil
	return out
}

var (
	online = engine.Status{Running: true, State: forwarder.State{Phase: forwarder.Online,
		Forwarding: []forwarder.Forwarding{{URL: "http://web.localhost:7780"}}}}
	away    = engine.Status{Running: true, State: forwarder.State{Phase: forwarder.Reconnecting, Err: errors.New("relay went away")}}
	failed  = engine.Status{State: forwarder.State{Phase: forwarder.Failed, Err: errors.New("name taken")}}
	stopped = engine.Status{}
)

// TestNotificationsDoNotCryWolf runs the notifier on a fake clock: a drop
// healed within the grace period says nothing; a profile that stays down
// says so once, and again when it is back.
func TestNotificationsDoNotCryWolf(t *testing.T) {
	steps := []struct {
		status engine.Status
		after  time.Duration // time passing after the status
		want   []string
	}{
		{online, time.Second, []string{"web is online"}},
		// A blip: back within the grace period, not a word.
		{away, 3 * time.Second, nil},
		{away, 3 * time.Second, nil},
		{online, time.Minute, nil},
		// An outage: said once, however many retries it takes.
		{away, downGrace - time.Second, nil},
		{away, 2 * time.Second, []string{"web is offline"}},
		{away, time.Hour, nil},
		{online, time.Second, []string{"web is back online"}},
		// A stop the user asked for says nothing, even while away.
		{away, time.Second, nil},
		{stopped, time.Hour, nil},
		// Starting against a relay that is not there: said once.
		{engine.Status{Running: true, State: forwarder.State{Phase: forwarder.Connecting}}, time.Second, nil},
		{away, time.Hour, []string{"web cannot reach its relay"}},
		{online, time.Second, []string{"web is back online"}},
		// A failure is final: said at once.
		{failed, time.Hour, []string{"web stopped with an error"}},
	}
	synctest.Test(t, func(t *testing.T) {
		var s sent
		n := newNotifier(downGrace, s.send)
		defer n.close()
		for i, step := range steps {
			n.observe("w", "web", step.status)
			time.Sleep(step.after) // fake time, inside the bubble
			synctest.Wait()
			if got := s.take(); !slices.Equal(got, step.want) {
				t.Errorf("step %d (%v, then %v): sent %q, want %q", i, step.status.Phase, step.after, got, step.want)
			}
		}
	})
}

func TestNotifierSaysNothingAfterClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var s sent
		n := newNotifier(downGrace, s.send)
		n.observe("w", "web", online)
		n.observe("w", "web", away)
		n.close()
		n.observe("w", "web", failed)
		time.Sleep(time.Hour)
		synctest.Wait()
		if got := s.take(); !slices.Equal(got, []string{"web is online"}) {
			t.Errorf("sent %q", got)
		}
	})
}

// TestNotificationsSayWhyInPlainWords: the body of a notification about a
// profile that is away or failed says why as the tray and the settings
// form do, never with the relay's codes or the network stack's words.
func TestNotificationsSayWhyInPlainWords(t *testing.T) {
	lost := engine.Status{Running: true, State: forwarder.State{Phase: forwarder.Reconnecting,
		Err: fmt.Errorf("%w: %w", forwarder.ErrSessionLost, io.EOF)}}
	refused := engine.Status{State: forwarder.State{Phase: forwarder.Failed,
		Err: fmt.Errorf("handshake: %w", wire.Errorf(wire.CodeAuthFailed, "authentication failed"))}}
	synctest.Test(t, func(t *testing.T) {
		var bodies []string
		n := newNotifier(downGrace, func(_, body string) { bodies = append(bodies, body) })
		defer n.close()
		n.observe("w", "web", online)
		n.observe("w", "web", lost)
		time.Sleep(downGrace + time.Second)
		synctest.Wait()
		n.observe("w", "web", refused)
		want := []string{"http://web.localhost:7780", "The connection to the relay was lost.",
			"Token: Authentication failed. Check the token and type it again."}
		if !slices.Equal(bodies, want) {
			t.Errorf("bodies %q, want %q", bodies, want)
		}
	})
}
