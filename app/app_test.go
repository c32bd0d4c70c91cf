package app

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
	"github.com/zalando/go-keyring"

	tt "porthole/internal/tunneltest"
	"porthole/settings"
	"porthole/wire"
)

// newTestApp starts the app on Fyne's test driver with a temp profile
// store and go-keyring's in-memory provider.
func newTestApp(t *testing.T) (*App, *settings.Store) {
	t.Helper()
	keyring.MockInit()
	store := &settings.Store{Path: filepath.Join(t.TempDir(), "porthole", "profiles.json")}
	a := New(test.NewTempApp(t), Options{Store: store, Secrets: settings.NewKeyring(), WebAddr: "127.0.0.1:0"})
	t.Cleanup(a.Close) // no goroutine or keyring call may outlive the test
	return a, store
}

func save(t *testing.T, sw *settingsWindow) error {
	t.Helper()
	sw.saved = make(chan error, 1)
	test.Tap(sw.save)
	return <-sw.saved
}

func TestFirstStartOffersTheExample(t *testing.T) {
	a, store := newTestApp(t)
	a.Start(false)
	if a.win == nil {
		t.Fatal("the settings window did not open on first start")
	}
	d, err := store.Load()
	if err != nil || len(d.Profiles) != 1 {
		t.Fatalf("stored: %+v, %v", d, err)
	}
	p := d.Profiles[0]
	if !p.BuiltinRelay || p.Upstream != "localhost:8000" || p.Type != wire.ProtoHTTP {
		t.Errorf("example profile: %+v", p)
	}
	f := a.win.form
	if f.name.Text != p.Name || f.relayMode.Selected != relayBuiltin || f.normalized.Text != "→ http://localhost:8000" {
		t.Errorf("form shows %q %q %q", f.name.Text, f.relayMode.Selected, f.normalized.Text)
	}
	if !f.relayAddr.Disabled() || !f.token.Disabled() {
		t.Error("relay fields are enabled for the built-in relay")
	}
}

func TestSaveFromTheForm(t *testing.T) {
	a, store := newTestApp(t)
	a.Start(true)
	sw := a.win
	f := sw.form

	f.name.SetText("My web app (remote)")
	f.relayMode.SetSelected(relayRemote)
	if f.relayAddr.Disabled() || !f.token.Password {
		t.Fatal("remote relay fields are not ready for input")
	}
	test.Type(f.relayAddr, "relay.example.com:7835")
	test.Type(f.token, "tok-123-secret")
	f.trust.SetSelected(trustFingerprint)
	test.Type(f.fingerprint, strings.Repeat("ab", 32))
	f.upstream.SetText("")
	test.Type(f.upstream, "443")
	if f.normalized.Text != "→ https://localhost:443" {
		t.Errorf("live normalized upstream = %q", f.normalized.Text)
	}
	test.Tap(f.http2)
	test.Tap(f.rewrite)
	test.Tap(f.startWithApp)

	if err := save(t, sw); err != nil {
		t.Fatalf("save: %v", err)
	}
	d, err := store.Load()
	if err != nil || len(d.Profiles) != 1 {
		t.Fatalf("stored: %+v, %v", d, err)
	}
	p := d.Profiles[0]
	want := settings.Profile{
		ID: p.ID, Name: "My web app (remote)", RelayAddr: "relay.example.com:7835",
		RelayFingerprint: strings.Repeat("ab", 32), HasToken: true,
		Type: wire.ProtoHTTP, Subdomain: "myapp", Upstream: "443",
		UpstreamHTTP2: true, RewriteHost: true, StartWithApp: true,
	}
	if p != want {
		t.Errorf("saved profile:\n%+v\nwant\n%+v", p, want)
	}
	if tok, err := keyring.Get(settings.KeyringService, p.ID+"/token"); err != nil || tok != "tok-123-secret" {
		t.Errorf("keyring token %q, %v", tok, err)
	}
	raw, _ := os.ReadFile(store.Path)
	if strings.Contains(string(raw), "tok-123-secret") {
		t.Error("the token reached the profiles file")
	}
	if f.token.Text != "" {
		t.Error("the token stays in the field after saving")
	}
}

