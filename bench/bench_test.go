package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runHarness builds the harness and runs it once with args, returning its
// report. It checks the report's shape, never a speed.
func runHarness(t *testing.T, args ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the benchmark harness")
	}
	bin := filepath.Join(t.TempDir(), "bench")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bench: %v\n%s\n%s", err, out, stderr.String())
	}
	return string(out)
}

func wantRows(t *testing.T, report string, rows ...string) {
	t.Helper()
	for _, want := range rows {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
}

// TestHarnessRuns runs the loopback cases once with tiny settings.
func TestHarnessRuns(t *testing.T) {
	report := runHarness(t, "-duration", "1s", "-rounds", "1", "-idle", "20", "-inspector-fill", "0")
	wantRows(t, report,
		"| TCP, 1 stream |", "| TCP, 8 parallel streams |",
		"| HTTP /hello, 50 connections: requests/s |", "p99 latency",
		"| HTTP /1m, 8 connections: requests/s |",
		"relay peak", "inspector on vs off", "Idle tunneled connections (20 held)", "Reconnect after relay restart")
}

// TestWANHarnessRuns runs the emulated-link cases once, over link B only,
// with tiny settings and the Go load generators (which CI uses: it installs
// neither wrk nor iperf3).
func TestWANHarnessRuns(t *testing.T) {
	report := runHarness(t, "-loopback=false", "-wan", "-links", "B", "-duration", "1s", "-rounds", "1",
		"-download", "4MiB", "-stalled", "3", "-stall-time", "1s", "-go-load")
	wantRows(t, report,
		"## Link B, cross-continent: 25ms one way, 1 Gbit/s",
		"| TCP, 1 stream, upload |", "| TCP, 1 stream, download |",
		"| TCP, 8 streams, upload |", "| TCP, 8 streams, download |",
		"| HTTP download of 4 MiB |", "| HTTP upload of 4 MiB |",
		"| HTTP /hello, 8 connections: p50 latency |", "| First byte on a new connection (median) |",
		"Reconnect after relay restart", "3 public clients read a large download at 1 KiB/s",
		"| Link B: direct, 1 stream, up / down, best of 1 runs |")
}
