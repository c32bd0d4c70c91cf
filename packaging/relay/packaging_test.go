// Package relaypackaging vets the relay's systemd unit and container
// definition: the unit passes systemd-analyze, and the container's build
// stage builds the same static, cgo-free command that its entry point runs
// as an unprivileged user.
package relaypackaging

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// requireTool finds a program, skipping the test outside CI when it is
// missing (scripts/deps.sh installs it) and failing in CI.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing; scripts/deps.sh test installs it", name)
		}
		t.Skipf("%s is not installed (scripts/deps.sh test installs it)", name)
	}
	return p
}

func repoRoot(t *testing.T) string {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// directives reads a unit file's Key=Value lines, by key.
func directives(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			out[k] = append(out[k], v)
		}
	}
	return out
}

const unitBinary = "/usr/local/bin/porthole"

func TestSystemdUnit(t *testing.T) {
	analyze := requireTool(t, "systemd-analyze")
	d := directives(t, "porthole-relay.service")
	for key, want := range map[string]string{
		"User":                  "porthole",
		"StateDirectory":        "porthole", // /var/lib/porthole
		"AmbientCapabilities":   "CAP_NET_BIND_SERVICE",
		"CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
		"NoNewPrivileges":       "yes",
		"ProtectSystem":         "strict",
		"ExecReload":            "/bin/kill -HUP $MAINPID",
	} {
		if got := d[key]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%v, want %s", key, got, want)
		}
	}
	start := d["ExecStart"]
	if len(start) != 1 || !strings.HasPrefix(start[0], unitBinary+" relay ") || !strings.Contains(start[0], "--state-dir ${STATE_DIRECTORY}") {
		t.Fatalf("ExecStart=%v", start)
	}

	// systemd-analyze checks that ExecStart names an executable, so the
	// copy it verifies runs the binary just built; nothing else changes.
	bin := buildCommand(t, "CGO_ENABLED=0 go build -o OUT ./cmd/porthole")
	unit, err := os.ReadFile("porthole-relay.service")
	if err != nil {
		t.Fatal(err)
	}
	verified := filepath.Join(t.TempDir(), "porthole-relay.service")
	if err := os.WriteFile(verified, bytes.ReplaceAll(unit, []byte(unitBinary), []byte(bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	// verify exits 0 on unknown keys and bad values, and only warns: any
	// output is a failure.
	out, err := command(analyze, "verify", verified).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The hardening keeps the exposure score at 2.0 ("OK") or below.
	out, err = command(analyze, "security", "--offline=yes", "--threshold=20", verified).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security: %v\n%s", err, lastLines(out, 3))
	}
}

func command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "SYSTEMD_COLORS=0", "SYSTEMD_PAGER=")
	return cmd
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// containerfile is what the test reads from the Containerfile.
type containerfile struct {
	buildRun   string   // the build stage's RUN that runs go build
	binary     string   // where the final stage copies the binary
	user       string   // the final stage's USER
	volumes    []string // the final stage's VOLUMEs
	entrypoint []string // the final stage's ENTRYPOINT (exec form)
}

func parseContainerfile(t *testing.T) containerfile {
	t.Helper()
	b, err := os.ReadFile("Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	var c containerfile
	stage := 0
	copyBin := regexp.MustCompile(`^COPY --from=build /out/porthole (\S+)$`)
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(instr) {
		case "FROM":
			stage++
		case "RUN":
			if stage == 1 && strings.Contains(rest, "go build") {
				c.buildRun = rest
			}
		case "COPY":
			if m := copyBin.FindStringSubmatch(line); m != nil && stage == 2 {
				c.binary = m[1]
			}
		case "USER":
			c.user = rest
		case "VOLUME":
			if err := json.Unmarshal([]byte(rest), &c.volumes); err != nil {
				t.Fatalf("VOLUME %s: want the JSON form: %v", rest, err)
			}
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &c.entrypoint); err != nil {
				t.Fatalf("ENTRYPOINT %s: want the exec (JSON) form: %v", rest, err)
			}
		}
	}
	if stage != 2 {
		t.Fatalf("%d stages, want a build stage and a final one", stage)
	}
	return c
}

// buildCommand runs a go build command line, as the image build's shell
// would, from the repository root with its -o target replaced, and returns
// the binary.
func buildCommand(t *testing.T, line string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "porthole")
	target := regexp.MustCompile(`-o \S+`)
	if !strings.Contains(line, "go build") || !target.MatchString(line) {
		t.Fatalf("not a go build -o command: %q", line)
	}
	cmd := exec.Command("sh", "-c", target.ReplaceAllLiteralString(line, "-o "+out))
	cmd.Dir = repoRoot(t)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", line, err, b)
	}
	return out
}

