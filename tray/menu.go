// Package tray builds Porthole's tray menu as a pure function of a snapshot
// of the profiles' states. The app rebuilds the whole menu on every change,
// as Fyne's tray does on every Refresh, so there is no menu state to keep in
// step with the forwarders.
package tray

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"fyne.io/fyne/v2"

	"porthole/engine"
	"porthole/forwarder"
)

// Item is one profile as the tray shows it: its name, and a snapshot of
// the status the engine keeps for it.
type Item struct {
	ID     string
	Name   string
	Status engine.Status
}

// Actions are what the menu items do. They run on the UI goroutine and must
// hand any slow work to another goroutine.
type Actions struct {
	Toggle          func(id string)
	CopyURL         func(url string)
	OpenSettings    func()
	SetStartAtLogin func(on bool)
	Quit            func()
}

// Menu builds the tray menu: one checkable item per profile (checked while
// its forwarder runs), a copy item per public URL of online profiles,
// Settings…, Start at login, and Quit.
func Menu(items []Item, startAtLogin bool, now time.Time, a Actions) *fyne.Menu {
	var mi []*fyne.MenuItem
	if len(items) == 0 {
		none := fyne.NewMenuItem("No tunnels yet", nil)
		none.Disabled = true
		mi = append(mi, none)
	}
	for _, it := range items {
		id := it.ID
		m := fyne.NewMenuItem(Label(it, now), func() { a.Toggle(id) })
		m.Checked = it.Status.Running
		mi = append(mi, m)
	}
	var copies []*fyne.MenuItem
	for _, it := range items {
		if it.Status.Phase != forwarder.Online {
			continue
		}
		for _, f := range it.Status.Forwarding {
			url := f.URL
			copies = append(copies, fyne.NewMenuItem("Copy "+url, func() { a.CopyURL(url) }))
		}
	}
	if len(copies) > 0 {
		mi = append(mi, fyne.NewMenuItemSeparator())
		mi = append(mi, copies...)
	}
	login := fyne.NewMenuItem("Start at login", func() { a.SetStartAtLogin(!startAtLogin) })
	login.Checked = startAtLogin
	quit := fyne.NewMenuItem("Quit", a.Quit)
	quit.IsQuit = true
	mi = append(mi,
		fyne.NewMenuItemSeparator(),
		fyne.NewMenuItem("Settings…", a.OpenSettings),
		login,
		fyne.NewMenuItemSeparator(),
		quit,
	)
	return fyne.NewMenu("Porthole", mi...)
}

// Label is a profile's menu label: its name and status, each cut to a
// length a menu can show.
func Label(it Item, now time.Time) string {
	return shorten(it.Name, maxName) + " — " + Status(it.Status, now)
}

// Longest name and error text, in characters, that a label shows whole.
const (
	maxName  = 40
	maxError = 80
)

// Status describes a status in a few words.
func Status(s engine.Status, now time.Time) string {
	switch s.Phase {
	case forwarder.Connecting:
		return "connecting…"
	case forwarder.Online:
		if len(s.Forwarding) > 0 {
			return "online at " + s.Forwarding[0].URL
		}
		return "online"
	case forwarder.Reconnecting:
		secs := int(math.Ceil(s.RetryAt.Sub(now).Seconds()))
		if secs < 1 {
			return "reconnecting…"
		}
		return fmt.Sprintf("reconnecting in %d s", secs)
	case forwarder.Failed:
		return "error: " + shorten(errText(s.Err), maxError)
	}
	return "stopped"
}

func errText(err error) string {
	if err == nil {
		return "unknown"
	}
	return err.Error()
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
