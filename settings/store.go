package settings

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// FileVersion is the version of the profiles file this build writes.
const FileVersion = 1

// file is the on-disk form of the profiles.
type file struct {
	Version  int       `json:"version"`
	Profiles []Profile `json:"profiles"`
}

// Data is everything the store keeps.
type Data struct {
	Profiles []Profile
}

// Store keeps the profiles in one JSON file.
type Store struct {
	Path string
}

// DefaultPath is profiles.json in the user config directory.
func DefaultPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "porthole", "profiles.json"), nil
}

// CorruptError reports a profiles file that could not be read. The file was
// moved aside to Backup and the store starts empty.
type CorruptError struct {
	Path   string
	Backup string
	Err    error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("the profiles file %s could not be read (%v); it was kept as %s", e.Path, e.Err, e.Backup)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// Load reads the profiles. A missing file is an empty store. A corrupt or
// unreadable file is moved aside and reported with *CorruptError, together
// with an empty Data, so the app can start.
func (s *Store) Load() (Data, error) {
	raw, err := os.ReadFile(s.Path)
	if errors.Is(err, os.ErrNotExist) {
		return Data{}, nil
	}
	if err == nil {
		var f file
		if err = decode(raw, &f); err == nil {
			return Data{Profiles: f.Profiles}, nil
		}
	}
	backup := fmt.Sprintf("%s.corrupt-%s", s.Path, time.Now().Format("20060102-150405"))
	if rerr := os.Rename(s.Path, backup); rerr != nil {
		return Data{}, &CorruptError{Path: s.Path, Backup: "(not moved: " + rerr.Error() + ")", Err: err}
	}
	return Data{}, &CorruptError{Path: s.Path, Backup: backup, Err: err}
}

func decode(raw []byte, f *file) error {
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(f); err != nil {
		return err
	}
	if f.Version != FileVersion {
		return fmt.Errorf("unsupported version %d (this build reads %d)", f.Version, FileVersion)
	}
	seen := map[string]bool{}
	for _, p := range f.Profiles {
		if p.ID == "" || seen[p.ID] {
			return fmt.Errorf("profile %q has a missing or duplicate id", p.Name)
		}
		seen[p.ID] = true
	}
	return nil
}

// Save writes the profiles atomically: a temp file in the same directory,
// fsync, rename over the old file, fsync of the directory. The file is
// readable by its owner only.
func (s *Store) Save(d Data) error {
	raw, err := json.MarshalIndent(file{Version: FileVersion, Profiles: d.Profiles}, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(s.Path, append(raw, '\n'))
}

// writeAtomic is a variable so that tests can stop it half way.
var writeAtomic = func(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".profiles-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
