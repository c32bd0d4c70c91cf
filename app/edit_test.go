package app

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
	"github.com/zalando/go-keyring"

	"porthole/settings"
)

// TestConcurrentEditsKeepEveryProfile adds, duplicates and deletes
// profiles from many goroutines at once: every change lands, on screen and
// on disk, and no two profiles share a name.
func TestConcurrentEditsKeepEveryProfile(t *testing.T) {
	a, store := newTestApp(t)
	a.Start(true)
	first := a.profiles.all()[0]
	var doomed []string
	for range 4 {
		p, err := a.addProfile(settings.Example(), "")
		if err != nil {
			t.Fatal(err)
		}
		doomed = append(doomed, p.ID)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 8 {
		wg.Go(func() {
			_, err := a.addProfile(settings.Example(), "")
			errs <- err
		})
		wg.Go(func() {
			dup := first
			dup.Name += " copy"
			_, err := a.addProfile(dup, first.ID)
			errs <- err
		})
		if i < len(doomed) {
			wg.Go(func() { errs <- a.deleteProfile(doomed[i]) })
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	const want = 1 + 8 + 8 // the first, eight added, eight copies
	d, err := store.Load()
	if err != nil || len(d.Profiles) != want {
		t.Fatalf("on disk: %d profiles, %v; want %d", len(d.Profiles), err, want)
	}
	names := map[string]bool{}
	for _, p := range d.Profiles {
		if names[p.Name] {
			t.Errorf("two profiles are named %q", p.Name)
		}
		names[p.Name] = true
		if slices.Contains(doomed, p.ID) {
			t.Errorf("deleted profile %q is back", p.Name)
		}
	}
	a.refresh()
	if len(a.win.items) != want || a.win.list.Length() != want {
		t.Errorf("on screen: %d profiles, want %d", len(a.win.items), want)
	}
	if !slices.Equal(a.profiles.all(), d.Profiles) {
		t.Error("the app's list and the file differ")
	}
}

// blockingSecrets holds every Get until release is closed, and says on
// started that one began.
type blockingSecrets struct {
	*settings.Keyring
	started chan struct{}
	release chan struct{}
}

func (b *blockingSecrets) Get(id string, kind settings.SecretKind) (string, error) {
	select {
	case b.started <- struct{}{}:
	default:
	}
	<-b.release
	return b.Keyring.Get(id, kind)
}

// TestListButtonsWaitForAPendingChange: while a change to the profiles is
// being saved, the buttons that change them are disabled.
func TestListButtonsWaitForAPendingChange(t *testing.T) {
	a, _ := newTestApp(t)
	a.Start(true)
	p := a.profiles.all()[0]
	p.BuiltinRelay, p.RelayAddr = false, "relay.example:7835"
	if err := a.saveProfile(p, "tok", ""); err != nil {
		t.Fatal(err)
	}
	sw := a.win
	sw.selectProfile(p.ID)
	a.Wait()
	blocking := &blockingSecrets{Keyring: settings.NewKeyring(), started: make(chan struct{}, 1), release: make(chan struct{})}
	a.secrets = blocking

	sw.saved = make(chan error, 1)
	test.Tap(sw.dup) // copying the token waits on the keyring
	<-blocking.started
	for name, b := range map[string]interface{ Disabled() bool }{"Add": sw.add, "Duplicate": sw.dup, "Delete": sw.remove, "Save": sw.save} {
		if !b.Disabled() {
			t.Errorf("%s is enabled while a change is pending", name)
		}
	}
	close(blocking.release)
	if err := <-sw.saved; err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string]interface{ Disabled() bool }{"Add": sw.add, "Duplicate": sw.dup, "Delete": sw.remove, "Save": sw.save} {
		if b.Disabled() {
			t.Errorf("%s stays disabled after the change", name)
		}
	}
	if n := len(a.profiles.all()); n != 2 {
		t.Errorf("%d profiles after duplicating", n)
	}
}

// TestDuplicateReportsKeyringErrors: a duplicate whose secrets cannot be
// copied is not made, and the window says why.
func TestDuplicateReportsKeyringErrors(t *testing.T) {
	a, store := newTestApp(t)
	a.Start(true)
	p := a.profiles.all()[0]
	p.BasicAuthUser = "alice"
	if err := a.saveProfile(p, "", "pw"); err != nil {
		t.Fatal(err)
	}
	sw := a.win
	sw.selectProfile(p.ID)
	a.Wait()
	keyring.Delete(settings.KeyringService, p.ID+"/basic-auth")

	sw.saved = make(chan error, 1)
	test.Tap(sw.dup)
	err := <-sw.saved
	if !errors.Is(err, settings.ErrNoSecret) || !strings.HasPrefix(sw.status.Text, "Not duplicated: its secrets could not be copied: the basic-auth password is not in the keyring") {
		t.Errorf("duplicate = %v, status %q", err, sw.status.Text)
	}
	if d, _ := store.Load(); len(d.Profiles) != 1 {
		t.Errorf("%d profiles saved, want the original alone", len(d.Profiles))
	}

	// A keyring that fails half way leaves no copied secret behind.
	p.HasToken, p.BuiltinRelay, p.RelayAddr = true, false, "relay.example:7835"
	if err := a.saveProfile(p, "tok", "pw"); err != nil {
		t.Fatal(err)
	}
	fail := &failSecond{Keyring: settings.NewKeyring()}
	a.secrets = fail
	if _, err := a.addProfile(p, p.ID); !errors.Is(err, settings.ErrKeyringLocked) {
		t.Errorf("duplicate with a failing keyring = %v", err)
	}
	if len(fail.copied) != 1 {
		t.Fatalf("copied %v before the failure, want one secret", fail.copied)
	}
	for _, account := range fail.copied {
		if _, err := keyring.Get(settings.KeyringService, account); !errors.Is(err, keyring.ErrNotFound) {
			t.Errorf("the copy's secret %s stays in the keyring", account)
		}
	}
	if d, _ := store.Load(); len(d.Profiles) != 1 {
		t.Errorf("%d profiles saved, want the original alone", len(d.Profiles))
	}
}

// failSecond fails the second Set it sees, and records the ones it made.
type failSecond struct {
	*settings.Keyring
	sets   int
	copied []string
}

func (f *failSecond) Set(id string, kind settings.SecretKind, v string) error {
	if f.sets++; f.sets == 2 {
		return settings.ErrKeyringLocked
	}
	f.copied = append(f.copied, id+"/"+string(kind))
	return f.Keyring.Set(id, kind, v)
}

// TestDeleteAsksFirst: Delete asks, with buttons that say what they do;
// Cancel keeps the profile, and Delete removes it.
func TestDeleteAsksFirst(t *testing.T) {
	a, _ := newTestApp(t)
	a.Start(true)
	sw := a.win
	p := a.profiles.all()[0]

	test.Tap(sw.remove)
	if sw.confirm == nil {
		t.Fatal("Delete did not ask")
	}
	var buttons []string
	for _, o := range test.LaidOutObjects(sw.w.Canvas().Overlays().Top()) {
		if b, ok := o.(*widget.Button); ok {
			buttons = append(buttons, b.Text)
		}
	}
	if !slices.Contains(buttons, "Delete") || !slices.Contains(buttons, "Cancel") {
		t.Errorf("the question's buttons: %q", buttons)
	}
	sw.confirm.Dismiss()
	if _, ok := a.profiles.get(p.ID); !ok {
		t.Fatal("Cancel deleted the profile")
	}

	test.Tap(sw.remove)
	sw.saved = make(chan error, 1)
	sw.confirm.Confirm()
	if err := <-sw.saved; err != nil {
		t.Fatal(err)
	}
	if _, ok := a.profiles.get(p.ID); ok {
		t.Error("the profile is still there")
	}
}
