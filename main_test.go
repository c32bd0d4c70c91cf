package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"porthole/internal/desktoptest"
	tt "porthole/internal/tunneltest"
	"porthole/relay"
	"porthole/settings"
)

// desktopBin is the desktop app, built once for the test.
var desktopBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "porthole-desktop")
	if err != nil {
		panic(err)
	}
	desktopBin = filepath.Join(dir, "porthole-desktop")
	if out, err := exec.Command("go", "build", "-o", desktopBin, ".").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		panic("build: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// desktopApp is the real app binary running in a private session.
type desktopApp struct {
	cmd  *exec.Cmd
	log  *strings.Builder
	done chan struct{}
}

func launch(t *testing.T, env []string, args ...string) *desktopApp {
	t.Helper()
	cmd := exec.Command(desktopBin, args...)
	cmd.Env = env
	a := &desktopApp{cmd: cmd, log: &strings.Builder{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = a.log, a.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(a.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-a.done
		t.Logf("app %v log:\n%s", args, a.log)
	})
	return a
}

func (a *desktopApp) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-a.done:
		return a.cmd.ProcessState.ExitCode()
	case <-time.After(60 * time.Second):
		t.Fatal("the app did not exit")
	}
	return -1
}

func xdotool(ctx context.Context, display string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "xdotool", args...)
	cmd.Env = append(os.Environ(), "DISPLAY="+display)
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

