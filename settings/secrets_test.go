package settings

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zalando/go-keyring"

	"porthole/internal/desktoptest"
)

// TestRealKeyring runs against gnome-keyring's Secret Service on a private
// session bus.
func TestRealKeyring(t *testing.T) {
	if !desktoptest.IsChild() {
		bus := desktoptest.StartBus(t)
		desktoptest.StartKeyring(t, bus, true)
		desktoptest.RunChild(t, "DBUS_SESSION_BUS_ADDRESS="+bus)
		return
	}
	k := NewKeyring()
	p := valid()
	p.BuiltinRelay, p.RelayAddr, p.BasicAuthUser, p.HasToken = false, "relay:1", "alice", true
	if _, err := k.Get(p.ID, SecretToken); !errors.Is(err, ErrNoSecret) {
		t.Fatalf("get before set: %v", err)
	}
	if err := k.Set(p.ID, SecretToken, "first-token"); err != nil {
		t.Fatal(err)
	}
	if err := k.Set(p.ID, SecretToken, "second-token"); err != nil {
		t.Fatal(err)
	}
	if err := k.Set(p.ID, SecretBasicAuth, "pw"); err != nil {
		t.Fatal(err)
	}
	s, err := k.Load(p)
	if err != nil || s.Token != "second-token" || s.BasicAuthPassword != "pw" {
		t.Fatalf("load after update: %+v, %v", s, err)
	}
	// Under the documented service and account, for other tools to find.
	if v, err := keyring.Get(KeyringService, p.ID+"/token"); err != nil || v != "second-token" {
		t.Errorf("raw keyring entry: %q, %v", v, err)
	}
	if err := k.Delete(p.ID, SecretToken); err != nil {
		t.Fatal(err)
	}
	if err := k.Delete(p.ID, SecretToken); err != nil {
		t.Errorf("deleting a missing secret: %v", err)
	}
	if _, err := k.Get(p.ID, SecretToken); !errors.Is(err, ErrNoSecret) {
		t.Errorf("get after delete: %v", err)
	}
	// A secret the profile says it has and the keyring lacks fails the
	// load, never reads as empty.
	_, err = k.Load(p)
	var se *SecretError
	if !errors.As(err, &se) || se.Kind != SecretToken || !errors.Is(err, ErrNoSecret) {
		t.Errorf("load without the token: %v", err)
	}
	p.HasToken = false
	if s, err := k.Load(p); err != nil || s.BasicAuthPassword != "pw" {
		t.Errorf("load of a profile without a token: %+v, %v", s, err)
	}
	k.Delete(p.ID, SecretBasicAuth)
	if _, err := k.Load(p); !errors.As(err, &se) || se.Kind != SecretBasicAuth {
		t.Errorf("load without the basic-auth password: %v", err)
	}
}

// TestKeyringUnavailable has a session bus but no Secret Service on it.
func TestKeyringUnavailable(t *testing.T) {
	if !desktoptest.IsChild() {
		bus := desktoptest.StartBus(t)
		desktoptest.RunChild(t, "DBUS_SESSION_BUS_ADDRESS="+bus)
		return
	}
	k := NewKeyring()
	err := k.Set("p1", SecretToken, "do-not-leak")
	if !errors.Is(err, ErrKeyringUnavailable) || !strings.Contains(err.Error(), "no Secret Service") {
		t.Fatalf("Set = %v, want ErrKeyringUnavailable naming the missing Secret Service", err)
	}
	if strings.Contains(err.Error(), "do-not-leak") {
		t.Errorf("error leaks the secret: %v", err)
	}
	if _, err := k.Get("p1", SecretToken); !errors.Is(err, ErrKeyringUnavailable) {
		t.Errorf("Get = %v", err)
	}
}

// TestKeyringLocked has a Secret Service whose login keyring is locked and
// no one to answer the unlock prompt.
func TestKeyringLocked(t *testing.T) {
	if !desktoptest.IsChild() {
		bus := desktoptest.StartBus(t)
		desktoptest.StartKeyring(t, bus, false)
		desktoptest.RunChild(t, "DBUS_SESSION_BUS_ADDRESS="+bus)
		return
	}
	k := NewKeyring()
	err := k.Set("p1", SecretToken, "value")
	if !errors.Is(err, ErrKeyringLocked) {
		t.Fatalf("Set on a locked keyring = %v, want ErrKeyringLocked", err)
	}
}

// TestKeyringThatNeverAnswers has a Secret Service that blocks every call,
// as one waiting on an unseen unlock prompt does: our call gives up.
func TestKeyringThatNeverAnswers(t *testing.T) {
	if !desktoptest.IsChild() {
		bus := desktoptest.StartBus(t)
		desktoptest.StartSilentSecretService(t, bus)
		desktoptest.RunChild(t, "DBUS_SESSION_BUS_ADDRESS="+bus)
		return
	}
	k := &Keyring{Timeout: 300 * time.Millisecond}
	err := k.Set("p1", SecretToken, "value")
	if !errors.Is(err, ErrKeyringLocked) {
		t.Fatalf("Set on a silent keyring = %v, want ErrKeyringLocked", err)
	}
}

func TestKeyringErrorMapping(t *testing.T) {
	keyring.MockInitWithError(errors.New("org.freedesktop.DBus.Error.ServiceUnknown: The name org.freedesktop.secrets was not provided by any .service files"))
	defer keyring.MockInit()
	k := NewKeyring()
	if _, err := k.Get("p", SecretToken); !errors.Is(err, ErrKeyringUnavailable) {
		t.Errorf("service unknown: %v", err)
	}
	keyring.MockInit()
	if _, err := k.Get("p", SecretToken); !errors.Is(err, ErrNoSecret) {
		t.Errorf("not found: %v", err)
	}
	if err := k.Set("p", SecretToken, strings.Repeat("x", 10)); err != nil {
		t.Errorf("mock set: %v", err)
	}
}
