// Package app is Porthole's desktop face: a tray menu and a settings window
// over the engine. It owns the Fyne widgets; everything slow (keyring,
// network, forwarders) runs on other goroutines and reaches the widgets
// through the bridge in bridge.go.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"

	"porthole/assets"
	"porthole/autostart"
	"porthole/engine"
	"porthole/forwarder"
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
}

// App is the running desktop app.
type App struct {
	fy       fyne.App
	log      *slog.Logger
	store    *settings.Store
	secrets  SecretStore
	launcher autostart.Launcher
	local    *engine.LocalRelay
	engine   *engine.Manager

	mu           sync.Mutex
	profiles     []settings.Profile
	states       map[string]forwarder.State
	startAtLogin bool
	notice       string // a problem to show at the top of the window
	quitting     bool

	win *settingsWindow // UI goroutine only
	bg  sync.WaitGroup  // background work, see background
}

// New wires an App to a Fyne app. Call Start next.
func New(fy fyne.App, o Options) *App {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	a := &App{
		fy: fy, log: o.Logger, store: o.Store, secrets: o.Secrets,
		launcher: o.Launcher, local: o.LocalRelay,
		states: map[string]forwarder.State{},
	}
	a.engine = engine.New(engine.Config{
		Secrets:    o.Secrets,
		LocalRelay: o.LocalRelay,
		Logger:     o.Logger,
		OnChange:   a.onState,
	})
	return a
}

// Start loads the profiles, puts the app in the tray, starts the profiles
// marked "Start when Porthole starts", and opens the settings window on
// first start, after a problem, or when showWindow is set.
func (a *App) Start(showWindow bool) {
	data, err := a.store.Load()
	var corrupt *settings.CorruptError
	switch {
	case errors.As(err, &corrupt):
		a.notice = corrupt.Error() + " Porthole starts with no profiles."
		a.log.Error("profiles file unreadable", "err", err)
		showWindow = true
	case err != nil:
		a.notice = "The profiles could not be read: " + err.Error()
		showWindow = true
	case len(data.Profiles) == 0:
		// First start: offer an example on the built-in relay.
		ex := settings.Example()
		data.Profiles = []settings.Profile{ex}
		if err := a.store.Save(data); err != nil {
			a.notice = "The example profile could not be saved: " + err.Error()
		}
		showWindow = true
	}
	a.profiles = data.Profiles
	if a.launcher != nil {
		a.startAtLogin = a.launcher.IsEnabled()
	}
	if d, ok := a.fy.(desktop.App); ok {
		d.SetSystemTrayIcon(fyne.NewStaticResource("tray.png", assets.Tray))
	}
	a.refresh()
	for _, p := range a.profiles {
		if p.StartWithApp {
			a.engine.Start(p)
		}
	}
	go a.countdown()
	if showWindow {
		a.ShowSettings()
	}
}

// countdown refreshes the tray and window every second while a profile
// waits to reconnect, so "reconnecting in N s" counts down.
func (a *App) countdown() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for range t.C {
		a.mu.Lock()
		waiting, quitting := false, a.quitting
		for _, s := range a.states {
			waiting = waiting || s.Phase == forwarder.Reconnecting
		}
		a.mu.Unlock()
		if quitting {
			return
		}
		if waiting {
			a.ui(a.refresh)
		}
	}
}

// profile returns a saved profile by ID.
func (a *App) profile(id string) (settings.Profile, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	i := slices.IndexFunc(a.profiles, func(p settings.Profile) bool { return p.ID == id })
	if i < 0 {
		return settings.Profile{}, false
	}
	return a.profiles[i], true
}

// snapshot returns the profiles as the tray and the list show them.
func (a *App) snapshot() []tray.Item {
	a.mu.Lock()
	defer a.mu.Unlock()
	items := make([]tray.Item, len(a.profiles))
	for i, p := range a.profiles {
		items[i] = tray.Item{ID: p.ID, Name: p.Name, State: a.states[p.ID], Running: a.engine.Running(p.ID)}
	}
	return items
}

