package main

import (
	"fmt"
	"strings"
	"time"
)

type unit int

const (
	gbit unit = iota
	perSec
)

func (u unit) format(v float64) string {
	switch u {
	case gbit:
		return fmt.Sprintf("%.2f Gbit/s", v/1e9)
	default:
		return fmt.Sprintf("%.0f/s", v)
	}
}

// report collects the results as Markdown rows.
type report struct {
	date, machine, command, tools string
	rows                          []string
	resRows                       []string
	other                         []string
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// ratio records a higher-is-better figure and its ratio to direct.
func (r *report) ratio(name string, direct, tunnel float64, u unit, target float64) {
	ratio := tunnel / direct
	t := "—"
	if target > 0 {
		t = fmt.Sprintf("≥ %.2f × (%s)", target, verdict(ratio >= target))
	}
	r.rows = append(r.rows, fmt.Sprintf("| %s | %s | %s | %.2f × | %s |", name, u.format(direct), u.format(tunnel), ratio, t))
}

// latency records a lower-is-better duration (nanoseconds).
func (r *report) latency(name string, direct, tunnel float64, maxRatio float64) {
	ratio := tunnel / direct
	t := "—"
	if maxRatio > 0 {
		t = fmt.Sprintf("≤ %.0f × (%s)", maxRatio, verdict(ratio <= maxRatio))
	}
	r.rows = append(r.rows, fmt.Sprintf("| %s | %s | %s | %.2f × | %s |", name,
		time.Duration(direct).Round(time.Microsecond), time.Duration(tunnel).Round(time.Microsecond), ratio, t))
}

func (r *report) resources(name string, relayPeak, agentPeak int64, relayCPU, agentCPU, wall time.Duration) {
	mib := func(k int64) float64 { return float64(k) / 1024 }
	r.resRows = append(r.resRows, fmt.Sprintf("| %s | %.1f MiB (%s) | %.1f MiB (%s) | %.1f s | %.1f s | %.1f s |",
		name, mib(relayPeak), verdict(mib(relayPeak) <= 40), mib(agentPeak), verdict(mib(agentPeak) <= 40),
		relayCPU.Seconds(), agentCPU.Seconds(), wall.Seconds()))
}

func (r *report) idle(n int, relayKiB, agentKiB float64) {
	total := relayKiB + agentKiB
	r.other = append(r.other, fmt.Sprintf("| Idle tunneled connections (%d held) | relay %.1f KiB + forwarder %.1f KiB = %.1f KiB per connection | ≤ 40 KiB (%s) |",
		n, relayKiB, agentKiB, total, verdict(total <= 40)))
}

func (r *report) reconnect(ms []float64) {
	var parts []string
	worst := 0.0
	for _, m := range ms {
		parts = append(parts, fmt.Sprintf("%.0f ms", m))
		worst = max(worst, m)
	}
	r.other = append(r.other, fmt.Sprintf("| Reconnect after relay restart (from relay ready to a served request) | %s | ≤ 1 s (%s) |",
		strings.Join(parts, ", "), verdict(worst <= 1000)))
}

func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Porthole benchmarks\n\n")
	fmt.Fprintf(&b, "- Date: %s\n- Machine: %s\n- Command: `%s`\n- %s\n", r.date, r.machine, r.command, r.tools)
	fmt.Fprintf(&b, "- Setup: relay and forwarders are the built `porthole` binaries (TLS + yamux on loopback); the upstreams run in their own process; direct and tunnel runs are interleaved and the median is shown.\n\n")
	fmt.Fprintf(&b, "| case | direct | tunnel | ratio | target |\n| --- | --- | --- | --- | --- |\n")
	for _, row := range r.rows {
		b.WriteString(row + "\n")
	}
	fmt.Fprintf(&b, "\n## Resources during the HTTP load\n\n| case | relay peak RSS | forwarder peak RSS | relay CPU | forwarder CPU | tunnel wall time |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, row := range r.resRows {
		b.WriteString(row + "\n")
	}
	fmt.Fprintf(&b, "\n## Connections and reconnects\n\n| case | result | target |\n| --- | --- | --- |\n")
	for _, row := range r.other {
		b.WriteString(row + "\n")
	}
	return b.String()
}
