package settings

import (
	"os"
	"path/filepath"
)

// Paths are where Porthole keeps its files: one directory under the user
// config directory, shared by the desktop app and the command line.
type Paths struct {
	Dir string
}

// DefaultPaths returns the paths under the user config directory
// (~/.config/porthole on Linux, or $XDG_CONFIG_HOME/porthole).
func DefaultPaths() (Paths, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return Paths{}, err
	}
	return Paths{Dir: filepath.Join(dir, "porthole")}, nil
}

// Profiles is the profiles file.
func (p Paths) Profiles() string { return filepath.Join(p.Dir, "profiles.json") }

// LocalRelay is the built-in relay's state directory (its certificate).
func (p Paths) LocalRelay() string { return filepath.Join(p.Dir, "local-relay") }

// Instance is the socket by which a second desktop app finds the first.
func (p Paths) Instance() string { return filepath.Join(p.Dir, "instance.sock") }

// Relay is the state directory `porthole relay` uses when given none.
func (p Paths) Relay() string { return filepath.Join(p.Dir, "relay") }
