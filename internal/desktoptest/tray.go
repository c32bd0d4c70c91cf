package desktoptest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"
)

// TrayHost plays the desktop's side of the tray on a private bus: it owns
// org.kde.StatusNotifierWatcher, which tray icons register with, and
// org.freedesktop.Notifications, which records notifications.
type TrayHost struct {
	conn          *dbus.Conn
	Registered    chan Item         // each item that registers
	Notifications chan Notification // each notification sent
}

// Item is a registered StatusNotifierItem.
type Item struct {
	Sender string          // the item's unique bus name
	Path   string          // the object path it registered
	Menu   dbus.ObjectPath // its menu, from the item's Menu property
}

// Notification is one org.freedesktop.Notifications.Notify call.
type Notification struct {
	App, Summary, Body string
}

type watcher struct{ h *TrayHost }

func (w watcher) RegisterStatusNotifierItem(sender dbus.Sender, service string) *dbus.Error {
	path := service
	if !strings.HasPrefix(path, "/") {
		path = "/StatusNotifierItem"
	}
	w.h.Registered <- Item{Sender: string(sender), Path: path}
	return nil
}

func (w watcher) RegisterStatusNotifierHost(string) *dbus.Error { return nil }

type notifications struct {
	h    *TrayHost
	next uint32
}

func (n *notifications) Notify(app string, _ uint32, _, summary, body string, _ []string, _ map[string]dbus.Variant, _ int32) (uint32, *dbus.Error) {
	n.next++
	n.h.Notifications <- Notification{App: app, Summary: summary, Body: body}
	return n.next, nil
}

func (n *notifications) GetCapabilities() ([]string, *dbus.Error) { return []string{"body"}, nil }

func (n *notifications) GetServerInformation() (string, string, string, string, *dbus.Error) {
	return "porthole-test", "porthole", "1", "1.2", nil
}

func (n *notifications) CloseNotification(uint32) *dbus.Error { return nil }

// StartTrayHost registers the watcher and the notification server on bus.
func StartTrayHost(t testing.TB, bus string) *TrayHost {
	t.Helper()
	h := &TrayHost{conn: Connect(t, bus), Registered: make(chan Item, 8), Notifications: make(chan Notification, 64)}
	if err := h.conn.Export(watcher{h}, "/StatusNotifierWatcher", "org.kde.StatusNotifierWatcher"); err != nil {
		t.Fatal(err)
	}
	if _, err := prop.Export(h.conn, "/StatusNotifierWatcher", prop.Map{"org.kde.StatusNotifierWatcher": {
		"IsStatusNotifierHostRegistered": {Value: true},
		"ProtocolVersion":                {Value: int32(0)},
		"RegisteredStatusNotifierItems":  {Value: []string{}},
	}}); err != nil {
		t.Fatal(err)
	}
	if err := h.conn.Export(&notifications{h: h}, "/org/freedesktop/Notifications", "org.freedesktop.Notifications"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"org.kde.StatusNotifierWatcher", "org.freedesktop.Notifications"} {
		if reply, err := h.conn.RequestName(name, dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
			t.Fatalf("own %s: %v %v", name, reply, err)
		}
	}
	return h
}

// WaitItem waits for a tray icon to register.
func (h *TrayHost) WaitItem(t testing.TB) Item {
	t.Helper()
	select {
	case it := <-h.Registered:
		v, err := h.conn.Object(it.Sender, dbus.ObjectPath(it.Path)).GetProperty("org.kde.StatusNotifierItem.Menu")
		if err != nil {
			t.Fatalf("read the item's Menu property: %v", err)
		}
		it.Menu, _ = v.Value().(dbus.ObjectPath)
		return it
	case <-time.After(60 * time.Second):
		t.Fatal("no tray icon registered")
	}
	return Item{}
}

// Icon is a tray item's icon, as the desktop reads it.
type Icon struct {
	W, H int32
	Pix  []byte // ARGB, row by row
}

// Icon reads the item's title and its icon (the first of its IconPixmap).
func (h *TrayHost) Icon(t testing.TB, it Item) (title string, icon Icon) {
	t.Helper()
	obj := h.conn.Object(it.Sender, dbus.ObjectPath(it.Path))
	v, err := obj.GetProperty("org.kde.StatusNotifierItem.Title")
	if err != nil {
		t.Fatalf("read the item's Title: %v", err)
	}
	title, _ = v.Value().(string)
	var pixmaps []Icon
	if v, err = obj.GetProperty("org.kde.StatusNotifierItem.IconPixmap"); err == nil {
		err = dbus.Store([]any{v.Value()}, &pixmaps)
	}
	if err != nil {
		t.Fatalf("read the item's IconPixmap: %v", err)
	}
	if len(pixmaps) > 0 {
		icon = pixmaps[0]
	}
	return title, icon
}

