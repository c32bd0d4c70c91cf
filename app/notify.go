package app

import (
	"sync"
	"time"

	"porthole/engine"
	"porthole/forwarder"
	"porthole/tray"
)

// downGrace is how long a profile may be away before Porthole says so: a
// relay restart or a network blip that heals within it goes unmentioned.
const downGrace = 10 * time.Second

// notifier turns status changes into desktop notifications that tell the
// user what changed without crying wolf. A profile that comes online says
// so; one that drops and is back within the grace period says nothing; one
// that stays down says so once, and again when it is back. A failure (which
// no retry fixes) says so at once; a stop the user asked for says nothing.
type notifier struct {
	grace time.Duration
	send  func(title, body string) // must not block

	mu       sync.Mutex
	profiles map[string]*notifyState
	closed   bool
}

type notifyState struct {
	online   bool        // the user knows it as online
	toldDown bool        // the user was told it is down
	timer    *time.Timer // pending "is offline" while it is away
}

func newNotifier(grace time.Duration, send func(title, body string)) *notifier {
	return &notifier{grace: grace, send: send, profiles: map[string]*notifyState{}}
}

// observe takes a profile's new status, in order.
func (n *notifier) observe(id, name string, s engine.Status) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	st := n.profiles[id]
	if st == nil {
		st = &notifyState{}
		n.profiles[id] = st
	}
	switch s.Phase {
	case forwarder.Online:
		st.stopTimer()
		if !st.online {
			title := name + " is online"
			if st.toldDown {
				title = name + " is back online"
			}
			n.send(title, firstURL(s.State))
		}
		st.online, st.toldDown = true, false
	case forwarder.Connecting, forwarder.Reconnecting:
		if st.timer == nil && !st.toldDown {
			reason := plainWords(s.Err)
			st.timer = time.AfterFunc(n.grace, func() { n.stillDown(id, name, st, reason) })
		}
	case forwarder.Failed:
		st.stopTimer()
		n.send(name+" stopped with an error", plainWords(s.Err))
		delete(n.profiles, id)
	case forwarder.Stopped:
		st.stopTimer()
		delete(n.profiles, id)
	}
}

// stillDown runs when a profile has been away for the grace period.
func (n *notifier) stillDown(id, name string, st *notifyState, reason string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed || n.profiles[id] != st || st.timer == nil {
		return // it came back, stopped, or failed meanwhile
	}
	st.timer = nil
	title := name + " cannot reach its relay"
	if st.online {
		title = name + " is offline"
	}
	if reason == "" {
		reason = "Porthole keeps trying."
	}
	n.send(title, reason)
	st.online, st.toldDown = false, true
}

func (st *notifyState) stopTimer() {
	if st.timer != nil {
		st.timer.Stop()
		st.timer = nil
	}
}

// close stops every pending notification; observe does nothing after it.
func (n *notifier) close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	for _, st := range n.profiles {
		st.stopTimer()
	}
}

func firstURL(s forwarder.State) string {
	if len(s.Forwarding) > 0 {
		return s.Forwarding[0].URL
	}
	return ""
}

// plainWords is why a profile failed or is away, in the words the tray
// and the settings form use, or "" for no error.
func plainWords(err error) string {
	if err == nil {
		return ""
	}
	return tray.Explain(err)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