func TestContainerfile(t *testing.T) {
	c := parseContainerfile(t)
	if !strings.Contains(c.buildRun, "CGO_ENABLED=0 go build") || !strings.HasSuffix(c.buildRun, "./cmd/porthole") {
		t.Fatalf("build stage runs %q, want CGO_ENABLED=0 go build ... ./cmd/porthole", c.buildRun)
	}
	if c.user == "" || strings.HasPrefix(c.user, "0") || strings.HasPrefix(c.user, "root") {
		t.Errorf("final stage runs as %q, want an unprivileged user", c.user)
	}
	if len(c.volumes) != 1 || c.volumes[0] != "/var/lib/porthole" {
		t.Errorf("volumes %v, want /var/lib/porthole", c.volumes)
	}
	ep := strings.Join(c.entrypoint, " ")
	if len(c.entrypoint) < 2 || c.entrypoint[0] != c.binary || c.entrypoint[1] != "relay" || !strings.Contains(ep, "--state-dir /var/lib/porthole") {
		t.Fatalf("entrypoint %q, want %s relay --state-dir /var/lib/porthole ...", ep, c.binary)
	}

	bin := buildCommand(t, c.buildRun)
	assertStatic(t, bin)

	if os.Getuid() != 0 {
		t.Skip("running the entry point as the image's user needs root")
	}
	// Run the entry point as the image's user, with a state directory
	// that user owns, as the volume would be. Later flags win, so the
	// test moves the listeners to free loopback ports.
	var uid, gid uint32
	if _, err := fmt.Sscanf(c.user, "%d:%d", &uid, &gid); err != nil {
		t.Fatalf("USER %q: want numeric uid:gid: %v", c.user, err)
	}
	state := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(state, int(uid), int(gid)); err != nil {
		t.Fatal(err)
	}
	traversable(t, filepath.Dir(state))
	args := append([]string{}, c.entrypoint[1:]...)
	for i := range args {
		if args[i] == "/var/lib/porthole" {
			args[i] = state
		}
	}
	args = append(args, "--addr", "127.0.0.1:0", "--http", "127.0.0.1:0", "--https", "127.0.0.1:0", "--token", "t")
	traversable(t, filepath.Dir(bin))
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stdout)
	started := false
	for lines.Scan() {
		if strings.HasPrefix(lines.Text(), "fingerprint: ") {
			started = true
			break
		}
	}
	if !started {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("relay did not start as %s:\n%s", c.user, stderr.String())
	}
	st, err := os.Stat(filepath.Join(state, "relay.key"))
	if err != nil {
		t.Fatal(err)
	}
	if owner := st.Sys().(*syscall.Stat_t); owner.Uid != uid || st.Mode().Perm() != 0o600 {
		t.Errorf("relay.key owned by %d, mode %v; want %d, 0600", owner.Uid, st.Mode().Perm(), uid)
	}
}

// traversable lets other users reach into a t.TempDir (which is made
// 0700, in a per-test directory that is 0700 too).
func traversable(t *testing.T, dir string) {
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// assertStatic fails unless bin is a statically linked ELF executable (no
// interpreter, no shared libraries), as the distroless static base needs.
func assertStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has an ELF interpreter: not static", bin)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s links %v: not static", bin, libs)
	}
}

// TestContainerImageBuilds builds the image where a container builder is
// installed; elsewhere TestContainerfile vets the definition.
func TestContainerImageBuilds(t *testing.T) {
	var builder string
	for _, b := range []string{"docker", "podman", "buildah"} {
		if p, err := exec.LookPath(b); err == nil {
			builder = p
			break
		}
	}
	if builder == "" {
		t.Skip("no container builder (docker, podman or buildah) here; TestContainerfile vets the definition")
	}
	if filepath.Base(builder) == "docker" && exec.Command(builder, "info").Run() != nil {
		t.Skip("docker is installed but no Docker engine runs here; TestContainerfile vets the definition")
	}
	args := []string{"build", "-f", "packaging/relay/Containerfile", "-t", "porthole-relay:test", "."}
	if filepath.Base(builder) == "buildah" {
		args = append([]string{"bud"}, args[1:]...)
	}
	cmd := exec.Command(builder, args...)
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s build: %v\n%s", builder, err, lastLines(out, 20))
	}
}
