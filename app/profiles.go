package app

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"porthole/settings"
)

// errReadOnly wraps the reason the profiles file must not be written.
var errReadOnly = errors.New("the profiles file is left as it is")

// profileList is the app's one copy of the saved profiles. Every change
// goes through change, which holds a lock from reading the list until the
// new one is saved, so that two changes never overwrite each other.
type profileList struct {
	store *settings.Store

	edit     sync.Mutex // held across read, modify and save; taken before mu
	readOnly error      // set once at load: the file must not be written

	mu   sync.Mutex // guards data, for quick reads from the UI goroutine
	data settings.Data
}

// load reads the profiles once, at start.
func (l *profileList) load(d settings.Data, readOnly error) {
	l.edit.Lock()
	defer l.edit.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.data, l.readOnly = d, readOnly
}

// writable reports whether changes can be saved: not when the file was
// left alone at load because Porthole could not use it.
func (l *profileList) writable() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.readOnly == nil
}

// all returns the profiles, in order.
func (l *profileList) all() []settings.Profile {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.data.Profiles)
}

// get returns a profile by ID.
func (l *profileList) get(id string) (settings.Profile, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := slices.IndexFunc(l.data.Profiles, func(p settings.Profile) bool { return p.ID == id })
	if i < 0 {
		return settings.Profile{}, false
	}
	return l.data.Profiles[i], true
}

// change applies modify to the current profiles and saves the result,
// holding the edit lock throughout; modify may do slow work (the keyring).
// If modify or the save fails, nothing changes. Off the UI goroutine.
func (l *profileList) change(modify func([]settings.Profile) ([]settings.Profile, error)) error {
	l.edit.Lock()
	defer l.edit.Unlock()
	if l.readOnly != nil {
		return fmt.Errorf("%w: %w", errReadOnly, l.readOnly)
	}
	l.mu.Lock()
	d := l.data
	l.mu.Unlock()
	next, err := modify(slices.Clone(d.Profiles))
	if err != nil {
		return err
	}
	d.Profiles = next
	if err := l.store.Save(d); err != nil {
		return fmt.Errorf("the profiles could not be saved: %w", err)
	}
	l.mu.Lock()
	l.data = d
	l.mu.Unlock()
	return nil
}

// freeName returns base, or base with the lowest number that makes it
// unique among ps.
func freeName(ps []settings.Profile, base string) string {
	name := base
	for i := 2; slices.ContainsFunc(ps, func(p settings.Profile) bool { return p.Name == name }); i++ {
		name = fmt.Sprintf("%s %d", base, i)
	}
	return name
}
