// Package tray builds Porthole's tray menu as a pure function of a snapshot
// of the profiles' statuses. The app rebuilds the whole menu on every
// change, as Fyne's tray does on every Refresh, so there is no menu state to
// keep in step with the forwarders. menu.go lays the menu out; label.go
// words each profile's status.
package tray

import (
	"fyne.io/fyne/v2"

	"porthole/engine"
	"porthole/forwarder"
	"porthole/inspect"
)

// Item is one profile as the tray shows it: its name, and a snapshot of
// the status the engine keeps for it.
type Item struct {
	ID      string
	Name    string
	Status  engine.Status
	Traffic inspect.Totals // what its tunnel carried while it runs
}

// Actions are what the menu items do. They run on the UI goroutine and must
// hand any slow work to another goroutine.
type Actions struct {
	Toggle          func(id string)
	CopyURL         func(url string)
	OpenSettings    func()
	SetStartAtLogin func(on bool)
	Quit            func()
	// Inspect opens the traffic inspector; without it the menu has no
	// "Inspect traffic…" item.
	Inspect func()
}

// Menu builds the tray menu: one checkable item per profile (checked while
// its forwarder runs), a copy item per public URL of online profiles,
// Inspect traffic…, Settings…, Start at login, and Quit. It takes no clock:
// the same snapshot always builds the same menu (see Label).
func Menu(items []Item, startAtLogin bool, a Actions) *fyne.Menu {
	var mi []*fyne.MenuItem
	if len(items) == 0 {
		none := fyne.NewMenuItem("No tunnels yet", nil)
		none.Disabled = true
		mi = append(mi, none)
	}
	for _, it := range items {
		id := it.ID
		m := fyne.NewMenuItem(Label(it), func() { a.Toggle(id) })
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
	mi = append(mi, fyne.NewMenuItemSeparator())
	if a.Inspect != nil {
		mi = append(mi, fyne.NewMenuItem("Inspect traffic…", a.Inspect))
	}
	mi = append(mi,
		fyne.NewMenuItem("Settings…", a.OpenSettings),
		login,
		fyne.NewMenuItemSeparator(),
		quit,
	)
	return fyne.NewMenu("Porthole", mi...)
}
