package tray

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"

	"porthole/engine"
	"porthole/forwarder"
	"porthole/inspect"
)

// fakeMenu is a Backend that keeps its rows as a desktop would see them
// and logs every change made to them.
type fakeMenu struct {
	t      *testing.T
	nextID int
	rows   []*fakeRow
	log    []string // each change, as "ID what"
	resets int
	icons  int
}

type fakeRow struct {
	m                            *fakeMenu
	id                           int
	separator                    bool
	label                        string
	checkable, checked, disabled bool
	hidden                       bool
	clicked                      chan struct{}
}

func (m *fakeMenu) Add(label string, checkable bool) BackendItem {
	m.nextID++
	r := &fakeRow{m: m, id: m.nextID, label: label, checkable: checkable, clicked: make(chan struct{})}
	m.rows = append(m.rows, r)
	m.log = append(m.log, fmt.Sprintf("%d add %q", r.id, label))
	return r
}

func (m *fakeMenu) AddSeparator() {
	m.nextID++
	m.rows = append(m.rows, &fakeRow{id: m.nextID, separator: true})
}

func (m *fakeMenu) Reset() {
	for _, r := range m.rows {
		if !r.separator {
			close(r.clicked)
		}
	}
	m.rows = nil
	m.resets++
	m.log = append(m.log, "reset")
}

func (m *fakeMenu) SetIcon([]byte) { m.icons++ }

func (r *fakeRow) change(what string) { r.m.log = append(r.m.log, fmt.Sprintf("%d %s", r.id, what)) }

func (r *fakeRow) SetLabel(l string) { r.label = l; r.change(fmt.Sprintf("label %q", l)) }

func (r *fakeRow) SetChecked(on bool) {
	if !r.checkable {
		r.m.t.Errorf("row %d %q checked, but it was not made checkable", r.id, r.label)
	}
	r.checked = on
	r.change(fmt.Sprintf("checked %v", on))
}

func (r *fakeRow) SetEnabled(on bool) { r.disabled = !on; r.change(fmt.Sprintf("enabled %v", on)) }
func (r *fakeRow) SetVisible(on bool) { r.hidden = !on; r.change(fmt.Sprintf("visible %v", on)) }

func (r *fakeRow) Clicked() <-chan struct{} { return r.clicked }

// shown is the menu as a desktop shows it, in the notation of labels.
func (m *fakeMenu) shown() []string {
	var out []string
	for _, r := range m.rows {
		switch {
		case r.separator:
			out = append(out, "---")
		case r.hidden:
		case r.checked:
			out = append(out, "[x] "+r.label)
		case r.disabled:
			out = append(out, "(off) "+r.label)
		default:
			out = append(out, r.label)
		}
	}
	return out
}

// id is the ID of the shown row whose label starts with prefix.
func (m *fakeMenu) id(t *testing.T, prefix string) int {
	t.Helper()
	for _, r := range m.rows {
		if !r.separator && !r.hidden && strings.HasPrefix(r.label, prefix) {
			return r.id
		}
	}
	t.Fatalf("no row %q in %v", prefix, m.shown())
	return 0
}

// click clicks the row with the ID, as a desktop does, and runs what the
// click hands to the UI goroutine, if anything.
func (m *fakeMenu) click(t *testing.T, ui chan func(), id int) {
	t.Helper()
	i := slices.IndexFunc(m.rows, func(r *fakeRow) bool { return r.id == id })
	if i < 0 {
		t.Fatalf("no row %d", id)
	}
	m.rows[i].clicked <- struct{}{} // taken by the row's goroutine
	(<-ui)()
}

func (m *fakeMenu) takeLog() []string {
	l := m.log
	m.log = nil
	return l
}

// newFakeTray returns a Renderer on a fakeMenu whose clicks reach the
// test's goroutine through ui.
func newFakeTray(t *testing.T) (*Renderer, *fakeMenu, chan func()) {
	m := &fakeMenu{t: t}
	ui := make(chan func())
	r := NewRenderer(m, func(f func()) { ui <- f })
	t.Cleanup(r.Close)
	return r, m, ui
}

func online(requests int64, urls ...string) (engine.Status, inspect.Totals) {
	var fw []forwarder.Forwarding
	for _, u := range urls {
		fw = append(fw, forwarder.Forwarding{URL: u})
	}
	return engine.Status{Running: true, State: forwarder.State{Phase: forwarder.Online, Forwarding: fw}},
		inspect.Totals{Requests: requests}
}

func onlineItem(id, name string, requests int64, urls ...string) Item {
	s, tr := online(requests, urls...)
	return Item{ID: id, Name: name, Status: s, Traffic: tr}
}

