package app

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"porthole/engine"
	"porthole/forwarder"
	"porthole/settings"
	"porthole/tray"
)

// settingsWindow lists the profiles and edits the selected one.
type settingsWindow struct {
	a        *App
	w        fyne.Window
	list     *widget.List
	form     *profileForm
	notice   *widget.Label
	status   *widget.Label
	toggle   *widget.Button
	save     *widget.Button
	link     *widget.Hyperlink // the public URL of an online profile
	copy     *widget.Button
	right    *fyne.Container // the form side, laid out again when live shows or hides
	live     *fyne.Container // an online profile's traffic and QR code
	counters *widget.Label
	qr       *canvas.Image
	qrURL    string        // what qr encodes
	scan     *widget.Label // what to do with the QR code, or why there is none
	add      *widget.Button
	remove   *widget.Button
	dup      *widget.Button

	items    []tray.Item
	selected string                // profile ID
	confirm  *dialog.ConfirmDialog // the question the window asks, while it is open
	pending  bool                  // a change to the profiles is being saved
	shownErr string                // the start error shown at the form's fields

	// saved, when set, receives the outcome of each change to the
	// profiles made from the window (tests wait on it).
	saved chan error
}

// ShowSettings opens the settings window, or brings it forward. UI goroutine.
func (a *App) ShowSettings() {
	if a.win == nil {
		a.win = newSettingsWindow(a)
	}
	a.win.w.Show()
	a.win.w.RequestFocus()
}

func newSettingsWindow(a *App) *settingsWindow {
	sw := &settingsWindow{a: a, w: a.fy.NewWindow("Porthole")}
	sw.form = newProfileForm(func() fyne.Window { return sw.w })
	sw.list = widget.NewList(
		func() int { return len(sw.items) },
		func() fyne.CanvasObject {
			return container.NewHBox(widget.NewIcon(theme.MediaStopIcon()), widget.NewLabel("profile name — state"))
		},
		func(id widget.ListItemID, o fyne.CanvasObject) {
			if id >= len(sw.items) {
				return
			}
			it := sw.items[id]
			row := o.(*fyne.Container)
			icon := theme.MediaStopIcon()
			switch {
			case it.Status.Phase == forwarder.Online:
				icon = theme.ConfirmIcon()
			case it.Status.Phase == forwarder.Failed:
				icon = theme.ErrorIcon()
			case it.Status.Running:
				icon = theme.ViewRefreshIcon()
			}
			row.Objects[0].(*widget.Icon).SetResource(icon)
			row.Objects[1].(*widget.Label).SetText(it.Name)
		},
	)
	sw.list.OnSelected = func(id widget.ListItemID) {
		if id < len(sw.items) && sw.items[id].ID != sw.selected {
			sw.leaveFor(sw.items[id].ID)
		}
	}
	sw.add = widget.NewButtonWithIcon("Add", theme.ContentAddIcon(), sw.addProfile)
	sw.dup = widget.NewButtonWithIcon("Duplicate", theme.ContentCopyIcon(), sw.duplicate)
	sw.remove = widget.NewButtonWithIcon("Delete", theme.DeleteIcon(), sw.deleteSelected)
	left := container.NewBorder(nil, container.NewGridWithColumns(1, sw.add, sw.dup, sw.remove), nil, nil, sw.list)

	sw.notice = widget.NewLabel("")
	sw.notice.Importance = widget.DangerImportance
	sw.notice.Wrapping = fyne.TextWrapWord
	sw.notice.Hide()
	sw.status = widget.NewLabel("")
	sw.status.Wrapping = fyne.TextWrapWord
	sw.toggle = widget.NewButtonWithIcon("Start", theme.MediaPlayIcon(), sw.toggleSelected)
	sw.save = widget.NewButtonWithIcon("Save", theme.DocumentSaveIcon(), func() { sw.saveForm(false) })
	sw.save.Importance = widget.HighImportance
	sw.link = widget.NewHyperlink("", nil)
	sw.link.Hide()
	sw.copy = widget.NewButtonWithIcon("", theme.ContentCopyIcon(), func() {
		if sw.link.URL != nil {
			a.fy.Clipboard().SetContent(sw.link.URL.String())
			sw.status.SetText("Copied " + sw.link.URL.String())
		}
	})
	sw.copy.Hide()
	sw.counters = widget.NewLabel("")
	sw.qr = canvas.NewImageFromImage(nil)
	sw.qr.FillMode = canvas.ImageFillContain
	sw.qr.ScaleMode = canvas.ImageScalePixels
	sw.qr.SetMinSize(fyne.NewSize(132, 132))
	sw.scan = widget.NewLabel("")
	sw.scan.Importance = widget.LowImportance
	sw.live = container.NewHBox(sw.qr, container.NewVBox(sw.counters, sw.scan))
	sw.live.Hide()
	bottom := container.NewBorder(nil, nil, nil, container.NewHBox(sw.link, sw.copy, sw.toggle, sw.save), sw.status)
	right := container.NewBorder(container.NewVBox(sw.notice, sw.live), bottom, nil, nil, container.NewVScroll(container.NewPadded(sw.form.content)))
	sw.right = right

	split := container.NewHSplit(left, right)
	split.Offset = 0.25
	sw.w.SetContent(split)
	sw.w.Resize(fyne.NewSize(900, 680))
	sw.w.SetCloseIntercept(sw.close)

	a.mu.Lock()
	notice := a.notice
	a.mu.Unlock()
	if notice != "" {
		sw.notice.SetText(notice)
		sw.notice.Show()
	}
	sw.refresh(a.items())
	if len(sw.items) > 0 {
		sw.list.Select(0)
	} else {
		sw.showEmpty()
	}
	return sw
}

