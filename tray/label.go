package tray

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"porthole/engine"
	"porthole/forwarder"
	"porthole/settings"
)

// Label is a profile's menu label: its name and a brief status, each cut to
// a length a menu can show, and for an online profile what its tunnel
// carried.
//
// It does not count down to the next reconnect: a label that changes every
// second while nothing happens would only be noise. (A change is cheap on
// Linux, where the item changes in place, but Fyne's tray on macOS and
// Windows builds its whole menu again for it.)
func Label(it Item) string {
	l := shorten(it.Name, maxName) + " — " + brief(it.Status)
	if it.Status.Phase == forwarder.Online {
		l += " — " + Traffic(it)
	}
	return l
}

// Traffic counts an online profile's requests (HTTP) or connections (TCP,
// TLS) in words.
func Traffic(it Item) string {
	n, what := it.Traffic.Requests, "request"
	if len(it.Status.Forwarding) > 0 && !strings.HasPrefix(it.Status.Forwarding[0].URL, "http") {
		n, what = it.Traffic.Conns, "connection"
	}
	if n != 1 {
		what += "s"
	}
	return fmt.Sprintf("%d %s", n, what)
}

// Longest name and error text, in characters, that a label shows whole.
const (
	maxName  = 40
	maxError = 80
)

// brief describes a status in a few words, for the menu.
func brief(s engine.Status) string {
	switch s.Phase {
	case forwarder.Connecting:
		return "connecting…"
	case forwarder.Online:
		if len(s.Forwarding) > 0 {
			return "online at " + s.Forwarding[0].URL
		}
		return "online"
	case forwarder.Reconnecting:
		return "reconnecting…"
	case forwarder.Failed:
		return "error: " + shorten(Explain(s.Err), maxError)
	}
	return "stopped"
}

// Status describes a status in full, for the settings window, which has
// room for it: the whole error, and while reconnecting the seconds until
// the next try and why the last one failed.
func Status(s engine.Status, now time.Time) string {
	switch s.Phase {
	case forwarder.Reconnecting:
		text := "reconnecting…"
		if secs := int(math.Ceil(s.RetryAt.Sub(now).Seconds())); secs >= 1 {
			text = fmt.Sprintf("reconnecting in %d s", secs)
		}
		if s.Err != nil {
			text += " — " + Explain(s.Err)
		}
		return text
	case forwarder.Failed:
		return "error: " + Explain(s.Err)
	}
	return brief(s)
}

// Explain words why a profile failed or is away in plain words, as the
// settings form does at its fields (settings.ProblemsOf), on one line:
// "Token: Authentication failed. Check the token and type it again."
func Explain(err error) string {
	if err == nil {
		return "Unknown error."
	}
	return settings.ProblemsOf(err).Error()
}

// shorten puts s on one line and cuts it to at most n characters, on a
// character boundary, marking the cut with an ellipsis. Menu labels cross
// D-Bus, which accepts only valid UTF-8.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "\uFFFD")), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