func TestInvalidInputIsShownAndNotSaved(t *testing.T) {
	a, store := newTestApp(t)
	a.Start(true)
	sw, f := a.win, a.win.form
	before, _ := os.ReadFile(store.Path)

	f.upstream.SetText("99999")
	if f.normalized.Text != "Port 99999 is out of range 1-65535." {
		t.Errorf("live feedback = %q", f.normalized.Text)
	}
	f.subdomain.SetText("Not_Valid")
	err := save(t, sw)
	var bad settings.Problems
	if !errors.As(err, &bad) || len(bad) != 2 {
		t.Fatalf("save = %v, want two problems", err)
	}
	if l := f.errs[settings.FieldSubdomain]; !l.Visible() || !strings.Contains(l.Text, "lowercase") {
		t.Errorf("subdomain error shown=%v %q", l.Visible(), l.Text)
	}
	if l := f.normalized; l.Importance != widget.DangerImportance || l.Text != "Port 99999 is out of range 1-65535." {
		t.Errorf("upstream problem %q (importance %v)", l.Text, l.Importance)
	}
	if f.errs[settings.FieldName].Visible() {
		t.Error("an error shows at a valid field")
	}
	after, _ := os.ReadFile(store.Path)
	if string(after) != string(before) {
		t.Error("an invalid profile was saved")
	}
	// Fixing the input clears the errors and saves.
	f.upstream.SetText("8080")
	f.subdomain.SetText("valid")
	if err := save(t, sw); err != nil {
		t.Fatalf("save after fixing: %v", err)
	}
	if f.normalized.Text != "→ http://localhost:8080" || f.errs[settings.FieldSubdomain].Visible() {
		t.Errorf("after fixing: %q, subdomain error shown %v", f.normalized.Text, f.errs[settings.FieldSubdomain].Visible())
	}
}

func TestKeyringUnavailableAtTheTokenField(t *testing.T) {
	a, store := newTestApp(t)
	a.Start(true)
	sw, f := a.win, a.win.form
	before, _ := os.ReadFile(store.Path)
	a.Wait()
	keyring.MockInitWithError(errors.New("The name org.freedesktop.secrets was not provided by any .service files"))
	defer keyring.MockInit()

	f.relayMode.SetSelected(relayRemote)
	test.Type(f.relayAddr, "relay.example.com:7835")
	test.Type(f.token, "never-in-plain-text")
	err := save(t, sw)
	if !errors.Is(err, settings.ErrKeyringUnavailable) {
		t.Fatalf("save = %v", err)
	}
	l := f.errs[settings.FieldToken]
	if !l.Visible() || !strings.HasPrefix(l.Text, "The system keyring is not available") || strings.Contains(l.Text, "never-in-plain-text") {
		t.Errorf("token field error shown=%v %q", l.Visible(), l.Text)
	}
	after, _ := os.ReadFile(store.Path)
	if string(after) != string(before) || strings.Contains(string(after), "never-in-plain-text") {
		t.Error("the profile was saved without its token, or with it in plain text")
	}
}

func TestCorruptProfilesFileIsKeptAsideAndReported(t *testing.T) {
	a, store := newTestApp(t)
	os.MkdirAll(filepath.Dir(store.Path), 0o700)
	os.WriteFile(store.Path, []byte("{broken"), 0o600)
	a.Start(false)
	if a.win == nil || !a.win.notice.Visible() || !strings.Contains(a.win.notice.Text, ".corrupt-") {
		t.Fatalf("no notice about the corrupt file")
	}
	if !strings.HasPrefix(a.win.notice.Text, "The profiles file ") || a.win.add.Disabled() {
		t.Errorf("notice %q, Add disabled %v", a.win.notice.Text, a.win.add.Disabled())
	}
	matches, _ := filepath.Glob(store.Path + ".corrupt-*")
	if len(matches) != 1 {
		t.Fatalf("backup files: %v", matches)
	}
	if kept, _ := os.ReadFile(matches[0]); string(kept) != "{broken" || !strings.Contains(a.win.notice.Text, matches[0]) {
		t.Errorf("backup %q, notice %q", kept, a.win.notice.Text)
	}
	// The app starts afresh and can save.
	if _, err := a.addProfile(settings.Example(), ""); err != nil {
		t.Errorf("add after quarantine: %v", err)
	}
}

