//go:build !linux && !freebsd && !openbsd && !netbsd && !darwin && !windows

package autostart

type unsupported struct{}

func newLauncher(App) Launcher { return unsupported{} }

func (unsupported) Enable() error   { return ErrUnsupported }
func (unsupported) Disable() error  { return nil }
func (unsupported) IsEnabled() bool { return false }
