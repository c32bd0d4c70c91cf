package app

import "fyne.io/fyne/v2"

// ui runs f on the UI goroutine. It is the one way goroutines reach the
// widgets and the tray: keyring, network and forwarder work happens
// elsewhere and hands its result over here, and so do the tray's clicks.
// Once Fyne's loop has ended (see uiEnded) there is no UI goroutine left,
// and fyne.Do would run f on the caller's: f is dropped instead.
func (a *App) ui(f func()) {
	if a.uiGone.Load() {
		return
	}
	fyne.Do(f)
}

// uiEnded records that Fyne's loop has ended.
func (a *App) uiEnded() { a.uiGone.Store(true) }

// background runs slow work (keyring, files, notifications, stopping
// forwarders) off the UI goroutine. Wait waits for all of it.
func (a *App) background(f func()) {
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		f()
	}()
}

// Wait blocks until the background work started so far has finished.
func (a *App) Wait() { a.bg.Wait() }
