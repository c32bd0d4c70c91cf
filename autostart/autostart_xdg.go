//go:build linux || freebsd || openbsd || netbsd

package autostart

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

type xdg struct{ app App }

func newLauncher(app App) Launcher { return xdg{app} }

// path is $XDG_CONFIG_HOME/autostart/ID.desktop.
func (x xdg) path() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "autostart", x.app.ID+".desktop"), nil
}

func (x xdg) Enable() error {
	p, err := x.path()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	entry := fmt.Sprintf(`[Desktop Entry]
Type=Application
Name=%s
Comment=Start %s tunnels at login
Exec=%s
Icon=%s
Terminal=false
X-GNOME-Autostart-enabled=true
`, x.app.Name, x.app.Name, ExecLine(x.app.Exec), x.app.ID)
	return os.WriteFile(p, []byte(entry), 0o644)
}

func (x xdg) Disable() error { return removeFile(x.path()) }

func (x xdg) IsEnabled() bool { return fileExists(x.path()) }

// ExecLine quotes a command line for a desktop entry's Exec key: every
// argument in double quotes with ", `, $ and \ escaped, and % doubled.
func ExecLine(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		var b strings.Builder
		b.WriteByte('"')
		for _, r := range a {
			switch r {
			case '"', '`', '$', '\\':
				b.WriteByte('\\')
			case '%':
				b.WriteByte('%')
			}
			b.WriteRune(r)
		}
		b.WriteByte('"')
		quoted[i] = b.String()
	}
	return strings.Join(quoted, " ")
}
