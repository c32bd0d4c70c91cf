package settings

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
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
	// An empty list is a list, not null.
	if err := s.Save(Data{}); err != nil {
		t.Fatal(err)
	}
	if raw, _ := os.ReadFile(s.Path); !strings.Contains(string(raw), `"profiles": []`) {
		t.Errorf("empty store written as %s", raw)
	}
}

// saveChildEnv marks the child processes of the save tests.
const saveChildEnv = "PORTHOLE_SAVE_CHILD"

// child runs test name again in a new process with path in its
// environment, and returns the command, not yet started.
func child(t *testing.T, name, path string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), saveChildEnv+"="+path)
	return cmd
}

// TestSaveFailingHalfWayKeepsTheOriginal runs the real writer in a child
// process whose file size limit stops it in the middle of writing the new
// file, as a full disk would: the save fails and the original is intact.
func TestSaveFailingHalfWayKeepsTheOriginal(t *testing.T) {
	if path := os.Getenv(saveChildEnv); path != "" {
		signal.Ignore(syscall.SIGXFSZ) // a write past the limit then fails with EFBIG
		limit := syscall.Rlimit{Cur: 2048, Max: 2048}
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
			t.Fatal(err)
		}
		var d Data
		for i := range 50 {
			p := valid()
			p.Name = fmt.Sprintf("profile %d", i)
			d.Profiles = append(d.Profiles, p)
		}
		if err := (&Store{Path: path}).Save(d); !errors.Is(err, syscall.EFBIG) {
			t.Fatalf("Save past the size limit = %v, want EFBIG", err)
		}
		return
	}
	s := newStore(t)
	orig := valid()
	if err := s.Save(Data{Profiles: []Profile{orig}}); err != nil {
		t.Fatal(err)
	}
	if out, err := child(t, t.Name(), s.Path).CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	d, err := s.Load()
	if err != nil || len(d.Profiles) != 1 || d.Profiles[0] != orig {
		t.Fatalf("after the failed save: %+v, %v; want the original", d, err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(s.Path)); len(entries) != 1 {
		t.Errorf("the failed save left %d files, want only the profiles file", len(entries))
	}
}

// TestCrashDuringSaveLeavesOldOrNew kills a child process that saves in a
// loop, at whatever point of the write it has reached: the file is always
// one whole version, never a mix or a truncated one.
func TestCrashDuringSaveLeavesOldOrNew(t *testing.T) {
	versions := func() []Data {
		var out []Data
		for v := range 2 {
			var d Data
			for i := range 200 {
				p := valid()
				p.ID = fmt.Sprintf("p%d", i)
				p.Name = fmt.Sprintf("version %d profile %d %s", v, i, strings.Repeat("x", 100))
				d.Profiles = append(d.Profiles, p)
			}
			out = append(out, d)
		}
		return out
	}()
	if path := os.Getenv(saveChildEnv); path != "" {
		s := &Store{Path: path}
		for i := 0; ; i++ {
			if err := s.Save(versions[i%2]); err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				fmt.Println("saving") // the parent kills us from now on
			}
		}
	}
	s := newStore(t)
	if err := s.Save(versions[0]); err != nil {
		t.Fatal(err)
	}
	for round := range 10 {
		cmd := child(t, t.Name(), s.Path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		for sc.Scan() && sc.Text() != "saving" {
		}
		cmd.Process.Kill()
		cmd.Wait()
		d, err := s.Load()
		if err != nil {
			t.Fatalf("round %d: after the crash: %v", round, err)
		}
		if !sameProfiles(d, versions[0]) && !sameProfiles(d, versions[1]) {
			t.Fatalf("round %d: the file is neither version: %d profiles", round, len(d.Profiles))
		}
	}
}

func sameProfiles(a, b Data) bool {
	if len(a.Profiles) != len(b.Profiles) {
		return false
	}
	for i := range a.Profiles {
		if a.Profiles[i] != b.Profiles[i] {
			return false
		}
	}
	return true
}

