package app

import (
	"errors"
	"log/slog"
	"os"

	fyneapp "fyne.io/fyne/v2/app"

	"fyne.io/fyne/v2"

	"porthole/assets"
	"porthole/autostart"
	"porthole/engine"
	"porthole/internal/instance"
	"porthole/settings"
	"porthole/tray"
)

// Run starts the desktop app and returns when it quits. If the app already
// runs, it brings that one's window forward instead and returns at once.
// With background set, the window stays closed (as when started at login).
// webAddr is where the traffic inspector listens (see Options.WebAddr).
func Run(background bool, webAddr string) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	paths, err := settings.DefaultPaths()
	if err != nil {
		return err
	}
	fy := fyneapp.NewWithID(ID)
	fy.SetIcon(fyne.NewStaticResource("icon.png", assets.Icon))

	var a *App
	show := make(chan struct{}, 1)
	release, err := instance.Claim(paths.Instance(), func() {
		select {
		case show <- struct{}{}:
		default:
		}
	})
	if errors.Is(err, instance.ErrRunning) {
		log.Info("already running; showed its window")
		return nil
	}
	if err != nil {
		return err
	}
	defer release()

	exe, err := os.Executable()
	if err != nil {
		return err
	}
	a = New(fy, Options{
		Store:      &settings.Store{Path: paths.Profiles()},
		Secrets:    settings.NewKeyring(),
		Launcher:   autostart.New(autostart.App{ID: ID, Name: "Porthole", Exec: []string{exe, "--background"}}),
		LocalRelay: &engine.LocalRelay{StateDir: paths.LocalRelay(), Logger: log},
		Logger:     log,
		WebAddr:    webAddr,
		Tray:       func(run func(func())) (tray.Tray, error) { return tray.System(fy, run) },
	})
	// Start puts the app in the tray before Fyne's loop runs: on macOS and
	// Windows Fyne starts its tray as the loop begins.
	a.Start(!background)
	go func() {
		for range show {
			a.ui(a.ShowSettings)
		}
	}()
	fy.Run()
	// Quit stopped everything already; a signal ended the loop without it.
	a.uiEnded()
	a.shutdown()
	a.closeTray()
	return nil
}
