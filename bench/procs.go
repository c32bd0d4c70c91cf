package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a child process whose stdout lines can be awaited.
type proc struct {
	name  string
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{}
}

func startProc(name string, args ...string) (*proc, error) {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = nil
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, lines: make(chan string, 64), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default: // nobody listens any more
			}
		}
		cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// await returns the submatches of the first line matching re.
func (p *proc) await(re string) ([]string, error) {
	rx := regexp.MustCompile(re)
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l := <-p.lines:
			if m := rx.FindStringSubmatch(l); m != nil {
				return m, nil
			}
		case <-p.done:
			return nil, fmt.Errorf("%s exited before printing %q", p.name, re)
		case <-timeout:
			return nil, fmt.Errorf("%s did not print %q", p.name, re)
		}
	}
}

func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// usage is a process's resource use at one moment, from /proc.
type usage struct {
	rssKiB, peakKiB int64
	cpu             time.Duration // user + system
}

func (p *proc) usage() usage {
	var u usage
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid()))
	if err == nil {
		for _, l := range strings.Split(string(status), "\n") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				switch f[0] {
				case "VmRSS:":
					u.rssKiB, _ = strconv.ParseInt(f[1], 10, 64)
				case "VmHWM:":
					u.peakKiB, _ = strconv.ParseInt(f[1], 10, 64)
				}
			}
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid()))
	if err == nil {
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) > 12 {
			ut, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			u.cpu = time.Duration(ut+st) * time.Second / 100 // USER_HZ
		}
	}
	return u
}

// resetPeak clears the kernel's peak-RSS mark so the next reading covers
// only what follows.
func (p *proc) resetPeak() {
	os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.pid()), []byte("5"), 0)
}
