package settings

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newStore(t *testing.T) *Store {
	return &Store{Path: filepath.Join(t.TempDir(), "porthole", "profiles.json")}
}

func TestStoreRoundTrip(t *testing.T) {
	s := newStore(t)
	if d, err := s.Load(); err != nil || len(d.Profiles) != 0 {
		t.Fatalf("missing file: %+v, %v", d, err)
	}
	a, b := valid(), valid()
	b.ID, b.Name, b.BuiltinRelay, b.RelayAddr = NewID(), "api", false, "relay.example:7835"
	if err := s.Save(Data{Profiles: []Profile{a, b}}); err != nil {
		t.Fatal(err)
	}
	d, err := s.Load()
	if err != nil || len(d.Profiles) != 2 || d.Profiles[0] != a || d.Profiles[1] != b {
		t.Fatalf("round trip: %+v, %v", d, err)
	}
	fi, err := os.Stat(s.Path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	raw, _ := os.ReadFile(s.Path)
	if !strings.Contains(string(raw), `"version": 1`) {
		t.Errorf("file has no version: %s", raw)
	}
	entries, _ := os.ReadDir(filepath.Dir(s.Path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want just the profiles file", len(entries))
	}
}

// TestCrashDuringSaveKeepsTheOriginal stops a save after the temp file is
// written but before the rename, as a crash or power cut would.
func TestCrashDuringSaveKeepsTheOriginal(t *testing.T) {
	s := newStore(t)
	orig := valid()
	if err := s.Save(Data{Profiles: []Profile{orig}}); err != nil {
		t.Fatal(err)
	}
	real := writeAtomic
	defer func() { writeAtomic = real }()
	errCrash := errors.New("crashed")
	writeAtomic = func(path string, data []byte) error {
		tmp, err := os.CreateTemp(filepath.Dir(path), ".profiles-*.tmp")
		if err != nil {
			return err
		}
		tmp.Write(data[:len(data)/2])
		tmp.Close()
		return errCrash // the rename never happens
	}
	changed := orig
	changed.Name = "changed"
	if err := s.Save(Data{Profiles: []Profile{changed}}); !errors.Is(err, errCrash) {
		t.Fatalf("save: %v", err)
	}
	writeAtomic = real
	d, err := s.Load()
	if err != nil || len(d.Profiles) != 1 || d.Profiles[0] != orig {
		t.Fatalf("after the crash: %+v, %v; want the original", d, err)
	}
}

func TestCorruptFileIsKeptAsideAndReported(t *testing.T) {
	for name, content := range map[string]string{
		"not json":        "{this is not json",
		"future version":  `{"version": 99, "profiles": []}`,
		"duplicate ids":   `{"version": 1, "profiles": [{"id": "a", "name": "x"}, {"id": "a", "name": "y"}]}`,
		"unknown field":   `{"version": 1, "profiles": [], "tokens": "oops"}`,
		"truncated write": `{"version": 1, "profiles": [{"id": "a", "na`,
	} {
		t.Run(name, func(t *testing.T) {
			s := newStore(t)
			os.MkdirAll(filepath.Dir(s.Path), 0o700)
			os.WriteFile(s.Path, []byte(content), 0o600)
			d, err := s.Load()
			var ce *CorruptError
			if !errors.As(err, &ce) || len(d.Profiles) != 0 {
				t.Fatalf("Load = %+v, %v; want an empty store and *CorruptError", d, err)
			}
			kept, rerr := os.ReadFile(ce.Backup)
			if rerr != nil || string(kept) != content {
				t.Errorf("backup %s: %q, %v", ce.Backup, kept, rerr)
			}
			if !strings.Contains(err.Error(), ce.Backup) {
				t.Errorf("error does not say where the file went: %v", err)
			}
			// The app can carry on and save over it.
			if err := s.Save(Data{Profiles: []Profile{valid()}}); err != nil {
				t.Fatal(err)
			}
			if d, err := s.Load(); err != nil || len(d.Profiles) != 1 {
				t.Errorf("after saving: %+v, %v", d, err)
			}
		})
	}
}

func TestSecretsNeverReachTheFile(t *testing.T) {
	s := newStore(t)
	p := valid()
	p.BuiltinRelay, p.RelayAddr, p.BasicAuthUser, p.HasToken = false, "relay:1", "alice", true
	if err := s.Save(Data{Profiles: []Profile{p}}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(s.Path)
	for _, word := range []string{"password", "secret", "s3cret"} {
		if strings.Contains(strings.ToLower(string(raw)), word) {
			t.Errorf("profiles file mentions %q:\n%s", word, raw)
		}
	}
}