// TestUnusableProfilesFileIsLeftAlone: a file from a newer Porthole, or
// one that cannot be read, is reported, never moved, and never written.
func TestUnusableProfilesFileIsLeftAlone(t *testing.T) {
	for name, content := range map[string]string{
		"newer version":       `{"version": 99, "profiles": [{"id": "x", "name": "from the future"}]}`,
		"unknown tunnel type": `{"version": 1, "profiles": [{"id": "x", "name": "q", "type": "quic", "upstream": "1"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			a, store := newTestApp(t)
			os.MkdirAll(filepath.Dir(store.Path), 0o700)
			os.WriteFile(store.Path, []byte(content), 0o600)
			a.Start(false)
			if a.win == nil || !a.win.notice.Visible() || !strings.Contains(a.win.notice.Text, "leaves it as it is") {
				t.Fatalf("no notice about the unusable file")
			}
			if !strings.HasPrefix(a.win.notice.Text, "The profiles file ") {
				t.Errorf("notice %q", a.win.notice.Text)
			}
			// Nothing offers a change that could not be saved.
			for name, b := range map[string]interface{ Disabled() bool }{"Add": a.win.add, "Duplicate": a.win.dup, "Delete": a.win.remove, "Save": a.win.save} {
				if !b.Disabled() {
					t.Errorf("%s is enabled for a file Porthole leaves alone", name)
				}
			}
			if _, err := a.addProfile(settings.Example(), ""); !errors.Is(err, errReadOnly) {
				t.Errorf("add = %v, want it refused", err)
			}
			if raw, _ := os.ReadFile(store.Path); string(raw) != content {
				t.Errorf("the file changed: %s", raw)
			}
			if entries, _ := os.ReadDir(filepath.Dir(store.Path)); len(entries) != 1 {
				t.Errorf("the directory holds %d entries", len(entries))
			}
		})
	}
}

func TestAddDuplicateDelete(t *testing.T) {
	a, store := newTestApp(t)
	a.Start(true)
	sw := a.win
	names := func() []string {
		d, _ := store.Load()
		var n []string
		for _, p := range d.Profiles {
			n = append(n, p.Name)
		}
		return n
	}
	p, _ := a.addProfile(settings.Example(), "")
	if p.Name != "My web app 2" {
		t.Errorf("added profile name %q", p.Name)
	}
	orig, _ := a.profiles.get(p.ID)
	orig.HasToken = true
	a.secrets.Set(p.ID, settings.SecretToken, "shared-token")
	a.saveProfile(orig, "", "")
	orig.Name += " copy"
	dup, err := a.addProfile(orig, orig.ID)
	if err != nil || dup.Name != "My web app 2 copy" || !dup.HasToken {
		t.Fatalf("duplicate: %+v, %v", dup, err)
	}
	if tok, _ := a.secrets.Get(dup.ID, settings.SecretToken); tok != "shared-token" {
		t.Errorf("duplicated token %q", tok)
	}
	if err := a.deleteProfile(dup.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.secrets.Get(dup.ID, settings.SecretToken); !errors.Is(err, settings.ErrNoSecret) {
		t.Errorf("deleted profile's token: %v", err)
	}
	if got := strings.Join(names(), ","); got != "My web app,My web app 2" {
		t.Errorf("profiles after delete: %s", got)
	}
	sw.refresh(a.items())
	if len(sw.items) != 2 {
		t.Errorf("window lists %d profiles", len(sw.items))
	}
}

// TestCloseLeavesNothingRunning: an App started and closed leaves no
// goroutine behind, the countdown included.
func TestCloseLeavesNothingRunning(t *testing.T) {
	keyring.MockInit()
	fy := test.NewTempApp(t)
	base := runtime.NumGoroutine()
	store := &settings.Store{Path: filepath.Join(t.TempDir(), "profiles.json")}
	a := New(fy, Options{Store: store, Secrets: settings.NewKeyring(), WebAddr: "127.0.0.1:0"})
	a.Start(true)
	a.Close()
	tt.WaitGoroutines(t, base)
}
