package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"porthole/internal/bytesize"
	"porthole/wire"
)

// system is one build of porthole under test: its relay, and the agents
// started for the cases at hand. A run measures the working tree's build
// and, with -baseline, an older one beside it.
type system struct {
	name      string // column heading: "tunnel", or "baseline (REV)"
	bin       string
	relayArgs []string
	agentArgs []string // flags for every agent
	window    int64    // the relay's stream window, when known
	inspector bool     // whether its agents have an inspector
	relay     *proc

	agentAddr, httpAddr, fingerprint string
	agents                           []*proc
}

// buildPorthole builds ./cmd/porthole from the module in dir into out.
func buildPorthole(dir, out string) error {
	build := exec.Command("go", "build", "-o", out, "./cmd/porthole")
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build in %s: %v\n%s", dir, err, b)
	}
	return nil
}

// buildRevision builds porthole as it was at a git revision, from an
// export of that revision into a temporary directory.
func buildRevision(moduleDir, rev, out string) error {
	src, err := os.MkdirTemp("", "porthole-baseline")
	if err != nil {
		return err
	}
	defer os.RemoveAll(src)
	archive := exec.Command("sh", "-c", `git -C "$1" archive --format=tar "$2" | tar -x -C "$3"`, "sh", moduleDir, rev, src)
	if b, err := archive.CombinedOutput(); err != nil {
		return fmt.Errorf("export %s: %v\n%s", rev, err, b)
	}
	return buildPorthole(src, out)
}

// newSystem starts a relay of bin with its state in dir. The relay picks
// its ports; restarts reuse them.
func newSystem(name, bin, dir string, relayExtra, agentExtra []string) (*system, error) {
	s := &system{name: name, bin: bin, window: relayWindow(relayExtra)}
	// Agents keep their inspector off (they would all want its port)
	// unless a case turns it on.
	if s.inspector = hasFlag(bin, "http", "web-addr"); s.inspector {
		s.agentArgs = append(s.agentArgs, "--web-addr=false")
	}
	s.agentArgs = append(s.agentArgs, agentExtra...)
	s.relayArgs = []string{bin, "relay", "--addr", "127.0.0.1:0", "--http", "127.0.0.1:0", "--tcp-ports", "0",
		"--state-dir", filepath.Join(dir, "relay"), "--token", "bench", "--log-level", "error"}
	// Every load comes from one address; lift the per-client cap where
	// the build has one.
	if hasFlag(bin, "relay", "max-client-conns") {
		s.relayArgs = append(s.relayArgs, "--max-client-conns", "1000000")
	}
	s.relayArgs = append(s.relayArgs, relayExtra...)
	if err := s.startRelay(); err != nil {
		s.close()
		return nil, err
	}
	s.relayArgs[3], s.relayArgs[5] = s.agentAddr, s.httpAddr
	return s, nil
}

func (s *system) startRelay() error {
	var err error
	if s.relay, err = startProc(s.name+" relay", s.relayArgs...); err != nil {
		return err
	}
	for _, line := range []struct {
		re  string
		dst *string
	}{{`^agents: (\S+)$`, &s.agentAddr}, {`^http: (\S+)$`, &s.httpAddr}, {`^fingerprint: (\S+)$`, &s.fingerprint}} {
		m, err := s.relay.await(line.re)
		if err != nil {
			return err
		}
		*line.dst = m[1]
	}
	return nil
}

// restartRelay kills the relay and starts it again on the same addresses
// and state. It returns when the new relay is ready.
func (s *system) restartRelay() error {
	s.relay.kill()
	return s.startRelay()
}

// startAgent starts an agent of the given kind (http, tcp) for the
// upstream port, dialing the relay at relayAddr (the relay's own address,
// or an emulated link in front of it), and returns it with its public URL.
func (s *system) startAgent(kind string, upstream int, relayAddr string, extra ...string) (*proc, string, error) {
	args := append([]string{s.bin, kind, strconv.Itoa(upstream), "--relay", relayAddr, "--token", "bench",
		"--relay-fingerprint", s.fingerprint, "--log-level", "error"}, s.agentArgs...)
	p, err := startProc(s.name+" "+kind+" agent", append(args, extra...)...)
	if err != nil {
		return nil, "", err
	}
	m, err := p.await(`^forwarding (\S+) -> `)
	if err != nil {
		p.kill()
		return nil, "", err
	}
	s.agents = append(s.agents, p)
	return p, m[1], nil
}

// stopAgents stops every agent the system started.
func (s *system) stopAgents() {
	for _, p := range s.agents {
		p.stop()
	}
	s.agents = nil
}

func (s *system) close() {
	s.stopAgents()
	if s.relay != nil {
		s.relay.stop()
	}
}

// awaitTunnel retries GET url (with the tunnel's Host) until it answers 200,
// and returns how long that took.
func (s *system) awaitTunnel(host, path string, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	for time.Since(start) < limit {
		if code, err := httpGetStatus("http://"+s.httpAddr+path, host); err == nil && code == 200 {
			return time.Since(start), nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, fmt.Errorf("%s: the tunnel %s did not answer within %v", s.name, host, limit)
}

// hasFlag reports whether porthole's subcommand cmd has a flag, for builds
// of other revisions.
func hasFlag(bin, cmd, flag string) bool {
	out, _ := exec.Command(bin, cmd, "-h").CombinedOutput()
	return strings.Contains(string(out), "-"+flag+" ")
}

// relayWindow is the stream window a relay started with these extra flags
// grants: the working tree's default, or the flag's value.
func relayWindow(flags []string) int64 {
	w := int64(wire.DefaultDownloadWindow)
	for i, f := range flags {
		v, ok := strings.CutPrefix(strings.TrimLeft(f, "-"), "stream-window")
		switch {
		case !ok:
			continue
		case strings.HasPrefix(v, "="):
			v = v[1:]
		case v == "" && i+1 < len(flags):
			v = flags[i+1]
		}
		if n, err := bytesize.Parse(v); err == nil {
			w = n
		}
	}
	return w
}

func urlPort(u string) int { return portOf(hostOf(u)) }

func portOf(hostport string) int {
	_, p, _ := net.SplitHostPort(hostport)
	n, _ := strconv.Atoi(p)
	return n
}

func hostOf(url string) string { return url[strings.Index(url, "://")+3:] }
