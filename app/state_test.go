package app

import (
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"github.com/zalando/go-keyring"

	"porthole/engine"
	"porthole/forwarder"
	"porthole/inspect"
	tt "porthole/internal/tunneltest"
	"porthole/relay"
	"porthole/settings"
	"porthole/tray"
	"porthole/wire"
)

// rendered returns a channel of every status change once the tray and the
// window have rendered it.
func rendered(a *App) chan engine.Status {
	ch := make(chan engine.Status, 100)
	a.rendered = func(_ string, s engine.Status) { ch <- s }
	return ch
}

// waitRendered waits for a rendered change to phase p and not running.
func waitEnded(t *testing.T, ch chan engine.Status, p forwarder.Phase) engine.Status {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case s := <-ch:
			if s.Phase == p && !s.Running {
				return s
			}
		case <-timeout:
			t.Fatalf("no rendered change to %v", p)
		}
	}
}

// trayItem returns the tray's item for the profile named name.
func trayItem(t *testing.T, a *App, name string) *fyne.MenuItem {
	t.Helper()
	for _, it := range a.menu(a.items()).Fyne().Items {
		if strings.HasPrefix(it.Label, name+" — ") {
			return it
		}
	}
	t.Fatalf("no tray item for %q", name)
	return nil
}

// TestFailedProfileIsShownFailed starts a profile whose token the relay
// refuses: once it has failed, the tray shows the error, unchecked, and
// the window offers Start, and nothing later says otherwise.
func TestFailedProfileIsShownFailed(t *testing.T) {
	rc := tt.RelayConfig(t)
	rc.Tokens, rc.NoAuth = []relay.Token{{Secret: "right"}}, false
	srv := tt.StartRelay(t, rc)
	a, _ := newTestApp(t)
	changes := rendered(a)
	a.Start(true)
	p, _ := a.profiles.get(a.win.selected)
	p.Name, p.BuiltinRelay, p.RelayAddr, p.RelayFingerprint = "web", false, srv.AgentAddr(), srv.Fingerprint()
	if err := a.saveProfile(p, "wrong", ""); err != nil {
		t.Fatal(err)
	}
	a.win.selectProfile(p.ID)

	a.win.toggleSelected()
	waitEnded(t, changes, forwarder.Failed) // nothing runs any more: no change can follow
	item := trayItem(t, a, "web")
	// In the form's words, without the relay's code.
	if item.Checked || !strings.Contains(item.Label, "error: Token: Authentication failed.") || strings.Contains(item.Label, "auth_failed") {
		t.Errorf("tray item %q checked=%v, want the error, unchecked", item.Label, item.Checked)
	}
	if l := a.win.form.errs[settings.FieldToken]; a.win.toggle.Text != "Start" || !strings.Contains(l.Text, "Authentication failed") {
		t.Errorf("window: button %q, token field %q", a.win.toggle.Text, l.Text)
	}
	select {
	case s := <-changes:
		t.Errorf("a change after the failure: %+v", s)
	default:
	}
	// Clicking the tray item starts it again.
	item.Action()
	if s := a.engine.Status(p.ID); !s.Running {
		t.Errorf("not started again: %+v", s)
	}
	waitEnded(t, changes, forwarder.Failed)
}

// TestMissingSecretIsShownAtTheFieldAndInTheTray: a profile whose
// basic-auth password is gone from the keyring does not start, and says
// why where the user looks.
func TestMissingSecretIsShownAtTheFieldAndInTheTray(t *testing.T) {
	a, _ := newTestApp(t)
	changes := rendered(a)
	a.Start(true)
	p, _ := a.profiles.get(a.win.selected)
	p.BasicAuthUser = "alice"
	if err := a.saveProfile(p, "", "pw"); err != nil {
		t.Fatal(err)
	}
	keyring.Delete(settings.KeyringService, p.ID+"/basic-auth") // as when restored without its keyring
	a.win.selectProfile(p.ID)
	a.Wait()

	a.win.toggleSelected()
	waitEnded(t, changes, forwarder.Failed)
	item := trayItem(t, a, p.Name)
	if item.Checked || !strings.Contains(item.Label, "error: The basic-auth password is not in the keyring") {
		t.Errorf("tray item %q checked=%v", item.Label, item.Checked)
	}
	l := a.win.form.errs[settings.FieldBasicAuthPwd]
	if !l.Visible() || !strings.Contains(l.Text, "not in the keyring") {
		t.Errorf("password field shows %v %q", l.Visible(), l.Text)
	}
	// Saving needs the password typed again.
	if err := save(t, a.win); err == nil || !strings.Contains(a.win.form.errs[settings.FieldBasicAuthPwd].Text, "Enter the password") {
		t.Errorf("save without the missing password = %v", err)
	}
}

// fakeTray records the models the App shows in its tray.
type fakeTray struct {
	mu     sync.Mutex
	run    func(func()) // the bridge the App gave it
	models []tray.Model
	closed int
}

