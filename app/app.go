// Package app is Porthole's desktop face: a tray menu and a settings window
// over the engine. It owns the Fyne widgets; everything slow (keyring,
// network, forwarders) runs on other goroutines and reaches the widgets
// through the bridge in bridge.go.
//
// Files by concern: app.go wires the parts and renders the engine's
// statuses into the tray and the window; profiles.go and edit.go keep and
// change the saved profiles; notify.go decides which changes are worth a
// notification; window.go and form.go are the settings window.
package app

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"fyne.io/fyne/v2"

	"porthole/autostart"
	"porthole/engine"
	"porthole/forwarder"
	"porthole/inspect"
	"porthole/settings"
	"porthole/tray"
)

// ID is the application ID, shared with FyneApp.toml and the autostart entry.
const ID = "dev.porthole.app"

// SecretStore is what the app needs from the keyring.
type SecretStore interface {
	engine.SecretSource
	Get(profileID string, kind settings.SecretKind) (string, error)
	Set(profileID string, kind settings.SecretKind, value string) error
	Delete(profileID string, kind settings.SecretKind) error
}

// Options configure an App.
type Options struct {
	Store      *settings.Store
	Secrets    SecretStore
	Launcher   autostart.Launcher
	LocalRelay *engine.LocalRelay
	Logger     *slog.Logger
	// WebAddr is where the traffic inspector and agent API listen: ""
	// for 127.0.0.1:4040 (or the next free port up to 4049), "false" for
	// nowhere.
	WebAddr string
	// Tray, if set, puts the app in the desktop's tray (Run gives it
	// tray.System). Start calls it once with the bridge to the UI
	// goroutine that the tray's clicks must run through. Without it the
	// app has no tray.
	Tray func(run func(func())) (tray.Tray, error)
}

// App is the running desktop app. The engine owns the profiles' statuses
// and the profile list owns the saved profiles; the App keeps neither, and
// renders both whenever either changes.
type App struct {
	fy       fyne.App
	log      *slog.Logger
	secrets  SecretStore
	launcher autostart.Launcher
	local    *engine.LocalRelay
	engine   *engine.Manager
	profiles *profileList
	notes    *notifier
	inspect  *inspect.Store  // the profiles' captured traffic
	web      *inspect.Server // the inspector, once started; nil when off
	webAddr  string

	mu           sync.Mutex
	startAtLogin bool
	notice       string // a problem to show at the top of the window
	quitting     bool

	win     *settingsWindow // UI goroutine only
	newTray func(run func(func())) (tray.Tray, error)
	tray    tray.Tray // nil without a tray; UI goroutine only, until closeTray

	uiGone atomic.Bool    // Fyne's loop has ended, see ui
	bg     sync.WaitGroup // short background work, see background
	loops  sync.WaitGroup // the countdown, until stop is closed
	stop   chan struct{}
	once   sync.Once

	// rendered, if set, is called after each status change has been
	// rendered, and refreshed after every rendering of the tray and window
	// (tests wait on them). Both run on the UI goroutine.
	rendered  func(id string, s engine.Status)
	refreshed func(items []tray.Item)
}

// New wires an App to a Fyne app. Call Start next, and Quit or Close at the end.
func New(fy fyne.App, o Options) *App {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	a := &App{
		fy: fy, log: o.Logger, secrets: o.Secrets,
		launcher: o.Launcher, local: o.LocalRelay,
		profiles: &profileList{store: o.Store},
		stop:     make(chan struct{}),
		webAddr:  o.WebAddr,
		newTray:  o.Tray,
	}
	if o.WebAddr != "false" {
		a.inspect = inspect.NewStore(inspect.DefaultConfig())
	}
	a.notes = newNotifier(downGrace, a.notify)
	a.engine = engine.New(engine.Config{
		Secrets:    o.Secrets,
		LocalRelay: o.LocalRelay,
		Logger:     o.Logger,
		Inspect:    a.inspect,
		OnChange:   a.onChange,
	})
	return a
}

