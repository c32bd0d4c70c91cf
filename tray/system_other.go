//go:build !(linux || freebsd || openbsd || netbsd) || android

package tray

import (
	"errors"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"
)

// System puts the app in the desktop's tray through Fyne, which on macOS
// and Windows runs the tray within its own loop (the menu bar and the
// notification area are driven from the main thread). Clicks reach the
// actions on Fyne's UI goroutine, so run is not needed.
func System(fy fyne.App, run func(func())) (Tray, error) {
	d, ok := fy.(desktop.App)
	if !ok {
		return nil, errors.New("this system has no tray")
	}
	return NewFyneTray(d), nil
}
