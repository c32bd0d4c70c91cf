package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestListenersOutliveDescriptorExhaustion runs the built relay with room
// for 64 open files and floods its public and agent ports with idle
// connections until it runs out of descriptors. The relay must say so and
// keep trying, and once the flood ends both listeners must serve again: a
// stranger who can open many connections may slow a relay down, but must
// not be able to turn its listeners off for good.
func TestListenersOutliveDescriptorExhaustion(t *testing.T) {
	const nofile = 64
	cmd := exec.Command("sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, nofile), bin,
		"relay", "--addr", "127.0.0.1:0", "--http", "127.0.0.1:0", "--state-dir", t.TempDir(), "--token", "s3cret",
		"--read-header-timeout", "1m")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	relay := startCmd(t, cmd)
	agentAddr := relay.line(t, `^agents: (\S+)$`)[1]
	httpAddr := relay.line(t, `^http: (\S+)$`)[1]
	fp := relay.line(t, `^fingerprint: ([0-9a-f]{64})$`)[1]
	logs := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "accept failed") {
				select {
				case logs <- sc.Text():
				default:
				}
			}
		}
	}()

	// Twice as many connections as the relay may hold, on each port.
	var flood []net.Conn
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	for _, addr := range []string{httpAddr, agentAddr} {
		for range 2 * nofile {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			flood = append(flood, c)
		}
	}
	failing := map[string]bool{"http": false, "agent": false}
	for done := false; !done; {
		select {
		case l := <-logs:
			for name := range failing {
				if strings.Contains(l, `msg="accept failed; retrying" listener=`+name+` `) {
					failing[name] = true
				}
			}
			done = failing["http"] && failing["agent"]
		case <-relay.done:
			t.Fatal("the relay exited")
		case <-time.After(30 * time.Second):
			t.Fatalf("the relay did not report failing accepts on every listener: %v", failing)
		}
	}
	for _, c := range flood {
		c.Close()
	}
	flood = nil

	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "back") }))
	defer up.Close()
	agent := start(t, []string{"PORTHOLE_TOKEN=s3cret"}, "http", up.URL, "--relay", agentAddr, "--relay-fingerprint", fp,
		"--name", "app", "--web-addr", "false")
	url := agent.line(t, `^forwarding (http://\S+) -> `)[1]
	if body := getVia(t, httpAddr, url+"/"); body != "back" {
		t.Errorf("after the flood the tunnel answers %q", body)
	}
}