// Start loads the profiles, puts the app in the tray, starts the profiles
// marked "Start when Porthole starts", and opens the settings window on
// first start, after a problem, or when showWindow is set.
func (a *App) Start(showWindow bool) {
	if notice := a.loadProfiles(); notice != "" {
		a.notice = notice
		showWindow = true
	}
	if len(a.profiles.all()) == 0 && a.notice == "" {
		// First start: offer an example on the built-in relay.
		if _, err := a.addProfile(settings.Example(), ""); err != nil {
			a.notice = "The example profile could not be saved: " + err.Error()
		}
		showWindow = true
	}
	if a.launcher != nil {
		a.startAtLogin = a.launcher.IsEnabled()
	}
	a.startInspector(a.webAddr)
	if a.newTray != nil {
		t, err := a.newTray(a.ui)
		if err != nil {
			a.log.Warn("no tray icon; the settings window stays open", "err", err)
			showWindow = true
		} else {
			a.tray = t
		}
	}
	a.refresh()
	for _, p := range a.profiles.all() {
		if p.StartWithApp {
			a.engine.Start(p)
		}
	}
	a.loops.Go(a.countdown)
	if showWindow {
		a.ShowSettings()
	}
}

// loadProfiles reads the profiles file and returns a notice for the window
// if it could not be used. Only a corrupt file is moved aside (and the
// notice says where); any other problem leaves it alone and read-only.
func (a *App) loadProfiles() (notice string) {
	data, err := a.profiles.store.Load()
	switch {
	case err == nil:
		a.profiles.load(data, nil)
		return ""
	case errors.Is(err, settings.ErrCorrupt):
		a.log.Error("profiles file corrupt; moving it aside", "err", err)
		backup, qerr := a.profiles.store.Quarantine()
		if qerr != nil {
			a.profiles.load(settings.Data{}, err)
			return sentence(err.Error()) + ". It could not be moved aside (" + qerr.Error() + "), so Porthole leaves it as it is and saves no changes."
		}
		a.profiles.load(settings.Data{}, nil)
		return sentence(err.Error()) + ". It was kept as " + backup + ", and Porthole starts with no profiles."
	default:
		a.log.Error("profiles file unusable; leaving it alone", "err", err)
		a.profiles.load(settings.Data{}, err)
		return sentence(err.Error()) + ". Porthole leaves it as it is and saves no changes until it can read it."
	}
}

// countdown refreshes the window every second while a profile waits to
// reconnect, so that its "reconnecting in N s" counts down, and the tray
// and the window while traffic flows, so that the counts stay live. (The
// tray menu does not count down, so a reconnecting profile alone leaves it
// as it is.) It runs until Close.
func (a *App) countdown() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	// Traffic seen at the last tick, by profile (none before it ran).
	// Changes to the list are rendered by whoever makes them.
	seen := map[string]inspect.Totals{}
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
		changed := false
		for _, it := range a.items() {
			// A profile that stops is rendered by its status change.
			changed = changed || it.Status.Running && seen[it.ID] != it.Traffic
			seen[it.ID] = it.Traffic
			changed = changed || it.Status.Phase == forwarder.Reconnecting
		}
		if changed {
			a.ui(a.refresh)
		}
	}
}

// items is the tray's and the window's view: the saved profiles, each with
// a snapshot of its status.
func (a *App) items() []tray.Item {
	ps := a.profiles.all()
	statuses := a.engine.Snapshot()
	items := make([]tray.Item, len(ps))
	for i, p := range ps {
		items[i] = tray.Item{ID: p.ID, Name: p.Name, Status: statuses[p.ID]}
	}
	// Tunnels started over the agent API that are no saved profile, while
	// they run: the tray shows every public address Porthole serves.
	var adhoc []tray.Item
	for id, s := range statuses {
		if name, ok := engine.AdHocName(id); ok && s.Running {
			adhoc = append(adhoc, tray.Item{ID: id, Name: name + " (agent API)", Status: s})
		}
	}
	slices.SortFunc(adhoc, func(x, y tray.Item) int { return strings.Compare(x.ID, y.ID) })
	items = append(items, adhoc...)
	a.traffic(items)
	return items
}

