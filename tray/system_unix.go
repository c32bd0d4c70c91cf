//go:build (linux || freebsd || openbsd || netbsd) && !android

package tray

import (
	"fmt"
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/systray"
	"github.com/godbus/dbus/v5"
)

// System puts the app in the desktop's tray: a StatusNotifierItem with a
// com.canonical.dbusmenu menu on the session bus, run with fyne.io/systray
// directly, so that a change to the menu is made in place (see Renderer).
// Fyne's own tray would build the whole menu again on each change, which
// gives every item a new ID and closes a menu the user has open.
//
// Fyne must therefore not run a tray of its own: the app never calls
// desktop.App's SetSystemTray methods here. Fyne's tray also makes a
// hidden window whose close request quits the app, and which keeps the
// app running when its last visible window is destroyed; here no one asks
// a window that was never shown to close, and the settings window hides
// rather than closes, so nothing is lost without it.
//
// Clicks run through run, on the UI goroutine. The item goes on the bus
// with the first model, so that the desktop's first look finds the whole
// menu and the right icon.
func System(fy fyne.App, run func(func())) (Tray, error) {
	if _, err := dbus.SessionBus(); err != nil {
		return nil, fmt.Errorf("no session bus for the tray: %w", err)
	}
	title := fy.Metadata().Name
	if title == "" {
		title = fy.UniqueID() // some trays fail on an item without a title
	}
	systray.SetTitle(title)
	start, end := systray.RunWithExternalLoop(nil, nil)
	return &systemTray{r: NewRenderer(&systrayMenu{}, run), start: start, end: end}, nil
}

// systemTray is the tray on fyne.io/systray. Its lock keeps Show and Close
// apart once Fyne's loop has ended and calls no longer wait their turn on
// the UI goroutine.
type systemTray struct {
	mu      sync.Mutex
	r       *Renderer
	start   func() // puts the item on the bus
	end     func() // takes it off
	started bool
	closed  bool
}

func (t *systemTray) Show(m Model) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.r.Show(m)
	if !t.started {
		t.started = true
		t.start()
	}
}

func (t *systemTray) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.closed = true
	t.r.Close()
	if t.started {
		t.end()
	}
}

// systrayMenu is the Backend on fyne.io/systray's one menu.
type systrayMenu struct {
	items []*systray.MenuItem // every row added since the last Reset
}

func (m *systrayMenu) Add(label string, checkable bool) BackendItem {
	var it *systray.MenuItem
	if checkable {
		it = systray.AddMenuItemCheckbox(label, "", false)
	} else {
		it = systray.AddMenuItem(label, "")
	}
	// systray tells the desktop about a new item only with the next
	// change; tell it now, so that a menu read after the last Add is whole.
	it.SetTitle(label)
	m.items = append(m.items, it)
	return systrayItem{it}
}

func (m *systrayMenu) AddSeparator() { systray.AddSeparator() }

// Reset removes each row itself, which closes its Clicked channel, before
// systray.ResetMenu clears the lines: ResetMenu passes over the row added
// last, which then stays known to systray, its channel open.
func (m *systrayMenu) Reset() {
	for _, it := range m.items {
		it.Remove()
	}
	m.items = nil
	systray.ResetMenu()
}

func (m *systrayMenu) SetIcon(png []byte) { systray.SetIcon(png) }

// systrayItem is a row of systray's menu. Each change is one
// LayoutUpdated signal, with the row's ID unchanged.
type systrayItem struct{ it *systray.MenuItem }

func (s systrayItem) SetLabel(l string) { s.it.SetTitle(l) }

func (s systrayItem) SetChecked(on bool) {
	if on {
		s.it.Check()
	} else {
		s.it.Uncheck()
	}
}

func (s systrayItem) SetEnabled(on bool) {
	if on {
		s.it.Enable()
	} else {
		s.it.Disable()
	}
}

func (s systrayItem) SetVisible(on bool) {
	if on {
		s.it.Show()
	} else {
		s.it.Hide()
	}
}

func (s systrayItem) Clicked() <-chan struct{} { return s.it.ClickedCh }
