package autostart

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
)

type launchAgent struct{ app App }

func newLauncher(app App) Launcher { return launchAgent{app} }

// path is ~/Library/LaunchAgents/ID.plist.
func (l launchAgent) path() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, "Library", "LaunchAgents", l.app.ID+".plist"), nil
}

func (l launchAgent) Enable() error {
	p, err := l.path()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	var args strings.Builder
	for _, a := range l.app.Exec {
		args.WriteString("\t\t<string>")
		xml.EscapeText(&args, []byte(a))
		args.WriteString("</string>\n")
	}
	var label strings.Builder
	xml.EscapeText(&label, []byte(l.app.ID))
	plist := `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>` + label.String() + `</string>
	<key>ProgramArguments</key>
	<array>
` + args.String() + `	</array>
	<key>RunAtLoad</key>
	<true/>
</dict>
</plist>
`
	return os.WriteFile(p, []byte(plist), 0o644)
}

func (l launchAgent) Disable() error { return removeFile(l.path()) }

func (l launchAgent) IsEnabled() bool { return fileExists(l.path()) }
