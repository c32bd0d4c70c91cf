package tray

import (
	"testing"

	"fyne.io/fyne/v2"
)

// fakeDesktop is Fyne's tray as FyneTray uses it, counting what it is given.
type fakeDesktop struct {
	menus []*fyne.Menu
	icons []string
}

func (d *fakeDesktop) SetSystemTrayMenu(m *fyne.Menu)    { d.menus = append(d.menus, m) }
func (d *fakeDesktop) SetSystemTrayIcon(r fyne.Resource) { d.icons = append(d.icons, r.Name()) }
func (d *fakeDesktop) SetSystemTrayWindow(fyne.Window)   {}

// TestFyneTraySetsOnlyChanges: Fyne's tray builds its whole menu again on
// each SetSystemTrayMenu (new item IDs, an open menu closes), so FyneTray
// sets a menu, or an icon, only when what it shows changed.
func TestFyneTraySetsOnlyChanges(t *testing.T) {
	d := &fakeDesktop{}
	tr := NewFyneTray(d)
	a := Actions{Toggle: func(string) {}}
	items := []Item{{ID: "w", Name: "web"}}
	tr.Show(Menu(items, false, a))
	tr.Show(Menu(items, false, a))
	if len(d.menus) != 1 || len(d.icons) != 1 || d.icons[0] != "tray.png" {
		t.Fatalf("the same model twice: %d menus, icons %v", len(d.menus), d.icons)
	}
	items[0] = onlineItem("w", "web", 0, "http://web.localhost:7780")
	tr.Show(Menu(items, false, a))
	if len(d.menus) != 2 || len(d.icons) != 2 || d.icons[1] != "tray-online.png" {
		t.Errorf("online: %d menus, icons %v", len(d.menus), d.icons)
	}
	items[0].Traffic.Requests++
	tr.Show(Menu(items, false, a))
	if len(d.menus) != 3 || len(d.icons) != 2 {
		t.Errorf("a request: %d menus, icons %v", len(d.menus), d.icons)
	}
}