// TestRendererCountsInPlace: while requests flow, the profile's row
// changes its label and nothing else, keeping its ID, and a click on that
// ID right after reaches the profile.
func TestRendererCountsInPlace(t *testing.T) {
	r, m, ui := newFakeTray(t)
	var toggled []string
	a := Actions{Toggle: func(id string) { toggled = append(toggled, id) }, Quit: func() {}}
	items := []Item{{ID: "a", Name: "api"}, onlineItem("w", "web", 0, "http://web.localhost:7780")}
	r.Show(Menu(items, false, a))
	web := m.id(t, "web — ")
	all := slices.Clone(m.rows)
	m.takeLog()

	for n := int64(1); n <= 3; n++ {
		items[1].Traffic.Requests = n
		r.Show(Menu(items, false, a))
		want := fmt.Sprintf("%d label %q", web, fmt.Sprintf("web — online at http://web.localhost:7780 — %d request%s", n, map[bool]string{true: "s"}[n != 1]))
		if got := m.takeLog(); !slices.Equal(got, []string{want}) {
			t.Errorf("after request %d the menu changed by %q, want %q", n, got, want)
		}
		m.click(t, ui, web)
	}
	if !slices.Equal(toggled, []string{"w", "w", "w"}) {
		t.Errorf("clicks toggled %v", toggled)
	}
	if !slices.Equal(m.rows, all) || m.resets != 1 {
		t.Errorf("the rows were replaced: %d resets", m.resets)
	}

	// The same model again changes nothing.
	r.Show(Menu(items, false, a))
	if got := m.takeLog(); len(got) != 0 {
		t.Errorf("showing the same menu again: %q", got)
	}
}

// TestRendererFollowsTheModel shows a run of models, each on the menu the
// previous one left, and checks after each that the desktop sees exactly
// the model, and how often the menu was built anew (giving every row a new
// ID): only when a group needs more rows than it ever had.
func TestRendererFollowsTheModel(t *testing.T) {
	noop := Actions{Toggle: func(string) {}, CopyURL: func(string) {}, Quit: func() {}, OpenSettings: func() {}, SetStartAtLogin: func(bool) {}}
	withInspect := noop
	withInspect.Inspect = func() {}
	api := Item{ID: "a", Name: "api"}
	web := onlineItem("w", "web", 4, "http://web.localhost:7780", "https://web.localhost:7743")
	webStopped := Item{ID: "w", Name: "web"}
	db := onlineItem("d", "db", 0, "tcp://localhost:20001")
	steps := []struct {
		what    string
		items   []Item
		login   bool
		actions Actions
		resets  int // how many times the menu was built, so far
	}{
		{"no profiles", nil, false, noop, 1},
		{"a profile is added", []Item{api}, false, noop, 2},
		{"start at login", []Item{api}, true, noop, 2},
		{"a second profile", []Item{api, webStopped}, true, noop, 3},
		{"it comes online with two URLs", []Item{api, web}, true, noop, 4},
		{"it stops: its copy rows hide", []Item{api, webStopped}, true, noop, 4},
		{"it starts again: they show again", []Item{api, web}, true, noop, 4},
		{"the first profile is deleted", []Item{web}, false, noop, 4},
		{"no profiles again", nil, false, noop, 4},
		{"two come back", []Item{api, db}, false, noop, 4},
		{"a third, online", []Item{api, db, web}, false, noop, 5},
		{"the inspector", []Item{api, db, web}, false, withInspect, 6},
		{"all stop", []Item{api, {ID: "d", Name: "db"}, webStopped}, false, withInspect, 6},
	}
	r, m, _ := newFakeTray(t)
	for _, s := range steps {
		model := Menu(s.items, s.login, s.actions)
		r.Show(model)
		if got, want := m.shown(), labels(model); !slices.Equal(got, want) {
			t.Errorf("%s: the desktop sees\n%s\nwant\n%s", s.what, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if m.resets != s.resets {
			t.Errorf("%s: menu built %d times, want %d", s.what, m.resets, s.resets)
		}
	}
	// Set first, then each time some profile came online or none was left.
	if m.icons != 7 {
		t.Errorf("the icon was set %d times; want 7", m.icons)
	}
}

// TestRendererClicks: a click runs the action of what its row shows now,
// on the goroutine run hands it to; a click on a hidden row does nothing;
// the goroutines that wait for clicks end with the rows a rebuild removes,
// and the rest with Close.
func TestRendererClicks(t *testing.T) {
	r, m, ui := newFakeTray(t)
	var got []string
	a := Actions{
		Toggle:  func(id string) { got = append(got, "toggle "+id) },
		CopyURL: func(u string) { got = append(got, "copy "+u) },
		Quit:    func() { got = append(got, "quit") },
	}
	items := []Item{onlineItem("w", "web", 0, "http://web.localhost:7780")}
	r.Show(Menu(items, false, a))
	copyRow := m.id(t, "Copy ")
	m.click(t, ui, copyRow)
	m.click(t, ui, m.id(t, "Quit"))

	// The profile goes away and another takes its row: a click on the row
	// reaches the profile it shows.
	r.Show(Menu([]Item{{ID: "a", Name: "api"}}, false, a))
	m.click(t, ui, m.id(t, "api — "))
	// The copy row is hidden now: a click that was on its way does nothing.
	m.click(t, ui, copyRow)

	want := []string{"copy http://web.localhost:7780", "quit", "toggle a"}
	if !slices.Equal(got, want) {
		t.Errorf("clicks did %q, want %q", got, want)
	}
	// A rebuild removes every row (closing its channel) and makes new
	// ones; once Close returns, no goroutine relays clicks any more.
	r.Show(Menu([]Item{{ID: "a", Name: "api"}, {ID: "b", Name: "db"}}, false, a))
	if m.resets != 2 {
		t.Fatalf("%d resets; want the second profile to rebuild the menu", m.resets)
	}
	r.Close()
	buf := make([]byte, 1<<20)
	if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "tray.(*Renderer).relay") {
		t.Errorf("a goroutine relays clicks after Close:\n%s", stacks)
	}
}
