package app

import (
	"errors"
	"fmt"
	"slices"

	"porthole/settings"
)

// The changes a person makes to the profiles. Each runs off the UI
// goroutine and goes through profileList.change, so that concurrent changes
// all land, on screen and on disk.

// saveProfile stores a profile's secrets in the keyring and the profile in
// the store, replacing the saved one with its ID, then restarts it if it
// runs. Empty secrets leave the saved ones as they are. A *SecretError is a
// keyring failure to show at the secret's field.
func (a *App) saveProfile(p settings.Profile, token, basicPass string) error {
	err := a.profiles.change(func(ps []settings.Profile) ([]settings.Profile, error) {
		i := slices.IndexFunc(ps, func(q settings.Profile) bool { return q.ID == p.ID })
		if i < 0 {
			return nil, errors.New("the profile was deleted")
		}
		if slices.ContainsFunc(ps, func(q settings.Profile) bool { return q.ID != p.ID && q.Name == p.Name }) {
			return nil, settings.Problems{settings.FieldName: "Another profile has this name."}
		}
		if token != "" && !p.BuiltinRelay {
			if err := a.secrets.Set(p.ID, settings.SecretToken, token); err != nil {
				return nil, &settings.SecretError{Kind: settings.SecretToken, Err: err}
			}
			p.HasToken = true
		}
		if basicPass != "" && p.BasicAuthUser != "" {
			if err := a.secrets.Set(p.ID, settings.SecretBasicAuth, basicPass); err != nil {
				return nil, &settings.SecretError{Kind: settings.SecretBasicAuth, Err: err}
			}
		}
		if ps[i].BasicAuthUser != "" && p.BasicAuthUser == "" {
			// No longer needed; a failure leaves it unused in the keyring.
			a.secrets.Delete(p.ID, settings.SecretBasicAuth)
		}
		ps[i] = p
		return ps, nil
	})
	if err != nil {
		return err
	}
	a.engine.Restart(p)
	return nil
}

// addProfile saves p as a new profile under a fresh ID and a free name. With
// copyFrom set it is a duplicate, and the secrets of that profile are copied
// too: if one cannot be, nothing is added and the error says why.
func (a *App) addProfile(p settings.Profile, copyFrom string) (settings.Profile, error) {
	p.ID = settings.NewID()
	err := a.profiles.change(func(ps []settings.Profile) ([]settings.Profile, error) {
		p.Name = freeName(ps, p.Name)
		if copyFrom != "" {
			if err := a.copySecrets(copyFrom, p); err != nil {
				return nil, err
			}
		}
		return append(ps, p), nil
	})
	if err != nil {
		return settings.Profile{}, err
	}
	return p, nil
}

// copySecrets copies the secrets p says it has from profile from. On
// failure it removes what it copied.
func (a *App) copySecrets(from string, p settings.Profile) error {
	var kinds []settings.SecretKind
	if p.HasToken {
		kinds = append(kinds, settings.SecretToken)
	}
	if p.BasicAuthUser != "" {
		kinds = append(kinds, settings.SecretBasicAuth)
	}
	for i, kind := range kinds {
		v, err := a.secrets.Get(from, kind)
		if err == nil {
			err = a.secrets.Set(p.ID, kind, v)
		}
		if err != nil {
			for _, done := range kinds[:i] {
				a.secrets.Delete(p.ID, done)
			}
			return fmt.Errorf("its secrets could not be copied: %w", &settings.SecretError{Kind: kind, Err: err})
		}
	}
	return nil
}

// deleteProfile removes a profile, then stops it and forgets its status and
// secrets. (Removed first, it can no longer be started from the tray.)
func (a *App) deleteProfile(id string) error {
	var gone settings.Profile
	err := a.profiles.change(func(ps []settings.Profile) ([]settings.Profile, error) {
		i := slices.IndexFunc(ps, func(p settings.Profile) bool { return p.ID == id })
		if i < 0 {
			return ps, nil
		}
		gone = ps[i]
		return slices.Delete(ps, i, i+1), nil
	})
	if err != nil {
		return err
	}
	a.engine.Forget(id)
	var keyErr error
	if gone.HasToken {
		keyErr = a.secrets.Delete(id, settings.SecretToken)
	}
	if gone.BasicAuthUser != "" {
		keyErr = errors.Join(keyErr, a.secrets.Delete(id, settings.SecretBasicAuth))
	}
	if keyErr != nil {
		return fmt.Errorf("the profile was deleted, but its secrets stay in the keyring: %w", keyErr)
	}
	return nil
}
