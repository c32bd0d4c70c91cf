// Package desktoptest starts the real desktop pieces the app's tests need,
// each private to the test: an X display (Xvfb), a D-Bus session bus, a
// gnome-keyring Secret Service, and a tray host (StatusNotifierWatcher and
// notification server) that reads and clicks menus over com.canonical.dbusmenu.
//
// A missing program skips the test, unless PORTHOLE_DESKTOP_TESTS=require
// (as in CI), which turns the skip into a failure.
package desktoptest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// Need skips or fails the test when a program is missing.
func Need(t testing.TB, programs ...string) {
	t.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			Unavailable(t, fmt.Sprintf("%s is not installed (scripts/deps.sh test installs it)", p))
		}
	}
}

// Unavailable skips the test, or fails it where desktop tests are required.
func Unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("PORTHOLE_DESKTOP_TESTS") == "require" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// startWithFD3 starts cmd with a pipe on fd 3 and returns the first line
// the program writes there (how Xvfb and dbus-daemon announce readiness).
func startWithFD3(t testing.TB, cmd *exec.Cmd) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.ExtraFiles = []*os.File{w}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	w.Close()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		r.Close()
		line <- strings.TrimSpace(s)
	}()
	select {
	case l := <-line:
		if l == "" {
			t.Fatalf("%s did not start: %s", cmd.Path, stderr.String())
		}
		return l
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not announce itself: %s", cmd.Path, stderr.String())
	}
	return ""
}

// StartXvfb starts a private X server and returns its DISPLAY value.
func StartXvfb(t testing.TB) string {
	t.Helper()
	Need(t, "Xvfb")
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "1280x800x24", "-nolisten", "tcp", "-noreset")
	return ":" + startWithFD3(t, cmd)
}

const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`

// StartBus starts a private session bus with no activatable services and
// returns its address.
func StartBus(t testing.TB) string {
	t.Helper()
	Need(t, "dbus-daemon")
	dir := t.TempDir()
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(busConfig, dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("dbus-daemon", "--config-file="+conf, "--nofork", "--print-address=3")
	return startWithFD3(t, cmd)
}

// Connect opens a private connection to the bus at addr.
func Connect(t testing.TB, addr string) *dbus.Conn {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatalf("connect to %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// WaitForName waits until a name is owned on the bus.
func WaitForName(t testing.TB, conn *dbus.Conn, name string) {
	t.Helper()
	if err := conn.AddMatchSignal(
		dbus.WithMatchInterface("org.freedesktop.DBus"),
		dbus.WithMatchMember("NameOwnerChanged"),
		dbus.WithMatchArg(0, name),
	); err != nil {
		t.Fatal(err)
	}
	ch := make(chan *dbus.Signal, 16)
	conn.Signal(ch)
	defer conn.RemoveSignal(ch)
	var has bool
	if err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, name).Store(&has); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(30 * time.Second)
	for !has {
		select {
		case s := <-ch:
			if len(s.Body) == 3 && s.Body[0] == name && s.Body[2] != "" {
				has = true
			}
		case <-timeout:
			t.Fatalf("%s never appeared on the bus", name)
		}
	}
}

// KeyringEnv returns the environment for a gnome-keyring-daemon and the
// programs that share its private home.
func KeyringEnv(t testing.TB, bus string) []string {
	home := t.TempDir()
	return append(os.Environ(),
		"DBUS_SESSION_BUS_ADDRESS="+bus,
		"HOME="+home,
		"XDG_DATA_HOME="+filepath.Join(home, "data"),
		"XDG_RUNTIME_DIR="+home,
	)
}

// StartKeyring runs gnome-keyring's Secret Service on the bus. Unlocked, it
// creates and unlocks a login keyring with a throwaway password; locked,
// any call that needs the login keyring waits for an unlock prompt that
// never comes.
func StartKeyring(t testing.TB, bus string, unlocked bool) {
	t.Helper()
	Need(t, "gnome-keyring-daemon")
	args := []string{"--foreground", "--components=secrets"}
	if unlocked {
		args = append(args, "--unlock")
	}
	cmd := exec.Command("gnome-keyring-daemon", args...)
	cmd.Env = KeyringEnv(t, bus)
	if unlocked {
		cmd.Stdin = strings.NewReader("throwaway-test-password")
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	WaitForName(t, Connect(t, bus), "org.freedesktop.secrets")
}

// childEnv marks a test binary re-executed by RunChild.
const childEnv = "PORTHOLE_TEST_CHILD"

// IsChild reports whether this process is a child started by RunChild.
func IsChild() bool { return os.Getenv(childEnv) == "1" }

// RunChild runs the current test again in a fresh process with extra
// environment, and fails if it fails. Tests use it for code that binds
// process-wide state once, such as the D-Bus session bus connection.
func RunChild(t testing.TB, env ...string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(append(os.Environ(), childEnv+"=1"), env...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("child test failed (%v):\n%s", err, out)
	}
	t.Logf("child test output:\n%s", out)
}

// silentSecrets answers no Secret Service call until the test ends, like a
// keyring stuck behind an unlock prompt nobody sees.
type silentSecrets struct{ release chan struct{} }

func (s silentSecrets) OpenSession(string, dbus.Variant) (dbus.Variant, dbus.ObjectPath, *dbus.Error) {
	<-s.release
	return dbus.MakeVariant(""), "/", dbus.MakeFailedError(fmt.Errorf("released"))
}

// StartSilentSecretService owns org.freedesktop.secrets on the bus and never
// answers.
func StartSilentSecretService(t testing.TB, bus string) {
	t.Helper()
	conn := Connect(t, bus)
	s := silentSecrets{release: make(chan struct{})}
	t.Cleanup(func() { close(s.release) })
	if err := conn.Export(s, "/org/freedesktop/secrets", "org.freedesktop.Secret.Service"); err != nil {
		t.Fatal(err)
	}
	if reply, err := conn.RequestName("org.freedesktop.secrets", dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own org.freedesktop.secrets: %v %v", reply, err)
	}
}
