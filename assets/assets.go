// Package assets holds Porthole's icons, embedded in the binaries.
package assets

import (
	_ "embed"
)

// Icon is the application icon (512×512 PNG).
//
//go:embed icon.png
var Icon []byte

// Tray is the tray icon when no tunnel is online (64×64 PNG).
//
//go:embed tray.png
var Tray []byte

// TrayOnline is the tray icon when at least one tunnel is online.
//
//go:embed tray-online.png
var TrayOnline []byte
