package app

import (
	"testing"
	"time"

	"fyne.io/fyne/v2/test"

	"porthole/engine"
	"porthole/forwarder"
	tt "porthole/internal/tunneltest"
	"porthole/settings"
)

// waitSettled waits for a rendered change to Online, or to the end of the
// run, and returns it.
func waitSettled(t *testing.T, ch chan engine.Status) engine.Status {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case s := <-ch:
			if s.Phase == forwarder.Online || !s.Running {
				return s
			}
		case <-timeout:
			t.Fatal("the profile neither came online nor stopped")
		}
	}
}

// TestStartRunsWhatTheFormShows: Start on a form with unsaved changes
// saves them first, so the tunnel that runs is the one on screen.
func TestStartRunsWhatTheFormShows(t *testing.T) {
	srv := tt.StartRelay(t, tt.RelayConfig(t))
	a, store := newTestApp(t) // no built-in relay: the saved example cannot start
	changes := rendered(a)
	a.Start(true)
	sw, f := a.win, a.win.form
	f.relayMode.SetSelected(relayRemote)
	test.Type(f.relayAddr, srv.AgentAddr())
	f.trust.SetSelected(trustFingerprint)
	test.Type(f.fingerprint, srv.Fingerprint())

	sw.saved = make(chan error, 1)
	test.Tap(sw.toggle)
	if s := waitSettled(t, changes); s.Phase != forwarder.Online {
		t.Fatalf("started as %v (%v), not with the form's relay", s.Phase, s.Err)
	}
	if err := <-sw.saved; err != nil {
		t.Fatal(err)
	}
	d, _ := store.Load()
	if p := d.Profiles[0]; p.BuiltinRelay || p.RelayAddr != srv.AgentAddr() {
		t.Errorf("saved profile %+v", p)
	}
	if f.dirty() || sw.toggle.Text != "Stop" {
		t.Errorf("after starting: dirty %v, button %q", f.dirty(), sw.toggle.Text)
	}
}

// TestSelectingAnotherProfileKeepsUnsavedEdits: choosing another profile
// while the form has unsaved changes asks first; "Keep editing" keeps the
// changes and the selection, "Discard" moves on.
func TestSelectingAnotherProfileKeepsUnsavedEdits(t *testing.T) {
	a, _ := newTestApp(t)
	a.Start(true)
	sw, f := a.win, a.win.form
	first := sw.selected
	other, err := a.addProfile(settings.Example(), "")
	if err != nil {
		t.Fatal(err)
	}
	a.refresh()

	// Nothing changed: selecting moves on at once.
	sw.list.Select(1)
	if sw.confirm != nil || sw.selected != other.ID {
		t.Fatalf("an unchanged form asked, or did not move on (selected %q)", sw.selected)
	}
	sw.list.Select(0)
	if sw.selected != first {
		t.Fatal("did not move back")
	}

	f.name.SetText("renamed, not saved")
	sw.list.Select(1)
	if sw.confirm == nil {
		t.Fatal("no question before discarding the changes")
	}
	sw.confirm.Dismiss() // Keep editing
	if sw.selected != first || f.name.Text != "renamed, not saved" || !f.dirty() {
		t.Errorf("after Keep editing: selected %q, name %q", sw.selected, f.name.Text)
	}
	sw.list.Select(1)
	sw.confirm.Confirm() // Discard
	if sw.selected != other.ID || f.name.Text != other.Name || f.dirty() {
		t.Errorf("after Discard: selected %q, name %q", sw.selected, f.name.Text)
	}
	if p, _ := a.profiles.get(first); p.Name == "renamed, not saved" {
		t.Error("the discarded change was saved")
	}
}
