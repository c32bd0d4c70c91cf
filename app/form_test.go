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

// TestTrustedRelayNeedsNoFingerprintOrCA: a remote relay with a publicly
// trusted certificate is entered as it is usually pasted, a URL, with the
// system roots (the default trust) and no CA file or fingerprint; it is
// saved as host:port and maps to a forwarder that trusts the system roots.
func TestTrustedRelayNeedsNoFingerprintOrCA(t *testing.T) {
	a, store := newTestApp(t)
	a.Start(true)
	f := a.win.form
	f.relayMode.SetSelected(relayRemote)
	test.Type(f.relayAddr, "https://tunnels.example.test/")
	test.Type(f.token, "tok-trusted")
	if f.trust.Selected != trustSystem {
		t.Errorf("trust for a new remote relay: %q, want the system roots", f.trust.Selected)
	}
	if !f.relayCA.Disabled() || !f.fingerprint.Disabled() {
		t.Error("the CA file and fingerprint fields ask for input with the system roots")
	}
	if err := save(t, a.win); err != nil {
		t.Fatalf("save: %v", err)
	}
	d, err := store.Load()
	if err != nil || len(d.Profiles) != 1 {
		t.Fatalf("stored: %+v, %v", d, err)
	}
	p := d.Profiles[0]
	if p.RelayAddr != "tunnels.example.test:7835" || p.RelayCAFile != "" || p.RelayFingerprint != "" {
		t.Errorf("saved relay %q, CA %q, fingerprint %q", p.RelayAddr, p.RelayCAFile, p.RelayFingerprint)
	}
	cfg, err := p.Config(settings.Secrets{Token: "tok-trusted"}, settings.Endpoint{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil || cfg.RelayCAFile != "" || cfg.RelayFingerprint != "" {
		t.Errorf("forwarder config: %v (CA %q, fingerprint %q)", err, cfg.RelayCAFile, cfg.RelayFingerprint)
	}
}

// TestEditingAFieldClearsItsProblem: a problem shown at a field goes away
// as soon as the field is edited, and the problems of other fields stay.
func TestEditingAFieldClearsItsProblem(t *testing.T) {
	a, _ := newTestApp(t)
	a.Start(true)
	other, err := a.addProfile(settings.Example(), "")
	if err != nil {
		t.Fatal(err)
	}
	f := a.win.form
	f.name.SetText(other.Name)
	f.subdomain.SetText("Not_Valid")
	if err := save(t, a.win); err == nil {
		t.Fatal("saved a taken name")
	}
	name, sub := f.errs[settings.FieldName], f.errs[settings.FieldSubdomain]
	if !name.Visible() || !sub.Visible() {
		t.Fatalf("problems shown: name %v, subdomain %v", name.Visible(), sub.Visible())
	}
	test.Type(f.name, " renamed")
	if name.Visible() || !sub.Visible() {
		t.Errorf("after editing the name: name problem shown %v, subdomain problem shown %v", name.Visible(), sub.Visible())
	}
}