// TestLoadLeavesTheFileAlone: Load reports a file it cannot use with a
// typed error and never moves, rewrites or removes it.
func TestLoadLeavesTheFileAlone(t *testing.T) {
	for _, c := range []struct {
		name    string
		content string
		want    error
	}{
		{"not json", "{this is not json", ErrCorrupt},
		{"truncated write", `{"version": 1, "profiles": [{"id": "a", "na`, ErrCorrupt},
		{"no version", `{"profiles": []}`, ErrCorrupt},
		{"profiles not a list", `{"version": 1, "profiles": {"id": "a"}}`, ErrCorrupt},
		{"duplicate ids", `{"version": 1, "profiles": [{"id": "a", "name": "x"}, {"id": "a", "name": "y"}]}`, ErrCorrupt},
		{"missing id", `{"version": 1, "profiles": [{"name": "x"}]}`, ErrCorrupt},
		{"newer version", `{"version": 99, "profiles": []}`, ErrNewerVersion},
		{"unknown tunnel type", `{"version": 1, "profiles": [{"id": "a", "name": "x", "type": "quic"}]}`, ErrUnsupported},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t)
			os.MkdirAll(filepath.Dir(s.Path), 0o700)
			os.WriteFile(s.Path, []byte(c.content), 0o600)
			d, err := s.Load()
			var fe *FileError
			if !errors.As(err, &fe) || !errors.Is(err, c.want) || len(d.Profiles) != 0 {
				t.Fatalf("Load = %+v, %v; want a *FileError wrapping %v", d, err, c.want)
			}
			assertUntouched(t, s.Path, c.content)
		})
	}
}

func TestLoadOfAnUnreadableFileLeavesIt(t *testing.T) {
	if os.Geteuid() == 0 {
		// Root reads any file: make the path a directory instead, which
		// fails to read the same way for everyone.
		s := newStore(t)
		os.MkdirAll(s.Path, 0o700)
		_, err := s.Load()
		var fe *FileError
		if !errors.As(err, &fe) || errors.Is(err, ErrCorrupt) {
			t.Fatalf("Load = %v; want a *FileError that is not ErrCorrupt", err)
		}
		if fi, err := os.Stat(s.Path); err != nil || !fi.IsDir() {
			t.Errorf("the path was moved: %v", err)
		}
		return
	}
	s := newStore(t)
	if err := s.Save(Data{Profiles: []Profile{valid()}}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(s.Path)
	os.Chmod(s.Path, 0o000)
	_, err := s.Load()
	if !errors.Is(err, os.ErrPermission) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("Load = %v; want a permission error", err)
	}
	os.Chmod(s.Path, 0o600)
	assertUntouched(t, s.Path, string(raw))
}

func assertUntouched(t *testing.T, path, content string) {
	t.Helper()
	if got, err := os.ReadFile(path); err != nil || string(got) != content {
		t.Errorf("the file changed: %q, %v", got, err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("the directory holds %d entries, want the file alone", len(entries))
	}
}

func TestQuarantineKeepsTheCorruptFileAside(t *testing.T) {
	s := newStore(t)
	os.MkdirAll(filepath.Dir(s.Path), 0o700)
	os.WriteFile(s.Path, []byte("{broken"), 0o600)
	backup, err := s.Quarantine()
	if err != nil {
		t.Fatal(err)
	}
	if kept, err := os.ReadFile(backup); err != nil || string(kept) != "{broken" || !strings.HasPrefix(backup, s.Path+".corrupt-") {
		t.Errorf("backup %s: %q, %v", backup, kept, err)
	}
	if d, err := s.Load(); err != nil || len(d.Profiles) != 0 {
		t.Errorf("after quarantine: %+v, %v", d, err)
	}
}

// TestUnknownFieldsAreKept: a file from a newer Porthole with fields this
// build does not know loads, and saving writes them back.
func TestUnknownFieldsAreKept(t *testing.T) {
	s := newStore(t)
	os.MkdirAll(filepath.Dir(s.Path), 0o700)
	os.WriteFile(s.Path, []byte(`{
  "version": 1,
  "theme": {"dark": true},
  "profiles": [
    {"id": "a", "name": "web", "builtin_relay": true, "type": "http", "upstream": "8000", "qr_code": "large", "inspect": false},
    {"id": "b", "name": "db", "builtin_relay": true, "type": "tcp", "upstream": "5432"}
  ]
}`), 0o600)
	d, err := s.Load()
	if err != nil || len(d.Profiles) != 2 || d.Profiles[0].Name != "web" {
		t.Fatalf("Load = %+v, %v", d, err)
	}
	d.Profiles[0].Upstream = "8080"
	d.Profiles = append(d.Profiles, valid())
	if err := s.Save(d); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(s.Path)
	for _, want := range []string{`"theme": {`, `"dark": true`, `"qr_code": "large"`, `"inspect": false`, `"upstream": "8080"`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("saved file lacks %s:\n%s", want, raw)
		}
	}
	again, err := s.Load()
	if err != nil || len(again.Profiles) != 3 || again.Profiles[0].Upstream != "8080" {
		t.Fatalf("reload: %+v, %v", again, err)
	}
	// Deleting a profile drops its unknown fields with it.
	again.Profiles = again.Profiles[1:]
	if err := s.Save(again); err != nil {
		t.Fatal(err)
	}
	if raw, _ := os.ReadFile(s.Path); strings.Contains(string(raw), "qr_code") || !strings.Contains(string(raw), "theme") {
		t.Errorf("after deleting the profile:\n%s", raw)
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
