package tray

import "sync"

// Backend is a live tray menu: rows are appended at its end, changed in
// place, and all removed at once. fyne.io/systray's menu is one
// (systray.go); tests use a fake.
//
// A desktop knows each row by an ID the backend gives it when it is added.
// Changing a row in place keeps its ID, so a menu the user has open stays
// open and a click on it reaches the row it was meant for; Reset and Add
// give new IDs.
type Backend interface {
	// Add appends a row at the end of the menu: shown, enabled and
	// unchecked. A checkable row shows whether it is checked.
	Add(label string, checkable bool) BackendItem
	// AddSeparator appends a line at the end of the menu.
	AddSeparator()
	// Reset removes every row and line. The Clicked channel of each row
	// that was removed is closed.
	Reset()
	// SetIcon sets the tray's icon (PNG).
	SetIcon(png []byte)
}

// BackendItem is a row of a live menu.
type BackendItem interface {
	SetLabel(string)
	SetChecked(bool)
	SetEnabled(bool)
	SetVisible(bool)
	// Clicked receives a value for each click on the row.
	Clicked() <-chan struct{}
}

// Renderer shows models on a Backend, changing only what differs from the
// model it showed last: a changed label, check mark or enabled state is
// set on the row that shows it, a group that shrinks hides its surplus
// rows, and one that grows back shows them again. Rows keep their IDs, so
// live counts in labels do not close the menu under the user's pointer.
//
// The menu is built again, with new IDs, only when a group needs more rows
// than it has (a backend appends rows only at the end of the menu, and
// Quit is last), or when the groups themselves differ. Each group then
// keeps as many rows as it ever needed, so a profile that stops and starts
// again, or a profile list that shrinks and grows back, reuses them.
//
// A Renderer is used from one goroutine (the UI goroutine); clicks reach
// the row's current action through run, which must hand it to that
// goroutine.
type Renderer struct {
	b    Backend
	run  func(func())
	icon *bool // whether the icon shown is the online one; nil before the first

	groups []*liveGroup
	clicks sync.WaitGroup // a goroutine per row, until Reset closes its channel or Close
	done   chan struct{}  // closed by Close
}

type liveGroup struct {
	name                 string
	separator, checkable bool
	rows                 []*liveRow
}

// liveRow is a row of the live menu and what it shows.
type liveRow struct {
	item    BackendItem
	shown   Row  // label, checked and disabled as shown; Action is not used
	visible bool // false for a surplus row
	action  func()
}

// NewRenderer returns a Renderer that draws on b and runs clicks through
// run.
func NewRenderer(b Backend, run func(func())) *Renderer {
	return &Renderer{b: b, run: run, done: make(chan struct{})}
}

// Show makes the live menu show m.
func (r *Renderer) Show(m Model) {
	if r.icon == nil || *r.icon != m.Online {
		r.icon = &m.Online
		r.b.SetIcon(iconFor(m.Online).Content())
	}
	if !r.fits(m) {
		r.rebuild(m)
	}
	for i, g := range m.Groups {
		lg := r.groups[i]
		for j, row := range lg.rows {
			if j < len(g.Rows) {
				row.show(g.Rows[j])
			} else {
				row.hide()
			}
		}
	}
}

// fits reports whether m can be shown on the live menu in place: the same
// groups, each with rows enough.
func (r *Renderer) fits(m Model) bool {
	if len(m.Groups) != len(r.groups) {
		return false
	}
	for i, g := range m.Groups {
		lg := r.groups[i]
		if g.Name != lg.name || g.Separator != lg.separator || g.Checkable != lg.checkable || len(g.Rows) > len(lg.rows) {
			return false
		}
	}
	return true
}

// rebuild builds the live menu again with m's groups, each with as many
// rows as m needs or the group had before, whichever is more. The rows are
// blank and hidden until Show fills them in.
func (r *Renderer) rebuild(m Model) {
	had := map[string]int{}
	for _, g := range r.groups {
		had[g.name] = len(g.rows)
	}
	r.b.Reset()
	r.groups = r.groups[:0]
	for _, g := range m.Groups {
		lg := &liveGroup{name: g.Name, separator: g.Separator, checkable: g.Checkable}
		r.groups = append(r.groups, lg)
		if g.Separator {
			r.b.AddSeparator()
			continue
		}
		for j := range max(len(g.Rows), had[g.Name]) {
			label := ""
			if j < len(g.Rows) {
				label = g.Rows[j].Label
			}
			row := &liveRow{item: r.b.Add(label, g.Checkable), shown: Row{Label: label}, visible: true}
			lg.rows = append(lg.rows, row)
			r.clicks.Go(func() { r.relay(row) })
		}
	}
}

// relay hands each click on a row to the UI goroutine, where it runs the
// row's action of the moment.
func (r *Renderer) relay(row *liveRow) {
	for {
		select {
		case _, ok := <-row.item.Clicked():
			if !ok {
				return
			}
			r.run(func() {
				if row.action != nil {
					row.action()
				}
			})
		case <-r.done:
			return
		}
	}
}

// show makes a live row show want, setting only what differs.
func (row *liveRow) show(want Row) {
	row.action = want.Action
	if want.Label != row.shown.Label {
		row.item.SetLabel(want.Label)
	}
	if want.Checked != row.shown.Checked {
		row.item.SetChecked(want.Checked)
	}
	if want.Disabled != row.shown.Disabled {
		row.item.SetEnabled(!want.Disabled)
	}
	if !row.visible {
		row.item.SetVisible(true)
	}
	row.shown, row.visible = Row{Label: want.Label, Checked: want.Checked, Disabled: want.Disabled}, true
}

// hide hides a surplus row. What it showed stays, unseen, until it is
// shown again; a click that was on its way does nothing.
func (row *liveRow) hide() {
	row.action = nil
	if row.visible {
		row.item.SetVisible(false)
		row.visible = false
	}
}

// Close stops relaying clicks and waits for the goroutines that did. The
// menu stays as it is, for the backend to take away (removing its rows
// would race with clicks on their way). Show must not be called after it;
// Close may be.
func (r *Renderer) Close() {
	select {
	case <-r.done:
	default:
		close(r.done)
	}
	r.clicks.Wait()
}
