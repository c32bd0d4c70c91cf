package forwarder

import (
	"fmt"
	"time"
)

// Phase is where a forwarder is in its life.
type Phase int

// Phases of a forwarder.
const (
	Stopped      Phase = iota // not running (before Run, or after a clean stop)
	Connecting                // dialing the relay for the first time
	Online                    // session up, every tunnel bound
	Reconnecting              // the session was lost; waiting to retry
	Failed                    // stopped by an error that retrying cannot fix
)

func (p Phase) String() string {
	switch p {
	case Stopped:
		return "stopped"
	case Connecting:
		return "connecting"
	case Online:
		return "online"
	case Reconnecting:
		return "reconnecting"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("phase(%d)", int(p))
}

// Forwarding is one public address and the upstream it leads to.
type Forwarding struct {
	URL      string
	Upstream string
}

// State is a snapshot of a forwarder, delivered to Config.OnState.
type State struct {
	Phase      Phase
	Forwarding []Forwarding  // when Online
	Attempt    int           // when Reconnecting: the attempt about to be made, from 1
	Delay      time.Duration // when Reconnecting: the wait before that attempt
	RetryAt    time.Time     // when Reconnecting: when that attempt starts
	Err        error         // when Reconnecting (the last error) or Failed
}

// String renders the state for a status line.
func (s State) String() string {
	switch s.Phase {
	case Online:
		if len(s.Forwarding) > 0 {
			return "online " + s.Forwarding[0].URL
		}
		return "online"
	case Reconnecting:
		return fmt.Sprintf("reconnecting in %s (attempt %d): %v", s.Delay.Round(time.Millisecond), s.Attempt, s.Err)
	case Failed:
		return fmt.Sprintf("failed: %v", s.Err)
	}
	return s.Phase.String()
}
