//go:build linux || freebsd || openbsd || netbsd

package autostart

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestXDGAutostart(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	app := App{ID: "dev.porthole.app", Name: "Porthole", Exec: []string{"/opt/My Apps/porthole$1", "--background"}}
	l := New(app)
	if l.IsEnabled() {
		t.Fatal("enabled before Enable")
	}
	if err := l.Enable(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(home, ".config", "autostart", "dev.porthole.app.desktop")
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	entry := string(raw)
	for _, want := range []string{
		"[Desktop Entry]\n",
		"Type=Application\n",
		"Name=Porthole\n",
		`Exec="/opt/My Apps/porthole\$1" "--background"` + "\n",
	} {
		if !strings.Contains(entry, want) {
			t.Errorf("entry lacks %q:\n%s", want, entry)
		}
	}
	if !l.IsEnabled() {
		t.Error("not enabled after Enable")
	}
	if out, err := exec.Command("desktop-file-validate", p).CombinedOutput(); err == nil {
		t.Logf("desktop-file-validate: ok %s", out)
	} else if _, lookErr := exec.LookPath("desktop-file-validate"); lookErr == nil {
		t.Errorf("desktop-file-validate: %v\n%s", err, out)
	}
	if err := l.Disable(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) || l.IsEnabled() {
		t.Errorf("entry still there after Disable: %v", err)
	}
	if err := l.Disable(); err != nil {
		t.Errorf("second Disable: %v", err)
	}
}

func TestExecLine(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/bin/porthole": `"/usr/bin/porthole"`,
		"/a b/c":            `"/a b/c"`,
		`/q"uote`:           `"/q\"uote"`,
		"/back\\slash":      `"/back\\slash"`,
		"/tick`$HOME":       "\"/tick\\`\\$HOME\"",
		"/100%":             `"/100%%"`,
	} {
		if got := ExecLine([]string{in}); got != want {
			t.Errorf("ExecLine(%q) = %s, want %s", in, got, want)
		}
	}
}