// onState receives every forwarder state change, on the forwarder's goroutine.
func (a *App) onState(id string, s forwarder.State) {
	a.mu.Lock()
	prev := a.states[id]
	a.states[id] = s
	quitting := a.quitting
	a.mu.Unlock()
	p, ok := a.profile(id)
	if ok && !quitting {
		switch {
		case s.Phase == forwarder.Online && prev.Phase != forwarder.Online:
			url := ""
			if len(s.Forwarding) > 0 {
				url = s.Forwarding[0].URL
			}
			a.notify(p.Name+" is online", url)
		case s.Phase == forwarder.Failed:
			a.notify(p.Name+" stopped with an error", errString(s.Err))
		}
	}
	a.ui(a.refresh)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// notify sends a desktop notification. It blocks on D-Bus, so it runs on
// its own goroutine.
func (a *App) notify(title, body string) {
	a.background(func() { a.fy.SendNotification(fyne.NewNotification(title, body)) })
}

// refresh rebuilds the tray menu and the window from the current state.
// UI goroutine only.
func (a *App) refresh() {
	items := a.snapshot()
	a.mu.Lock()
	login := a.startAtLogin
	a.mu.Unlock()
	if d, ok := a.fy.(desktop.App); ok {
		d.SetSystemTrayMenu(tray.Menu(items, login, time.Now(), tray.Actions{
			Toggle:          a.toggle,
			CopyURL:         func(u string) { a.fy.Clipboard().SetContent(u) },
			OpenSettings:    a.ShowSettings,
			SetStartAtLogin: a.setStartAtLogin,
			Quit:            a.Quit,
		}))
		icon := assets.Tray
		for _, it := range items {
			if it.State.Phase == forwarder.Online {
				icon = assets.TrayOnline
			}
		}
		d.SetSystemTrayIcon(fyne.NewStaticResource("tray.png", icon))
	}
	if a.win != nil {
		a.win.refresh(items)
	}
}

// toggle starts or stops a profile's forwarder. It returns at once.
func (a *App) toggle(id string) {
	if p, ok := a.profile(id); ok {
		a.engine.Toggle(p)
		a.refresh()
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
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := a.engine.Shutdown(ctx); err != nil {
			a.log.Warn("forwarders did not stop in time", "err", err)
		}
		if a.local != nil {
			a.local.Close()
		}
		a.log.Info("quit")
		a.ui(a.fy.Quit)
	})
}

// saveProfile stores a profile's secrets in the keyring and the profile in
// the store, replacing the one with the same ID. Off the UI goroutine.
func (a *App) saveProfile(p settings.Profile, token, basicPass string) error {
	if token != "" && !p.BuiltinRelay {
		if err := a.secrets.Set(p.ID, settings.SecretToken, token); err != nil {
			return &fieldError{field: fieldToken, err: err}
		}
		p.HasToken = true
	}
	if basicPass != "" && p.BasicAuthUser != "" {
		if err := a.secrets.Set(p.ID, settings.SecretBasicAuth, basicPass); err != nil {
			return &fieldError{field: fieldBasicPass, err: err}
		}
	}
	a.mu.Lock()
	next := slices.Clone(a.profiles)
	if i := slices.IndexFunc(next, func(q settings.Profile) bool { return q.ID == p.ID }); i >= 0 {
		next[i] = p
	} else {
		next = append(next, p)
	}
	a.mu.Unlock()
	if err := a.commit(next); err != nil {
		return err
	}
	a.engine.Restart(p)
	return nil
}

// commit saves a new profile list and makes it current.
func (a *App) commit(next []settings.Profile) error {
	if err := a.store.Save(settings.Data{Profiles: next}); err != nil {
		return fmt.Errorf("the profiles could not be saved: %w", err)
	}
	a.mu.Lock()
	a.profiles = next
	a.mu.Unlock()
	return nil
}

// deleteProfile stops a profile, forgets its secrets and removes it.
func (a *App) deleteProfile(id string) error {
	a.engine.StopWait(id)
	p, _ := a.profile(id)
	var keyErr error
	forget := func(kind settings.SecretKind) {
		if err := a.secrets.Delete(id, kind); err != nil {
			keyErr = err
		}
	}
	if p.HasToken {
		forget(settings.SecretToken)
	}
	if p.BasicAuthUser != "" {
		forget(settings.SecretBasicAuth)
	}
	a.mu.Lock()
	next := slices.DeleteFunc(slices.Clone(a.profiles), func(p settings.Profile) bool { return p.ID == id })
	delete(a.states, id)
	a.mu.Unlock()
	if err := a.commit(next); err != nil {
		return err
	}
	if keyErr != nil {
		return fmt.Errorf("the profile was deleted, but its secrets stay in the keyring: %w", keyErr)
	}
	return nil
}

// addProfile saves a copy of p under a fresh ID and a free name, copying
// its secrets. Off the UI goroutine.
func (a *App) addProfile(p settings.Profile, copySecretsFrom string) (settings.Profile, error) {
	p.ID = settings.NewID()
	p.Name = a.freeName(p.Name)
	if copySecretsFrom != "" && p.HasToken {
		p.HasToken = false
		if tok, err := a.secrets.Get(copySecretsFrom, settings.SecretToken); err == nil {
			if a.secrets.Set(p.ID, settings.SecretToken, tok) == nil {
				p.HasToken = true
			}
		}
	}
	if copySecretsFrom != "" && p.BasicAuthUser != "" {
		if pw, err := a.secrets.Get(copySecretsFrom, settings.SecretBasicAuth); err == nil {
			a.secrets.Set(p.ID, settings.SecretBasicAuth, pw)
		}
	}
	a.mu.Lock()
	next := append(slices.Clone(a.profiles), p)
	a.mu.Unlock()
	return p, a.commit(next)
}

func (a *App) freeName(base string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	name := base
	for i := 2; slices.ContainsFunc(a.profiles, func(p settings.Profile) bool { return p.Name == name }); i++ {
		name = fmt.Sprintf("%s %d", base, i)
	}
	return name
}

// nameTaken reports whether another profile has p's name.
func (a *App) nameTaken(p settings.Profile) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.ContainsFunc(a.profiles, func(q settings.Profile) bool { return q.ID != p.ID && q.Name == p.Name })
}

// ConfigDir is where the desktop app keeps its files.
func ConfigDir() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "porthole"), nil
}