// onChange receives every status change from the engine, in order.
func (a *App) onChange(id string, s engine.Status) {
	a.mu.Lock()
	quitting := a.quitting
	a.mu.Unlock()
	if p, ok := a.profiles.get(id); ok && !quitting {
		a.notes.observe(id, p.Name, s)
	}
	a.ui(func() {
		a.refresh()
		if a.rendered != nil {
			a.rendered(id, s)
		}
	})
}

// notify sends a desktop notification. It blocks on D-Bus, so it runs on
// its own goroutine.
func (a *App) notify(title, body string) {
	a.background(func() { a.fy.SendNotification(fyne.NewNotification(title, body)) })
}

// menu builds the tray's model for items.
func (a *App) menu(items []tray.Item) tray.Model {
	a.mu.Lock()
	login := a.startAtLogin
	a.mu.Unlock()
	actions := tray.Actions{
		Toggle:          a.toggle,
		CopyURL:         func(u string) { a.fy.Clipboard().SetContent(u) },
		OpenSettings:    a.ShowSettings,
		SetStartAtLogin: a.setStartAtLogin,
		Quit:            a.Quit,
	}
	if a.web != nil {
		actions.Inspect = a.openInspector
	}
	return tray.Menu(items, login, actions)
}

// refresh renders the profiles and their statuses into the tray and the
// window. The tray changes only what differs from what it shows, so a
// refresh that changes nothing costs nothing there. UI goroutine only.
func (a *App) refresh() {
	items := a.items()
	if a.tray != nil {
		a.tray.Show(a.menu(items))
	}
	if a.win != nil {
		a.win.refresh(items)
	}
	if a.refreshed != nil {
		a.refreshed(items)
	}
}

// start starts a profile's forwarder, as saved. It returns at once.
func (a *App) start(id string) {
	if p, ok := a.profiles.get(id); ok {
		a.engine.Start(p)
	}
}

// toggle starts or stops a profile's forwarder. It returns at once.
func (a *App) toggle(id string) {
	if p, ok := a.profiles.get(id); ok {
		a.engine.Toggle(p)
	} else if _, adhoc := engine.AdHocName(id); adhoc {
		a.engine.Stop(id) // it has no profile to start it again from
	}
}

func (a *App) setStartAtLogin(on bool) {
	if a.launcher == nil {
		return
	}
	a.background(func() {
		var err error
		if on {
			err = a.launcher.Enable()
		} else {
			err = a.launcher.Disable()
		}
		if err != nil {
			a.notify("Start at login could not be changed", err.Error())
		}
		a.mu.Lock()
		a.startAtLogin = a.launcher.IsEnabled()
		a.mu.Unlock()
		a.ui(a.refresh)
	})
}

// Quit stops every forwarder cleanly, then the built-in relay, then exits.
func (a *App) Quit() {
	a.mu.Lock()
	if a.quitting {
		a.mu.Unlock()
		return
	}
	a.quitting = true
	a.mu.Unlock()
	a.background(func() {
		a.shutdown()
		a.log.Info("quit")
		a.ui(func() {
			a.closeTray()
			a.fy.Quit()
		})
	})
}

// Close stops everything the App started and waits for it: the forwarders,
// the built-in relay, the countdown, pending notifications and background
// work. Quit does the same and then ends the Fyne app.
func (a *App) Close() {
	a.mu.Lock()
	a.quitting = true
	a.mu.Unlock()
	a.shutdown()
	a.closeTray()
	a.bg.Wait()
}

// closeTray takes the app out of the tray, once.
func (a *App) closeTray() {
	if a.tray != nil {
		a.tray.Close()
	}
}

// shutdown stops the App's parts. It does not wait for background work, so
// that background work may call it.
func (a *App) shutdown() {
	a.once.Do(func() {
		close(a.stop)
		a.loops.Wait()
		a.notes.close()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := a.engine.Shutdown(ctx); err != nil {
			a.log.Warn("forwarders did not stop in time", "err", err)
		}
		if a.local != nil {
			a.local.Close()
		}
		if a.web != nil {
			a.web.Close()
		}
	})
}
