package settings

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"
)

// FileVersion is the version of the profiles file this build writes.
//
// The version changes only when a file would mean something different to
// an older build. Fields added later do not change it: an older build
// keeps the fields it does not know and writes them back unchanged, so
// that a newer build finds them again.
const FileVersion = 1

// Errors from Load, inside a *FileError.
var (
	// ErrCorrupt means the file is not a profiles file: not JSON, cut
	// short, not shaped as one, or with missing or repeated profile IDs.
	// It is the one error after which the app moves the file aside.
	ErrCorrupt = errors.New("the file is corrupt")
	// ErrNewerVersion means a newer Porthole wrote the file in a form this
	// build cannot read. The file is left alone and must not be written.
	ErrNewerVersion = errors.New("a newer version of Porthole wrote it")
	// ErrUnsupported means the file is well formed but holds a value this
	// build cannot read (such as a tunnel type it does not know). The file
	// is left alone and must not be written.
	ErrUnsupported = errors.New("it holds a setting this version of Porthole cannot read")
)

// FileError is a profiles file that Load could not use. Err is ErrCorrupt,
// ErrNewerVersion, ErrUnsupported (each with details) or the error reading
// the file, such as a permission error.
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string {
	return fmt.Sprintf("the profiles file %s cannot be used: %v", e.Path, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// Data is everything the store keeps.
type Data struct {
	Profiles []Profile

	// unknown holds what a newer Porthole wrote that this build does not
	// know: fields of the file, and fields of each profile by ID. Save
	// writes them back.
	unknown        map[string]json.RawMessage
	unknownProfile map[string]map[string]json.RawMessage
}

// Store keeps the profiles in one JSON file.
type Store struct {
	Path string
}

// Load reads the profiles. A missing file is an empty store. Load never
// changes the file; when it cannot use it, it returns a *FileError.
func (s *Store) Load() (Data, error) {
	raw, err := os.ReadFile(s.Path)
	if errors.Is(err, os.ErrNotExist) {
		return Data{}, nil
	}
	if err != nil {
		return Data{}, &FileError{Path: s.Path, Err: err}
	}
	d, err := decode(raw)
	if err != nil {
		return Data{}, &FileError{Path: s.Path, Err: err}
	}
	return d, nil
}

// Quarantine moves a corrupt profiles file aside, next to it, so that the
// app can start afresh without losing it, and returns where it went. Call it
// only after Load reported ErrCorrupt.
func (s *Store) Quarantine() (string, error) {
	backup := fmt.Sprintf("%s.corrupt-%s", s.Path, time.Now().Format("20060102-150405.000"))
	if err := os.Rename(s.Path, backup); err != nil {
		return "", err
	}
	return backup, nil
}

// decode parses a profiles file. Only a file that is not even shaped as
// one is ErrCorrupt.
func decode(raw []byte) (Data, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return Data{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	var version int
	if err := json.Unmarshal(top["version"], &version); err != nil || version < 1 {
		return Data{}, fmt.Errorf("%w: no version", ErrCorrupt)
	}
	if version > FileVersion {
		return Data{}, fmt.Errorf("%w (file version %d, this build reads %d)", ErrNewerVersion, version, FileVersion)
	}
	var objects []map[string]json.RawMessage
	if err := json.Unmarshal(top["profiles"], &objects); err != nil {
		return Data{}, fmt.Errorf("%w: profiles is not a list of objects", ErrCorrupt)
	}
	d := Data{unknown: unknownFields(top, fileKeys), unknownProfile: map[string]map[string]json.RawMessage{}}
	for i, obj := range objects {
		var p Profile
		if err := json.Unmarshal(obj["id"], &p.ID); err != nil || p.ID == "" {
			return Data{}, fmt.Errorf("%w: profile %d has no id", ErrCorrupt, i+1)
		}
		if slices.ContainsFunc(d.Profiles, func(q Profile) bool { return q.ID == p.ID }) {
			return Data{}, fmt.Errorf("%w: two profiles have the id %q", ErrCorrupt, p.ID)
		}
		raw, _ := json.Marshal(obj)
		if err := json.Unmarshal(raw, &p); err != nil {
			return Data{}, fmt.Errorf("%w: profile %d: %v", ErrUnsupported, i+1, err)
		}
		d.Profiles = append(d.Profiles, p)
		if u := unknownFields(obj, profileKeys); len(u) > 0 {
			d.unknownProfile[p.ID] = u
		}
	}
	return d, nil
}

// Save writes the profiles atomically: a temp file in the same directory,
// fsync, rename over the old file, fsync of the directory. The file is
// readable by its owner only. Fields Load did not know are written back.
func (s *Store) Save(d Data) error {
	profiles := make([]json.RawMessage, len(d.Profiles))
	for i, p := range d.Profiles {
		obj, err := json.Marshal(p)
		if err != nil {
			return err
		}
		profiles[i] = withFields(obj, d.unknownProfile[p.ID])
	}
	top, err := json.Marshal(file{Version: FileVersion, Profiles: profiles})
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := json.Indent(&b, withFields(top, d.unknown), "", "  "); err != nil {
		return err
	}
	b.WriteByte('\n')
	return writeAtomic(s.Path, b.Bytes())
}

// file is the profiles file as this build writes it.
type file struct {
	Version  int               `json:"version"`
	Profiles []json.RawMessage `json:"profiles"`
}

// Keys of the file and of a profile that this build knows.
var (
	fileKeys    = []string{"version", "profiles"}
	profileKeys = jsonKeys(reflect.TypeFor[Profile]())
)

func jsonKeys(t reflect.Type) []string {
	var keys []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	return keys
}

func unknownFields(obj map[string]json.RawMessage, known []string) map[string]json.RawMessage {
	var u map[string]json.RawMessage
	for k, v := range obj {
		if !slices.Contains(known, k) {
			if u == nil {
				u = map[string]json.RawMessage{}
			}
			u[k] = v
		}
	}
	return u
}

// withFields adds fields to an encoded JSON object, in key order.
func withFields(obj []byte, extra map[string]json.RawMessage) []byte {
	if len(extra) == 0 {
		return obj
	}
	out := bytes.TrimSuffix(bytes.TrimSpace(obj), []byte("}"))
	for _, k := range sortedKeys(extra) {
		key, _ := json.Marshal(k)
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(append(append(out, key...), ':'), extra[k]...)
	}
	return append(out, '}')
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// writeAtomic writes data to path so that a crash at any point leaves
// either the old file or the new one, never a mix.
func writeAtomic(path string, data []byte) error {
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
