package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestHarnessRuns builds the harness and runs it once with tiny settings, to
// show that it works end to end. It checks the report's shape, never a speed.
func TestHarnessRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the benchmark harness")
	}
	bin := filepath.Join(t.TempDir(), "bench")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-duration", "1s", "-rounds", "1", "-idle", "20")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bench: %v\n%s\n%s", err, out, stderr.String())
	}
	report := string(out)
	for _, want := range []string{
		"| TCP, 1 stream |", "| TCP, 8 parallel streams |",
		"| HTTP /hello, 50 connections: requests/s |", "p99 latency",
		"| HTTP /1m, 8 connections: requests/s |",
		"relay peak RSS", "Idle tunneled connections (20 held)", "Reconnect after relay restart",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
}
