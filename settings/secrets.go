package settings

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zalando/go-keyring"
)

// KeyringService is the keyring service name every Porthole secret is kept under.
const KeyringService = "porthole"

// Errors from the keyring, mapped from the platform's raw messages.
var (
	// ErrKeyringUnavailable means there is no usable keyring: no Secret
	// Service on the session bus, no session bus, or it refused the call.
	ErrKeyringUnavailable = errors.New("the system keyring is not available")
	// ErrKeyringLocked means the keyring did not answer in time, which is
	// what a locked keyring waiting for an unlock prompt looks like.
	ErrKeyringLocked = errors.New("the system keyring did not answer (is it locked?)")
	// ErrNoSecret means the keyring has no such secret.
	ErrNoSecret = errors.New("no secret saved")
)

// SecretKind names one of a profile's secrets.
type SecretKind string

// Secret kinds.
const (
	SecretToken     SecretKind = "token"
	SecretBasicAuth SecretKind = "basic-auth"
)

// Keyring keeps secrets in the OS keyring. Every call gives up after
// Timeout, because a locked Secret Service can block until a person
// answers an unlock prompt. Calls must not run on a UI goroutine.
type Keyring struct {
	Timeout time.Duration
}

// NewKeyring returns a Keyring with a 5 second timeout.
func NewKeyring() *Keyring { return &Keyring{Timeout: 5 * time.Second} }

func account(profileID string, kind SecretKind) string { return profileID + "/" + string(kind) }

// Get returns a secret, or ErrNoSecret.
func (k *Keyring) Get(profileID string, kind SecretKind) (string, error) {
	var v string
	err := k.call(func() error {
		var err error
		v, err = keyring.Get(KeyringService, account(profileID, kind))
		return err
	})
	return v, err
}

// Set stores a secret, replacing any earlier one.
func (k *Keyring) Set(profileID string, kind SecretKind, value string) error {
	return k.call(func() error { return keyring.Set(KeyringService, account(profileID, kind), value) })
}

// Delete removes a secret; a missing one is not an error.
func (k *Keyring) Delete(profileID string, kind SecretKind) error {
	err := k.call(func() error { return keyring.Delete(KeyringService, account(profileID, kind)) })
	if errors.Is(err, ErrNoSecret) {
		return nil
	}
	return err
}

// SecretError is a secret a profile says it has that cannot be had: not in
// the keyring (Err is ErrNoSecret), or the keyring failed (Err is
// ErrKeyringUnavailable or ErrKeyringLocked). The profile does not start.
type SecretError struct {
	Kind SecretKind
	Err  error
}

func (e *SecretError) Error() string {
	what := "the relay token"
	if e.Kind == SecretBasicAuth {
		what = "the basic-auth password"
	}
	if errors.Is(e.Err, ErrNoSecret) {
		return what + " is not in the keyring: enter it again in Settings"
	}
	return what + " could not be read: " + e.Err.Error()
}

func (e *SecretError) Unwrap() error { return e.Err }

// Field is the profile field the secret is entered at.
func (e *SecretError) Field() Field {
	if e.Kind == SecretBasicAuth {
		return FieldBasicAuthPwd
	}
	return FieldToken
}

// Load reads the secrets the profile says it has: the relay token if it
// has one (and a remote relay), the basic-auth password if it has a user.
// A missing one is a *SecretError, never an empty secret.
func (k *Keyring) Load(p Profile) (Secrets, error) {
	var s Secrets
	var err error
	if !p.BuiltinRelay && p.HasToken {
		if s.Token, err = k.Get(p.ID, SecretToken); err != nil {
			return Secrets{}, &SecretError{Kind: SecretToken, Err: err}
		}
	}
	if p.BasicAuthUser != "" {
		if s.BasicAuthPassword, err = k.Get(p.ID, SecretBasicAuth); err != nil {
			return Secrets{}, &SecretError{Kind: SecretBasicAuth, Err: err}
		}
	}
	return s, nil
}

// call runs f with the timeout and maps its error.
func (k *Keyring) call(f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	t := time.NewTimer(k.Timeout)
	defer t.Stop()
	select {
	case err := <-done:
		return mapKeyringError(err)
	case <-t.C:
		// The call stays blocked in the background until the keyring answers.
		return ErrKeyringLocked
	}
}

// mapKeyringError turns go-keyring's raw errors into ours. The raw D-Bus
// text carries no secret, but is kept short and plain.
func mapKeyringError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, keyring.ErrNotFound):
		return ErrNoSecret
	case errors.Is(err, keyring.ErrSetDataTooBig):
		return fmt.Errorf("%w: the secret is too long", ErrKeyringUnavailable)
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "org.freedesktop.secrets"), strings.Contains(msg, "ServiceUnknown"):
		return fmt.Errorf("%w: no Secret Service is running (install and start gnome-keyring or KWallet)", ErrKeyringUnavailable)
	case strings.Contains(msg, "unlock"), strings.Contains(msg, "locked"), strings.Contains(msg, "dismissed"), strings.Contains(msg, "Prompt"):
		return ErrKeyringLocked
	case strings.Contains(msg, "DBUS_SESSION_BUS_ADDRESS"), strings.Contains(msg, "autolaunch"), strings.Contains(msg, "dbus"):
		return fmt.Errorf("%w: no D-Bus session", ErrKeyringUnavailable)
	}
	return fmt.Errorf("%w: %s", ErrKeyringUnavailable, msg)
}
