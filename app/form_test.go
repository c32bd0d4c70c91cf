package app

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"

	"porthole/settings"
)

// TestBadCAFileIsRefusedAtTheForm: a CA file that holds the PEM marker but
// no certificate is refused at its field by the forwarder's own rules, and
// nothing is saved.
func TestBadCAFileIsRefusedAtTheForm(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(fake, []byte("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n"), 0o600)
	for _, c := range []struct {
		name  string
		field settings.Field
		fill  func(f *profileForm)
	}{
		{"relay CA", settings.FieldRelayCA, func(f *profileForm) {
			f.relayMode.SetSelected(relayRemote)
			test.Type(f.relayAddr, "relay.example.com:7835")
			f.trust.SetSelected(trustCAFile)
			test.Type(f.relayCA, fake)
		}},
		{"upstream CA", settings.FieldUpstreamCA, func(f *profileForm) {
			test.Tap(f.verify)
			test.Type(f.upstreamCA, fake)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, store := newTestApp(t)
			a.Start(true)
			before, _ := os.ReadFile(store.Path)
			c.fill(a.win.form)
			err := save(t, a.win)
			var bad settings.Problems
			if !errors.As(err, &bad) || len(bad) != 1 {
				t.Fatalf("save = %v, want one problem", err)
			}
			if l := a.win.form.errs[c.field]; !l.Visible() || !strings.Contains(l.Text, "holds no PEM certificate") {
				t.Errorf("%s field shows %v %q", c.field, l.Visible(), l.Text)
			}
			if after, _ := os.ReadFile(store.Path); string(after) != string(before) {
				t.Error("the profile was saved")
			}
		})
	}
}