// refresh shows the current states. UI goroutine.
func (sw *settingsWindow) refresh(items []tray.Item) {
	// The window edits saved profiles; ad-hoc tunnels show in the tray.
	sw.items = slices.DeleteFunc(slices.Clone(items), func(it tray.Item) bool {
		_, adhoc := engine.AdHocName(it.ID)
		return adhoc
	})
	sw.list.Refresh()
	sw.showState()
}

func (sw *settingsWindow) item(id string) (tray.Item, bool) {
	i := slices.IndexFunc(sw.items, func(it tray.Item) bool { return it.ID == id })
	if i < 0 {
		return tray.Item{}, false
	}
	return sw.items[i], true
}

// showState renders the selected profile's status: the status line, the
// public URL, the Start/Stop button, and a start error at the fields it is
// about.
func (sw *settingsWindow) showState() {
	it, ok := sw.item(sw.selected)
	if !ok {
		return
	}
	st := it.Status
	sw.status.SetText(it.Name + ": " + tray.Status(st, time.Now()))
	sw.link.Hide()
	sw.copy.Hide()
	wasLive := sw.live.Visible()
	sw.live.Hide()
	defer func() {
		if sw.live.Visible() != wasLive {
			sw.right.Refresh()
		}
	}()
	if st.Phase == forwarder.Online && len(st.Forwarding) > 0 {
		if u, err := url.Parse(st.Forwarding[0].URL); err == nil {
			sw.status.SetText(it.Name + ": online at")
			sw.link.SetText(u.String())
			sw.link.SetURL(u)
			sw.link.Show()
			sw.copy.Show()
			sw.showLive(it, u.String())
		}
	}
	if st.Running {
		sw.toggle.SetText("Stop")
		sw.toggle.SetIcon(theme.MediaStopIcon())
	} else {
		sw.toggle.SetText("Start")
		sw.toggle.SetIcon(theme.MediaPlayIcon())
	}
	// A start error shows at its fields once, so that later refreshes do
	// not undo what the person does with the form. (Errors are compared by
	// text: some, such as settings.Problems, cannot be compared as values.)
	var startErr error
	if st.Phase == forwarder.Failed {
		startErr = st.Err
	}
	problems := settings.ProblemsOf(startErr)
	delete(problems, settings.FieldProfile) // the status line says it
	if text := errString(startErr); text != sw.shownErr {
		sw.shownErr = text
		sw.form.showProblems(problems)
	}
	// An error worded at its fields is not repeated, raw, below them.
	if len(problems) > 0 {
		var labels []string
		for _, f := range problems.Fields() {
			labels = append(labels, f.Label())
		}
		sw.status.SetText(it.Name + ": stopped with an error; see " + strings.Join(labels, ", ") + ".")
	}
}