// TestDesktopApp runs the real app binary under Xvfb with a private D-Bus
// session, gnome-keyring and a tray host, and uses it as a person would:
// through the tray menu and the settings window.
func TestDesktopApp(t *testing.T) {
	desktoptest.Need(t, "xdotool", "import", "convert")
	display := desktoptest.StartXvfb(t)
	bus := desktoptest.StartBus(t)
	desktoptest.StartKeyring(t, bus, true)
	host := desktoptest.StartTrayHost(t, bus)

	// A real relay that wants a token, and a service behind it.
	rc := tt.RelayConfig(t)
	rc.Tokens, rc.NoAuth = []relay.Token{{Secret: "desktop-token"}}, false
	srv := tt.StartRelay(t, rc)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "served from the desktop") }))
	defer up.Close()

	// A saved profile for that relay; its token goes into the keyring
	// through the app's own secrets layer, on the private bus.
	home := t.TempDir()
	config := filepath.Join(home, ".config")
	p := settings.Example()
	p.Name, p.BuiltinRelay, p.RelayAddr, p.RelayFingerprint = "web", false, srv.AgentAddr(), srv.Fingerprint()
	p.Subdomain, p.Upstream, p.HasToken = "web", up.URL, true
	// The same service behind basic auth, whose password is not in the
	// keyring (as after restoring the profiles without their keyring).
	private := p
	private.ID, private.Name, private.Subdomain, private.BasicAuthUser = settings.NewID(), "private", "private", "alice"
	// A long name in a script of three-byte characters, on an invalid
	// subdomain: its error label is long and cut.
	wide := settings.Example()
	wide.Name, wide.Subdomain = strings.Repeat("日本語", 20), "ünïcödé"
	store := &settings.Store{Path: filepath.Join(config, "porthole", "profiles.json")}
	if err := store.Save(settings.Data{Profiles: []settings.Profile{p, private, wide}}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", bus)
	for _, id := range []string{p.ID, private.ID} {
		if err := settings.NewKeyring().Set(id, settings.SecretToken, "desktop-token"); err != nil {
			t.Fatalf("store the token in gnome-keyring: %v", err)
		}
	}

	// The default browser is a script that hands the URL it is asked to
	// open to the test, through a FIFO (reading it waits for the write).
	bin := t.TempDir()
	opened := filepath.Join(bin, "opened")
	if err := syscall.Mkfifo(opened, 0o600); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\nprintf '%s\\n' \"$1\" > " + opened + "\n"
	if err := os.WriteFile(filepath.Join(bin, "xdg-open"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(),
		"DISPLAY="+display, "DBUS_SESSION_BUS_ADDRESS="+bus,
		"HOME="+home, "XDG_CONFIG_HOME="+config, "LANG=en_US.UTF-8",
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
	)
	// The inspector on a port of its own: other tests' agents may hold
	// 4040 and the ports after it.
	app := launch(t, env, "--background", "--web-addr", "127.0.0.1:0")
	item := host.WaitItem(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	// Started at login: the window stays closed.
	if out, err := xdotool(ctx, display, "search", "--onlyvisible", "--name", "^Porthole$"); err == nil {
		t.Errorf("a window is visible after --background: %s", out)
	}

	menu := host.WaitMenu(t, item, "the profile", func(m []desktoptest.MenuItem) bool {
		_, ok := desktoptest.Find(m, "web — stopped")
		return ok
	})
	for _, want := range []string{"Settings…", "Start at login", "Quit"} {
		if _, ok := desktoptest.Find(menu, want); !ok {
			t.Errorf("menu lacks %q: %v", want, menu)
		}
	}
	web, _ := desktoptest.Find(menu, "web — ")
	if web.Checked {
		t.Errorf("a stopped profile is checked: %v", web)
	}
	// The item has a title and the tray icon (64×64), as it is put on the
	// bus with its first menu.
	title, offline := host.Icon(t, item)
	if title == "" || offline.W != 64 || offline.H != 64 || len(offline.Pix) != 64*64*4 || !slices.ContainsFunc(offline.Pix, func(b byte) bool { return b != 0 }) {
		t.Errorf("tray item titled %q with a %d×%d icon of %d bytes", title, offline.W, offline.H, len(offline.Pix))
	}

	// Click the profile: its forwarder comes online through the relay.
	host.Click(t, item, web.ID)
	menu = host.WaitMenu(t, item, "the profile online", func(m []desktoptest.MenuItem) bool {
		// The whole menu: a read may catch it while it is being replaced.
		it, ok := desktoptest.Find(m, "web — online at http://web.localhost:")
		_, quit := desktoptest.Find(m, "Quit")
		return ok && it.Checked && quit
	})
	online, _ := desktoptest.Find(menu, "web — online at ")
	// The icon is set before the menu that calls for it.
	if _, lit := host.Icon(t, item); slices.Equal(lit.Pix, offline.Pix) {
		t.Error("the tray icon did not change when a profile came online")
	}
	url, traffic, _ := strings.Cut(strings.TrimPrefix(online.Label, "web — online at "), " — ")
	if traffic != "0 requests" {
		t.Errorf("traffic in the label: %q", traffic)
	}
	if _, ok := desktoptest.Find(menu, "Copy "+url); !ok {
		t.Errorf("no copy item for %s: %v", url, menu)
	}
	resp, err := tt.Client(srv).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "served from the desktop" {
		t.Errorf("through the tunnel: %d %q", resp.StatusCode, body)
	}
	if n := host.WaitNotification(t, "web is online"); n.Body != url {
		t.Errorf("notification body %q, want %q", n.Body, url)
	}

	// The request shows in the profile's item, and Inspect traffic… opens
	// the inspector in the default browser, where the profile's tunnel is.
	menu = host.WaitMenu(t, item, "the request counted", func(m []desktoptest.MenuItem) bool {
		_, ok := desktoptest.Find(m, "web — online at "+url+" — 1 request")
		return ok
	})
	inspectItem, ok := desktoptest.Find(menu, "Inspect traffic…")
	if !ok {
		t.Fatalf("no Inspect traffic… item: %v", menu)
	}
	host.Click(t, item, inspectItem.ID)
	inspector := readFIFO(t, opened)
	if !regexp.MustCompile(`^http://127\.0\.0\.1:[1-9][0-9]*$`).MatchString(inspector) {
		t.Errorf("the browser was asked to open %q", inspector)
	}
	resp, err = http.Get(inspector + "/api/tunnels")
	if err != nil {
		t.Fatal(err)
	}
	var tunnels struct {
		Tunnels []struct {
			Name      string
			PublicURL string `json:"public_url"`
		}
	}
	json.NewDecoder(resp.Body).Decode(&tunnels)
	resp.Body.Close()
	if len(tunnels.Tunnels) == 0 || tunnels.Tunnels[0].Name != "web" || tunnels.Tunnels[0].PublicURL != url {
		t.Errorf("the inspector's tunnels: %+v", tunnels.Tunnels)
	}

	// While requests flow, the count in the profile's item goes up in
	// place: every item keeps its D-Bus ID (a menu built anew would give
	// each a new one, and close a menu the user has open).
	ids := itemIDs(menu)
	for n := 2; n <= 5; n++ {
		resp, err := tt.Client(srv).Get(url)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		counted := fmt.Sprintf("web — online at %s — %d requests", url, n)
		menu = host.WaitMenu(t, item, counted, func(m []desktoptest.MenuItem) bool {
			_, ok := desktoptest.Find(m, counted)
			return ok
		})
		if got := itemIDs(menu); !slices.Equal(got, ids) {
			t.Errorf("after request %d the items' IDs are %v, were %v", n, got, ids)
		}
	}

	// A click right after an update, on the ID the item had before it (as
	// from a menu the user opened earlier), lands: the profile stops.
	host.Click(t, item, online.ID)
	menu = host.WaitMenu(t, item, "the profile stopped", func(m []desktoptest.MenuItem) bool {
		it, ok := desktoptest.Find(m, "web — stopped")
		return ok && !it.Checked
	})
	if _, icon := host.Icon(t, item); !slices.Equal(icon.Pix, offline.Pix) {
		t.Error("the tray icon stayed lit with no profile online")
	}

	// The profile whose password is missing refuses to start, says why,
	// unchecked, and the service is never served without credentials.
	locked, _ := desktoptest.Find(menu, "private — ")
	host.Click(t, item, locked.ID)
	menu = host.WaitMenu(t, item, "the private profile failed", func(m []desktoptest.MenuItem) bool {
		it, ok := desktoptest.Find(m, "private — error: The basic-auth password is not in the keyring")
		return ok && !it.Checked
	})
	resp, err = tt.Client(srv).Get(strings.Replace(url, "//web.", "//private.", 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatal("the private service was served without credentials")
	}

	// The long name and its error reach the tray cut, and valid UTF-8.
	w, _ := desktoptest.Find(menu, strings.Repeat("日本語", 3))
	host.Click(t, item, w.ID)
	menu = host.WaitMenu(t, item, "the wide profile failed", func(m []desktoptest.MenuItem) bool {
		it, ok := desktoptest.Find(m, strings.Repeat("日本語", 3))
		return ok && strings.Contains(it.Label, "— error: Subdomain: ") && !it.Checked
	})
	for _, it := range menu {
		if !utf8.ValidString(it.Label) || utf8.RuneCountInString(it.Label) > 140 {
			t.Errorf("tray label %q", it.Label)
		}
	}

	// Start at login writes the XDG autostart entry; unchecking removes it.
	entry := filepath.Join(config, "autostart", "dev.porthole.app.desktop")
	login, _ := desktoptest.Find(menu, "Start at login")
	host.Click(t, item, login.ID)
	menu = host.WaitMenu(t, item, "start at login checked", func(m []desktoptest.MenuItem) bool {
		it, ok := desktoptest.Find(m, "Start at login")
		return ok && it.Checked
	})
	raw, err := os.ReadFile(entry)
	if err != nil || !strings.Contains(string(raw), `Exec="`+desktopBin+`" "--background"`) {
		t.Errorf("autostart entry: %v\n%s", err, raw)
	}
	login, _ = desktoptest.Find(menu, "Start at login")
	host.Click(t, item, login.ID)
	host.WaitMenu(t, item, "start at login unchecked", func(m []desktoptest.MenuItem) bool {
		it, ok := desktoptest.Find(m, "Start at login")
		return ok && !it.Checked
	})
	if _, err := os.Stat(entry); !os.IsNotExist(err) {
		t.Errorf("autostart entry still there: %v", err)
	}

	// A second launch brings the running app's window forward and exits.
	second := launch(t, env)
	if code := second.wait(t); code != 0 {
		t.Errorf("second launch exit %d", code)
	}
	win, err := xdotool(ctx, display, "search", "--sync", "--onlyvisible", "--name", "^Porthole$")
	if err != nil {
		t.Fatalf("the settings window did not appear: %v", err)
	}
	assertNotBlank(t, display, strings.Fields(win)[0])

	// Closing the window (as a window manager does) keeps Porthole in the tray.
	startWindowManager(t, display)
	wmctrl := exec.Command("wmctrl", "-c", "Porthole")
	wmctrl.Env = append(os.Environ(), "DISPLAY="+display)
	if out, err := wmctrl.CombinedOutput(); err != nil {
		t.Fatalf("wmctrl -c: %v\n%s", err, out)
	}
	waitHidden(t, display)
	select {
	case <-app.done:
		t.Fatal("closing the window quit the app")
	default:
	}
	menu = host.WaitMenu(t, item, "the menu after closing the window", func([]desktoptest.MenuItem) bool { return true })
	settingsItem, _ := desktoptest.Find(menu, "Settings…")
	// Settings… brings the same window back.
	host.Click(t, item, settingsItem.ID)
	if _, err := xdotool(ctx, display, "search", "--sync", "--onlyvisible", "--name", "^Porthole$"); err != nil {
		t.Fatalf("Settings… did not show the window again: %v", err)
	}

	// Quit from the tray stops everything and exits cleanly.
	menu = host.WaitMenu(t, item, "the whole menu", func([]desktoptest.MenuItem) bool { return true })
	quit, _ := desktoptest.Find(menu, "Quit")
	host.Click(t, item, quit.ID)
	if code := app.wait(t); code != 0 {
		t.Errorf("exit %d after Quit", code)
	}
	// Every click reached an item the app knew.
	if strings.Contains(app.log.String(), "no menu item with ID") {
		t.Error("a click reached an item that was gone")
	}
}

// itemIDs lists the D-Bus IDs of a menu's items, in order.
func itemIDs(menu []desktoptest.MenuItem) []int32 {
	var ids []int32
	for _, it := range menu {
		ids = append(ids, it.ID)
	}
	return ids
}

// TestDesktopAppEndsOnSIGTERM: a signal ends the app as Quit does: its
// tunnels stop cleanly, and it exits 0.
func TestDesktopAppEndsOnSIGTERM(t *testing.T) {
	display := desktoptest.StartXvfb(t)
	bus := desktoptest.StartBus(t)
	host := desktoptest.StartTrayHost(t, bus)
	home := t.TempDir()
	config := filepath.Join(home, ".config")
	p := settings.Example() // on the built-in relay: no secret to read
	p.Name, p.StartWithApp = "web", true
	store := &settings.Store{Path: filepath.Join(config, "porthole", "profiles.json")}
	if err := store.Save(settings.Data{Profiles: []settings.Profile{p}}); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "DISPLAY="+display, "DBUS_SESSION_BUS_ADDRESS="+bus,
		"HOME="+home, "XDG_CONFIG_HOME="+config, "LANG=en_US.UTF-8")
	app := launch(t, env, "--background", "--web-addr", "false")
	item := host.WaitItem(t)
	host.WaitMenu(t, item, "the profile online", func(m []desktoptest.MenuItem) bool {
		it, ok := desktoptest.Find(m, "web — online at ")
		return ok && it.Checked
	})
	app.cmd.Process.Signal(syscall.SIGTERM)
	if code := app.wait(t); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
	if !strings.Contains(app.log.String(), "msg=stopped profile=web") {
		t.Error("the profile's tunnel was not stopped")
	}
}

// readFIFO returns the first line written to the FIFO at path.
func readFIFO(t *testing.T, path string) string {
	t.Helper()
	line := make(chan string, 1)
	go func() {
		b, _ := os.ReadFile(path) // opens when the writer does; ends when it closes
		line <- strings.TrimSpace(string(b))
	}()
	select {
	case l := <-line:
		return l
	case <-time.After(30 * time.Second):
		// Unblock the reader so that the goroutine ends.
		if f, err := os.OpenFile(path, os.O_WRONLY, 0); err == nil {
			f.Close()
		}
		t.Fatal("nothing was opened in the browser")
		return ""
	}
}

// startWindowManager runs openbox on the display and waits until it
// manages the Porthole window.
func startWindowManager(t *testing.T, display string) {
	t.Helper()
	desktoptest.Need(t, "openbox", "wmctrl")
	wm := exec.Command("openbox", "--sm-disable")
	wm.Env = append(os.Environ(), "DISPLAY="+display)
	if err := wm.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { wm.Wait(); close(done) }()
	t.Cleanup(func() { wm.Process.Kill(); <-done })
	deadline := time.Now().Add(30 * time.Second)
	for {
		probe := exec.Command("wmctrl", "-l")
		probe.Env = wm.Env
		if out, err := probe.Output(); err == nil && strings.Contains(string(out), "Porthole") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("openbox did not take the window over")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitHidden waits until no Porthole window is visible.
func waitHidden(t *testing.T, display string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		cmd := exec.Command("xdotool", "search", "--onlyvisible", "--name", "^Porthole$")
		cmd.Env = append(os.Environ(), "DISPLAY="+display)
		if err := cmd.Run(); err != nil {
			var exit *exec.ExitError
			if errors.As(err, &exit) && exit.ExitCode() == 1 { // nothing found
				return
			}
			t.Fatalf("xdotool: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the window stayed visible after closing it")
}

// assertNotBlank takes a screenshot of the window and checks that it shows
// more than a flat colour (a rendered form has text, fields and buttons).
func assertNotBlank(t *testing.T, display, window string) {
	t.Helper()
	shot := filepath.Join(t.TempDir(), "window.png")
	// The window is mapped; wait for the app to have drawn into it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		cmd := exec.Command("import", "-window", window, shot)
		cmd.Env = append(os.Environ(), "DISPLAY="+display)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("screenshot: %v\n%s", err, out)
		}
		out, err := exec.Command("convert", shot, "-format", "%k", "info:").Output()
		if err != nil {
			t.Fatal(err)
		}
		colours, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		if colours > 50 {
			t.Logf("window screenshot has %d colours", colours)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the window looks blank (%d colours)", colours)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPackagingDesktopEntry checks the menu entry that packaging installs.
func TestPackagingDesktopEntry(t *testing.T) {
	desktoptest.Need(t, "desktop-file-validate")
	if out, err := exec.Command("desktop-file-validate", "packaging/porthole.desktop").CombinedOutput(); err != nil {
		t.Errorf("packaging/porthole.desktop: %v\n%s", err, out)
	}
	if _, err := os.Stat("packaging/icons/dev.porthole.app.png"); err != nil {
		t.Errorf("packaging icon: %v", err)
	}
}
