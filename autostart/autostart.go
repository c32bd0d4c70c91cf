// Package autostart starts the app when the user logs in: an XDG autostart
// entry on Linux and the BSDs, a LaunchAgent on macOS, the HKCU Run key on
// Windows. Each OS lives in its own file behind Launcher.
package autostart

import "errors"

// App describes what to start.
type App struct {
	ID   string   // reverse-DNS application ID, e.g. "dev.porthole.app"
	Name string   // shown by the OS
	Exec []string // program path and arguments
}

// Launcher turns starting at login on and off.
type Launcher interface {
	Enable() error
	Disable() error
	IsEnabled() bool
}

// New returns the Launcher for this OS.
func New(app App) Launcher { return newLauncher(app) }

// ErrUnsupported is returned on systems without a known mechanism.
var ErrUnsupported = errors.New("starting at login is not supported on this system")