func (f *fakeTray) Show(m tray.Model) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.models = append(f.models, m)
}

func (f *fakeTray) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed++
}

func (f *fakeTray) last() tray.Model {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.models[len(f.models)-1]
}

// TestAppShowsEachRenderingInItsTray: Start puts the App in its tray with
// the bridge to the UI goroutine, every rendering hands the tray the
// model of the moment (the tray itself changes only what differs), and
// Close takes the App out of the tray.
func TestAppShowsEachRenderingInItsTray(t *testing.T) {
	keyring.MockInit()
	ft := &fakeTray{}
	calls := 0
	a := New(test.NewTempApp(t), Options{
		Store: &settings.Store{Path: filepath.Join(t.TempDir(), "profiles.json")}, Secrets: settings.NewKeyring(), WebAddr: "false",
		Tray: func(run func(func())) (tray.Tray, error) {
			calls++
			ft.run = run
			return ft, nil
		},
	})
	changes := rendered(a)
	a.Start(false)
	if calls != 1 || len(ft.models) != 1 {
		t.Fatalf("after Start: tray made %d times, %d models shown", calls, len(ft.models))
	}
	ran := make(chan struct{})
	ft.run(func() { close(ran) })
	<-ran
	a.toggle(a.profiles.all()[0].ID) // no built-in relay in this App: it fails at once
	waitEnded(t, changes, forwarder.Failed)
	if row := ft.last().Groups[0].Rows[0]; !strings.Contains(row.Label, "error: ") || row.Checked {
		t.Errorf("the failure was not shown: %+v", row)
	}
	a.Close()
	a.Close()
	if ft.closed != 2 {
		t.Errorf("tray closed %d times by two Close calls", ft.closed)
	}
}

// TestAppWithoutATrayShowsItsWindow: when the desktop has no tray to put
// the App in, the settings window opens, so that the App is not left
// running with no way to reach it.
func TestAppWithoutATrayShowsItsWindow(t *testing.T) {
	keyring.MockInit()
	a := New(test.NewTempApp(t), Options{
		Store: &settings.Store{Path: filepath.Join(t.TempDir(), "profiles.json")}, Secrets: settings.NewKeyring(), WebAddr: "false",
		Tray: func(func(func())) (tray.Tray, error) { return nil, errors.New("no tray here") },
	})
	t.Cleanup(a.Close)
	if err := a.profiles.store.Save(settings.Data{Profiles: []settings.Profile{settings.Example()}}); err != nil {
		t.Fatal(err)
	}
	a.Start(false)
	if a.win == nil {
		t.Error("no window without a tray")
	}
}

// TestClosingTheWindowWithoutATrayQuits: without a tray nothing could
// bring the window back, so closing it quits Porthole: at once when nothing
// would be lost, and after asking when the form has unsaved changes. With a
// tray, closing the window only hides it.
func TestClosingTheWindowWithoutATrayQuits(t *testing.T) {
	keyring.MockInit()
	start := func(newTray func(func(func())) (tray.Tray, error)) *App {
		a := New(test.NewTempApp(t), Options{
			Store: &settings.Store{Path: filepath.Join(t.TempDir(), "profiles.json")}, Secrets: settings.NewKeyring(), WebAddr: "false",
			Tray: newTray,
		})
		t.Cleanup(a.Close)
		a.Start(true)
		return a
	}
	quitting := func(a *App) bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.quitting
	}
	stopped := func(a *App) {
		t.Helper()
		select {
		case <-a.stop:
		case <-time.After(10 * time.Second):
			t.Fatal("Porthole did not stop")
		}
	}
	noTray := func(func(func())) (tray.Tray, error) { return nil, errors.New("no tray here") }

	withTray := start(func(func(func())) (tray.Tray, error) { return &fakeTray{}, nil })
	withTray.win.close()
	if quitting(withTray) || withTray.win.confirm != nil {
		t.Error("with a tray, closing the window quit or asked")
	}

	a := start(noTray)
	a.win.form.name.SetText("renamed, not saved")
	a.win.close()
	if a.win.confirm == nil || quitting(a) {
		t.Fatal("closing the window with unsaved changes did not ask first")
	}
	a.win.confirm.Dismiss() // Cancel
	if quitting(a) || a.win.form.name.Text != "renamed, not saved" {
		t.Fatal("Cancel quit or lost the changes")
	}
	a.win.close()
	a.win.confirm.Confirm() // Quit
	stopped(a)

	clean := start(noTray)
	clean.win.close()
	if clean.win.confirm != nil {
		t.Error("asked although nothing would be lost")
	}
	stopped(clean)
}

