package app

import "fyne.io/fyne/v2"

// ui runs f on the UI goroutine. It is the one way goroutines reach the
// widgets: keyring, network and forwarder work happens elsewhere and hands
// its result over here.
func (a *App) ui(f func()) { fyne.Do(f) }

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
