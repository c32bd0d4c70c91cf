package backlog

import (
	"log/slog"
	"sync"
	"time"
)

// LogEvery is how often a ShedLog writes a line at most.
const LogEvery = 10 * time.Second

// ShedLog reports shed streams to a log without letting whoever makes
// streams be shed flood it: the first shed of every LogEvery is logged at
// once, with its client and the bound it kept, and those that follow
// within it are only counted, and reported as a number with the next line.
// The budget's Stats count every one.
type ShedLog struct {
	log   *slog.Logger
	msg   string
	now   func() time.Time
	mu    sync.Mutex
	next  time.Time // no line before this
	quiet uint64    // sheds not logged since the last line
}

// NewShedLog returns a ShedLog that writes msg to log as a warning.
func NewShedLog(log *slog.Logger, msg string) *ShedLog {
	return &ShedLog{log: log, msg: msg, now: time.Now}
}

// Shed reports that a stream of the client (an address, never anything a
// client sends) was shed to keep bound r.
func (l *ShedLog) Shed(client string, r Reason) {
	l.mu.Lock()
	now := l.now()
	if now.Before(l.next) {
		l.quiet++
		l.mu.Unlock()
		return
	}
	quiet := l.quiet
	l.quiet, l.next = 0, now.Add(LogEvery)
	l.mu.Unlock()
	l.log.Warn(l.msg, "client", client, "bound", r.String(), "unlogged_since_last", quiet)
}