// WaitNotification waits for a notification whose summary contains s.
func (h *TrayHost) WaitNotification(t testing.TB, s string) Notification {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case n := <-h.Notifications:
			if strings.Contains(n.Summary, s) {
				return n
			}
		case <-timeout:
			t.Fatalf("no notification about %q", s)
		}
	}
}

// MenuItem is one entry of a tray menu, as read over com.canonical.dbusmenu.
type MenuItem struct {
	ID      int32
	Label   string
	Checked bool // toggle-type checkmark with toggle-state 1
	Enabled bool
}

func (m MenuItem) String() string {
	mark := "[ ]"
	if m.Checked {
		mark = "[x]"
	}
	return fmt.Sprintf("%s %s", mark, m.Label)
}

const menuIface = "com.canonical.dbusmenu"

// Menu reads the item's menu with GetLayout and flattens its top level.
func (h *TrayHost) Menu(t testing.TB, it Item) []MenuItem {
	t.Helper()
	obj := h.conn.Object(it.Sender, it.Menu)
	var rev uint32
	var root struct {
		ID       int32
		Props    map[string]dbus.Variant
		Children []dbus.Variant
	}
	if err := obj.Call(menuIface+".GetLayout", 0, int32(0), int32(-1), []string{}).Store(&rev, &root); err != nil {
		t.Fatalf("GetLayout %+v: %v", it, err)
	}
	var items []MenuItem
	for _, c := range root.Children {
		fields, ok := c.Value().([]any)
		if !ok || len(fields) < 2 {
			continue
		}
		props, _ := fields[1].(map[string]dbus.Variant)
		if v, ok := props["type"]; ok && v.Value() == "separator" {
			continue
		}
		if v, ok := props["visible"]; ok && v.Value() == false {
			continue
		}
		mi := MenuItem{ID: fields[0].(int32), Enabled: true}
		if v, ok := props["label"]; ok {
			mi.Label, _ = v.Value().(string)
		}
		if v, ok := props["enabled"]; ok {
			mi.Enabled, _ = v.Value().(bool)
		}
		if v, ok := props["toggle-state"]; ok {
			state, _ := v.Value().(int32)
			mi.Checked = state == 1
		}
		items = append(items, mi)
	}
	return items
}

// WaitMenu waits until the menu is whole and satisfies ok, re-reading it
// each time the item announces a change. It returns the menu that did. A
// menu is whole when its last item is Quit: the app rebuilds its menu one
// item at a time, and a read in between sees only the first items.
func (h *TrayHost) WaitMenu(t testing.TB, it Item, what string, ok func([]MenuItem) bool) []MenuItem {
	t.Helper()
	if err := h.conn.AddMatchSignal(dbus.WithMatchSender(it.Sender), dbus.WithMatchInterface(menuIface)); err != nil {
		t.Fatal(err)
	}
	ch := make(chan *dbus.Signal, 256)
	h.conn.Signal(ch)
	defer h.conn.RemoveSignal(ch)
	timeout := time.After(60 * time.Second)
	for {
		menu := h.Menu(t, it)
		if len(menu) > 0 && menu[len(menu)-1].Label == "Quit" && ok(menu) {
			return menu
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("menu never showed %s; last:\n%v", what, menu)
		}
	}
}

// Click sends a dbusmenu "clicked" event to a menu item.
func (h *TrayHost) Click(t testing.TB, it Item, id int32) {
	t.Helper()
	obj := h.conn.Object(it.Sender, it.Menu)
	if err := obj.Call(menuIface+".Event", 0, id, "clicked", dbus.MakeVariant(int32(0)), uint32(time.Now().Unix())).Err; err != nil {
		t.Fatalf("click %d: %v", id, err)
	}
}

// Find returns the first item whose label starts with prefix.
func Find(menu []MenuItem, prefix string) (MenuItem, bool) {
	for _, m := range menu {
		if strings.HasPrefix(m.Label, prefix) {
			return m, true
		}
	}
	return MenuItem{}, false
}