// TestInvalidSavedProfileFailsAtItsFields: a profile edited by hand into
// something the forwarder refuses fails to start with its problems at the
// form's fields, and the window keeps rendering.
func TestInvalidSavedProfileFailsAtItsFields(t *testing.T) {
	a, store := newTestApp(t)
	p := settings.Example()
	p.Upstream, p.Subdomain = "99999", "Bad_Name"
	if err := store.Save(settings.Data{Profiles: []settings.Profile{p}}); err != nil {
		t.Fatal(err)
	}
	changes := rendered(a)
	a.Start(true)
	a.win.toggleSelected()
	waitEnded(t, changes, forwarder.Failed)
	a.refresh() // renders the same failure again
	f := a.win.form
	if l := f.errs[settings.FieldSubdomain]; !l.Visible() || !strings.Contains(l.Text, "lowercase") {
		t.Errorf("subdomain field shows %v %q", l.Visible(), l.Text)
	}
	if !strings.Contains(f.normalized.Text, "out of range") {
		t.Errorf("upstream line shows %q", f.normalized.Text)
	}
	if item := trayItem(t, a, p.Name); !strings.Contains(item.Label, "error: Subdomain: ") {
		t.Errorf("tray item %q", item.Label)
	}
}

// TestRelayRefusalIsShownAtItsField: when the relay refuses what a field
// holds (the token, the certificate trust, the remote port), the form says
// so at that field, in plain words, and the status line points there.
func TestRelayRefusalIsShownAtItsField(t *testing.T) {
	rc := tt.RelayConfig(t)
	rc.Tokens, rc.NoAuth = []relay.Token{{Secret: "right"}}, false
	rc.TCPPorts = relay.PortRange{Lo: 40100, Hi: 40101}
	srv := tt.StartRelay(t, rc)
	for _, c := range []struct {
		name  string
		edit  func(*settings.Profile) (token string)
		field settings.Field
		want  string
	}{
		{"token", func(p *settings.Profile) string { return "wrong" }, settings.FieldToken,
			"Authentication failed. Check the token and type it again."},
		{"fingerprint", func(p *settings.Profile) string {
			p.RelayFingerprint = strings.Repeat("ab", 32)
			return "right"
		}, settings.FieldTrust, "The relay's certificate is not trusted (fingerprint mismatch: relay presented " + srv.Fingerprint()},
		{"remote port", func(p *settings.Profile) string {
			p.Type, p.Subdomain, p.RemotePort = wire.ProtoTCP, "", 80
			return "right"
		}, settings.FieldRemotePort, "Port 80 is outside the relay's range 40100-40101."},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, _ := newTestApp(t)
			changes := rendered(a)
			a.Start(true)
			p, _ := a.profiles.get(a.win.selected)
			p.BuiltinRelay, p.RelayAddr, p.RelayFingerprint = false, srv.AgentAddr(), srv.Fingerprint()
			token := c.edit(&p)
			if err := a.saveProfile(p, token, ""); err != nil {
				t.Fatal(err)
			}
			a.win.selectProfile(p.ID)
			a.Wait()
			a.win.toggleSelected()
			waitEnded(t, changes, forwarder.Failed)
			l := a.win.form.errs[c.field]
			if !l.Visible() || !strings.HasPrefix(l.Text, c.want) {
				t.Errorf("%s field shows %v %q, want %q", c.field, l.Visible(), l.Text, c.want)
			}
			// The status line points at the field rather than repeat it raw.
			if want := p.Name + ": stopped with an error; see " + c.field.Label() + "."; a.win.status.Text != want {
				t.Errorf("status line %q, want %q", a.win.status.Text, want)
			}
		})
	}
}

// TestAdHocTunnelShowsInTheTray: a tunnel started over the agent API that
// is no saved profile is public all the same, so the tray lists it while
// it runs, checked, and a click stops it; the window, which edits saved
// profiles, does not list it.
func TestAdHocTunnelShowsInTheTray(t *testing.T) {
	keyring.MockInit()
	a := New(test.NewTempApp(t), Options{
		Store:      &settings.Store{Path: filepath.Join(t.TempDir(), "profiles.json")},
		Secrets:    settings.NewKeyring(),
		WebAddr:    "127.0.0.1:0",
		LocalRelay: &engine.LocalRelay{StateDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0", Logger: tt.Logger(t)},
	})
	t.Cleanup(a.Close)
	changes := rendered(a)
	a.Start(true)
	tun, err := a.engine.API(a.profiles.all).StartTunnel(t.Context(), inspect.TunnelRequest{Name: "hook", Addr: "8000", Proto: "http"})
	if err != nil {
		t.Fatal(err)
	}
	waitSettled(t, changes)
	item := trayItem(t, a, "hook (agent API)")
	if !item.Checked || !strings.Contains(item.Label, "online at "+tun.PublicURLs[0]) {
		t.Errorf("tray item %q checked=%v", item.Label, item.Checked)
	}
	if len(a.win.items) != 1 {
		t.Errorf("the window lists %d items, want the one profile", len(a.win.items))
	}
	item.Action()
	waitEnded(t, changes, forwarder.Stopped)
	for _, it := range a.menu(a.items()).Fyne().Items {
		if strings.HasPrefix(it.Label, "hook") {
			t.Errorf("a stopped ad-hoc tunnel stays in the tray: %q", it.Label)
		}
	}
}
