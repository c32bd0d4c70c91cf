package app

import "fyne.io/fyne/v2"

// ui runs f on the UI goroutine. It is the one way goroutines reach the
// widgets: keyring, network and forwarder work happens elsewhere and hands
// its result over here.
func (a *App) ui(f func()) { fyne.Do(f) }
