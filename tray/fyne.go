package tray

import (
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"

	"porthole/assets"
)

// Tray is the app's place in the desktop's tray.
type Tray interface {
	// Show makes the tray show m. UI goroutine.
	Show(m Model)
	// Close takes the app out of the tray; Show does nothing after it, and
	// Close may be called again.
	Close()
}

// iconFor is the tray's icon: lit while some profile is online.
func iconFor(online bool) fyne.Resource {
	if online {
		return fyne.NewStaticResource("tray-online.png", assets.TrayOnline)
	}
	return fyne.NewStaticResource("tray.png", assets.Tray)
}

// FyneTray shows models through Fyne's own tray. Fyne builds its whole
// menu again, with new item IDs, on each SetSystemTrayMenu, which closes a
// menu the user has open: FyneTray sets a menu only when what it shows
// changed. It serves macOS and Windows, where Fyne runs the tray on its
// own loop.
type FyneTray struct {
	d      desktop.App
	text   string // what the menu shows, as menuText words it
	online *bool  // whether the icon shown is the online one; nil before the first
}

// NewFyneTray returns a tray that shows models through d.
func NewFyneTray(d desktop.App) *FyneTray { return &FyneTray{d: d} }

// Show sets the tray's menu and icon, each only if it changed.
func (t *FyneTray) Show(m Model) {
	if menu := m.Fyne(); menuText(menu) != t.text {
		t.text = menuText(menu)
		t.d.SetSystemTrayMenu(menu)
	}
	if t.online == nil || *t.online != m.Online {
		t.online = &m.Online
		t.d.SetSystemTrayIcon(iconFor(m.Online))
	}
}

// Close does nothing: Fyne takes its tray down as the app ends.
func (t *FyneTray) Close() {}

// Fyne is the model as a Fyne menu, as Fyne's tray shows it.
func (m Model) Fyne() *fyne.Menu {
	var items []*fyne.MenuItem
	for _, g := range m.Groups {
		if g.Separator {
			items = append(items, fyne.NewMenuItemSeparator())
			continue
		}
		for _, r := range g.Rows {
			it := fyne.NewMenuItem(r.Label, r.Action)
			it.Checked, it.Disabled, it.IsQuit = r.Checked, r.Disabled, r.Quit
			items = append(items, it)
		}
	}
	return fyne.NewMenu("Porthole", items...)
}

// menuText is what a menu shows: each item's label and marks.
func menuText(m *fyne.Menu) string {
	var b strings.Builder
	for _, it := range m.Items {
		fmt.Fprintf(&b, "%q %v %v %v\n", it.Label, it.Checked, it.Disabled, it.IsSeparator)
	}
	return b.String()
}
