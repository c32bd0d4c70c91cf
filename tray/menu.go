// Package tray builds Porthole's tray menu as a pure function of a snapshot
// of the profiles' statuses, and shows it in the desktop's tray.
//
// Files by concern: menu.go lays the menu out as data (a Model), label.go
// words each profile's status, render.go applies the difference between
// two models to a live menu in place, systray.go is that live menu on
// fyne.io/systray, fyne.go shows a model through Fyne's own tray, and
// system_*.go choose between the two for the OS.
package tray

import (
	"slices"

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

// Model is what the tray shows: its icon, and its menu as groups of rows.
type Model struct {
	// Online is whether some profile is online, which the icon shows.
	Online bool
	Groups []Group
}

// Group is a run of rows of one kind, or a separator line. A menu has the
// same groups, by name and in the same order, whatever the state: only the
// rows in them come and go. A live menu keeps its rows when a group
// shrinks, hidden, and shows them again when it grows back, so that the
// rows keep their identity on the desktop's side (see Renderer).
type Group struct {
	Name      string
	Separator bool // a line between groups; it has no rows
	Checkable bool // its rows show whether they are checked
	Rows      []Row
}

// Row is one menu item.
type Row struct {
	Label    string
	Checked  bool
	Disabled bool
	Quit     bool   // the item that ends the app
	Action   func() // nil for an item that does nothing
}

// Names of the menu's groups, in order.
const (
	groupProfiles = "profiles" // one checkable row per profile
	groupEmpty    = "empty"    // "No tunnels yet", when there is no profile
	groupCopy     = "copy"     // a copy row per public URL of online profiles
	groupInspect  = "inspect"  // "Inspect traffic…", when the inspector runs
	groupSettings = "settings"
	groupLogin    = "login" // "Start at login", checkable
	groupQuit     = "quit"
)

// Menu builds the tray's model: one checkable item per profile (checked
// while its forwarder runs); a line; a copy item per public URL of online
// profiles, Inspect traffic…, Settings… and Start at login; a line; Quit.
// It takes no clock: the same snapshot always builds the same model (see
// Label).
//
// The copy items share their section with Settings… rather than having
// one of their own: a tray cannot hide a separator line, and a line above
// no items would be left over while no profile is online.
func Menu(items []Item, startAtLogin bool, a Actions) Model {
	m := Model{Online: slices.ContainsFunc(items, func(it Item) bool { return it.Status.Phase == forwarder.Online })}
	profiles := Group{Name: groupProfiles, Checkable: true}
	for _, it := range items {
		id := it.ID
		profiles.Rows = append(profiles.Rows, Row{Label: Label(it), Checked: it.Status.Running, Action: func() { a.Toggle(id) }})
	}
	empty := Group{Name: groupEmpty}
	if len(items) == 0 {
		empty.Rows = []Row{{Label: "No tunnels yet", Disabled: true}}
	}
	copies := Group{Name: groupCopy}
	for _, it := range items {
		if it.Status.Phase != forwarder.Online {
			continue
		}
		for _, f := range it.Status.Forwarding {
			url := f.URL
			copies.Rows = append(copies.Rows, Row{Label: "Copy " + url, Action: func() { a.CopyURL(url) }})
		}
	}
	inspect := Group{Name: groupInspect}
	if a.Inspect != nil {
		inspect.Rows = []Row{{Label: "Inspect traffic…", Action: a.Inspect}}
	}
	m.Groups = []Group{
		profiles,
		empty,
		{Name: "line 1", Separator: true},
		copies,
		inspect,
		{Name: groupSettings, Rows: []Row{{Label: "Settings…", Action: a.OpenSettings}}},
		{Name: groupLogin, Checkable: true, Rows: []Row{{Label: "Start at login", Checked: startAtLogin,
			Action: func() { a.SetStartAtLogin(!startAtLogin) }}}},
		{Name: "line 2", Separator: true},
		{Name: groupQuit, Rows: []Row{{Label: "Quit", Quit: true, Action: a.Quit}}},
	}
	return m
}