// showLive shows an online profile's live counters and the QR code of its
// public URL, if a phone could open it, or else why there is none.
func (sw *settingsWindow) showLive(it tray.Item, publicURL string) {
	t := it.Traffic
	sw.counters.SetText(fmt.Sprintf("%s · %d %s · %s in · %s out · %d open %s",
		tray.Traffic(it), t.Errors, plural(t.Errors, "error"), byteSize(t.BytesIn), byteSize(t.BytesOut),
		t.Open, plural(t.Open, "connection")))
	sw.live.Show()
	if why := phoneCannotOpen(publicURL); why != "" {
		sw.qr.Hide()
		sw.scan.SetText(why)
		return
	}
	sw.qr.Show()
	sw.scan.SetText("Scan the code to open the public URL on a phone.")
	if publicURL != sw.qrURL {
		img, err := qrImage(publicURL, 264)
		if err != nil {
			sw.a.log.Warn("QR code", "err", err)
			return
		}
		sw.qr.Image, sw.qrURL = img, publicURL
		sw.qr.Refresh()
	}
}

func plural(n int64, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// byteSize is n bytes in words a person reads at a glance.
func byteSize(n int64) string {
	switch {
	case n < 1000:
		return fmt.Sprintf("%d B", n)
	case n < 1000*1000:
		return fmt.Sprintf("%.1f kB", float64(n)/1000)
	case n < 1000*1000*1000:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
	return fmt.Sprintf("%.2f GB", float64(n)/1e9)
}

// setPending disables the buttons that change the profiles while a change
// is being saved, and enables them again after.
func (sw *settingsWindow) setPending(on bool) {
	sw.pending = on
	sw.updateButtons()
}

// updateButtons enables the buttons that apply: none that changes the
// profiles while a change is pending, or while the profiles file is one
// Porthole leaves alone (the notice says why).
func (sw *settingsWindow) updateButtons() {
	_, selected := sw.item(sw.selected)
	canChange := !sw.pending && sw.a.profiles.writable()
	enable(canChange, sw.add)
	enable(canChange && selected, sw.save, sw.remove, sw.dup)
	enable(selected, sw.toggle)
}

func (sw *settingsWindow) showEmpty() {
	sw.selected = ""
	sw.form.content.Hide()
	sw.updateButtons()
	if sw.a.profiles.writable() {
		sw.status.SetText("No profiles. Add one to put a local service online.")
	} else {
		sw.status.SetText("No profiles to show until Porthole can read its profiles file.")
	}
}

// close hides the window: Porthole goes on in the tray, whose menu brings
// the window back. On a desktop without a tray nothing would, so closing
// the window quits Porthole instead, after asking if that stops tunnels or
// loses changes to the form.
func (sw *settingsWindow) close() {
	if sw.a.tray != nil {
		sw.w.Hide()
		return
	}
	running := 0
	for _, it := range sw.a.items() {
		if it.Status.Running {
			running++
		}
	}
	var lose []string
	switch running {
	case 0:
	case 1:
		lose = append(lose, "stops the tunnel that is running")
	default:
		lose = append(lose, fmt.Sprintf("stops the %d tunnels that are running", running))
	}
	if sw.form.dirty() {
		lose = append(lose, "discards the changes to the form")
	}
	if len(lose) == 0 {
		sw.a.Quit()
		return
	}
	sw.ask("Quit Porthole?", "This desktop shows no tray icon, so closing the window quits Porthole. That "+
		strings.Join(lose, " and ")+".", "Quit", "Cancel", sw.a.Quit, nil)
}

// leaveFor selects another profile. If the form has changes that are not
// saved, it asks first: the changes are discarded only if the person says
// so, and otherwise the selection stays where it was.
func (sw *settingsWindow) leaveFor(id string) {
	current, ok := sw.a.profiles.get(sw.selected)
	if !ok || !sw.form.dirty() {
		sw.selectProfile(id)
		return
	}
	sw.ask("Discard your changes?", "The changes to "+current.Name+" are not saved.",
		"Discard", "Keep editing", func() { sw.selectProfile(id) }, sw.showSelected)
}

// showSelected puts the list's highlight on the selected profile.
func (sw *settingsWindow) showSelected() {
	if i := slices.IndexFunc(sw.items, func(it tray.Item) bool { return it.ID == sw.selected }); i >= 0 {
		sw.list.Select(i)
	}
}

// selectProfile loads a saved profile into the form and, off the UI
// goroutine, asks the keyring whether the secrets it says it has are there.
func (sw *settingsWindow) selectProfile(id string) {
	p, ok := sw.a.profiles.get(id)
	if !ok {
		return
	}
	sw.selected = id
	sw.shownErr = ""
	sw.form.content.Show()
	sw.updateButtons()
	sw.form.set(p)
	sw.showState()
	if !p.BuiltinRelay && !p.HasToken {
		sw.form.token.SetPlaceHolder("No token saved (type one to save it in the keyring)")
	}
	var kinds []settings.SecretKind
	if !p.BuiltinRelay && p.HasToken {
		kinds = append(kinds, settings.SecretToken)
		sw.form.token.SetPlaceHolder("Checking the keyring…")
	}
	if p.BasicAuthUser != "" {
		kinds = append(kinds, settings.SecretBasicAuth)
		sw.form.basicPass.SetPlaceHolder("Checking the keyring…")
	}
	if len(kinds) == 0 {
		return
	}
	sw.a.background(func() {
		errs := make([]error, len(kinds))
		for i, kind := range kinds {
			_, errs[i] = sw.a.secrets.Get(p.ID, kind)
		}
		sw.a.ui(func() {
			if sw.selected != p.ID {
				return
			}
			for i, kind := range kinds {
				sw.form.showSecret(kind, errs[i])
			}
		})
	})
}

// keyringMessage explains a keyring failure in plain words.
func keyringMessage(err error) string {
	switch {
	case errors.Is(err, settings.ErrNoSecret):
		return "Not in the keyring any more: type it again. The profile does not start without it."
	case errors.Is(err, settings.ErrKeyringLocked):
		return "The system keyring is locked or did not answer. Unlock it and try again; profiles without secrets still work."
	case errors.Is(err, settings.ErrKeyringUnavailable):
		return sentence(err.Error()) + ". Secrets cannot be saved or read; profiles without secrets still work."
	}
	return sentence(err.Error())
}

// saveForm validates the form and, if it is valid, saves it off the UI
// goroutine, then starts the profile if start is set. Invalid input is
// shown at the field and nothing is saved.
func (sw *settingsWindow) saveForm(start bool) {
	failed := "Not saved: "
	if start {
		failed = "Not started: "
	}
	p, token, pass, bad := sw.form.read()
	for f, msg := range p.Validate() {
		if _, ok := bad[f]; !ok {
			bad[f] = msg
		}
	}
	if p.Name != "" && slices.ContainsFunc(sw.a.profiles.all(), func(q settings.Profile) bool { return q.ID != p.ID && q.Name == p.Name }) {
		bad[settings.FieldName] = "Another profile has this name."
	}
	sw.form.showProblems(bad)
	if len(bad) > 0 {
		sw.status.SetText(failed + "fix the fields marked in red.")
		sw.report(bad)
		return
	}
	sw.setPending(true)
	sw.status.SetText("Saving…")
	sw.a.background(func() {
		err := sw.a.saveProfile(p, token, pass)
		sw.a.ui(func() {
			sw.setPending(false)
			var se *settings.SecretError
			var bad settings.Problems
			switch {
			case errors.As(err, &se):
				sw.form.showFieldError(se.Field(), keyringMessage(se.Err))
				sw.status.SetText(failed + "the keyring refused the secret.")
			case errors.As(err, &bad):
				sw.form.showProblems(bad)
				sw.status.SetText(failed + "fix the fields marked in red.")
			case err != nil:
				sw.status.SetText(failed + err.Error())
			default:
				sw.form.token.SetText("")
				sw.form.basicPass.SetText("")
				sw.a.refresh()
				sw.selectProfile(p.ID)
				sw.status.SetText("Saved.")
			}
			sw.report(err)
			if err == nil && start {
				sw.a.start(p.ID) // returns at once
			}
		})
	})
}

func (sw *settingsWindow) report(err error) {
	if sw.saved != nil {
		sw.saved <- err
	}
}

// toggleSelected starts or stops the selected profile. A profile started
// from a form with unsaved changes runs with what the form shows: the form
// is saved first.
func (sw *settingsWindow) toggleSelected() {
	it, ok := sw.item(sw.selected)
	switch {
	case !ok:
	case !it.Status.Running && sw.form.dirty():
		sw.saveForm(true)
	default:
		sw.a.toggle(sw.selected)
	}
}

func (sw *settingsWindow) addProfile() {
	p := settings.Example()
	p.Name, p.Subdomain = "New tunnel", ""
	sw.create(p, "", "Not added: ")
}

func (sw *settingsWindow) duplicate() {
	if p, ok := sw.a.profiles.get(sw.selected); ok {
		p.Name += " copy"
		p.StartWithApp = false
		p.Subdomain = "" // two tunnels cannot share a name
		sw.create(p, p.ID, "Not duplicated: ")
	}
}

// create saves a new profile off the UI goroutine and selects it.
func (sw *settingsWindow) create(p settings.Profile, copyFrom, failed string) {
	sw.setPending(true)
	sw.a.background(func() {
		saved, err := sw.a.addProfile(p, copyFrom)
		sw.a.ui(func() {
			sw.setPending(false)
			if err != nil {
				sw.status.SetText(failed + err.Error())
			} else {
				sw.a.refresh()
				if i := slices.IndexFunc(sw.items, func(it tray.Item) bool { return it.ID == saved.ID }); i >= 0 {
					sw.list.Select(i)
				}
			}
			sw.report(err)
		})
	})
}

func (sw *settingsWindow) deleteSelected() {
	p, ok := sw.a.profiles.get(sw.selected)
	if !ok {
		return
	}
	sw.ask("Delete "+p.Name+"?", "Its tunnel stops, and its profile and secrets are removed.",
		"Delete", "Cancel", func() { sw.delete(p.ID) }, nil)
}

// ask asks a question in a dialog whose buttons say what they do, and
// runs yes or no with the answer (either may be nil).
func (sw *settingsWindow) ask(title, message, confirm, dismiss string, yes, no func()) {
	sw.confirm = dialog.NewConfirm(title, message, func(ok bool) {
		sw.confirm = nil
		switch {
		case ok && yes != nil:
			yes()
		case !ok && no != nil:
			no()
		}
	}, sw.w)
	sw.confirm.SetConfirmText(confirm)
	sw.confirm.SetDismissText(dismiss)
	sw.confirm.Show()
}

// delete removes a profile off the UI goroutine.
func (sw *settingsWindow) delete(id string) {
	sw.setPending(true)
	sw.a.background(func() {
		err := sw.a.deleteProfile(id)
		sw.a.ui(func() {
			sw.setPending(false)
			sw.a.refresh()
			sw.list.UnselectAll()
			if len(sw.items) > 0 {
				sw.list.Select(0)
			} else {
				sw.showEmpty()
			}
			if err != nil {
				sw.status.SetText(err.Error())
			}
			sw.report(err)
		})
	})
}

// sentence starts an error's text with a capital letter for display.
func sentence(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
