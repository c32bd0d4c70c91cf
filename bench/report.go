package main

import (
	"fmt"
	"strings"
	"time"
)

// unit says how a figure is printed and which way is better.
type unit int

const (
	gbit     unit = iota // bits per second, printed in Gbit/s
	mbit                 // bits per second, printed in Mbit/s
	perSec               // requests per second
	duration             // nanoseconds; lower is better
)

func (u unit) format(v float64) string {
	switch u {
	case gbit:
		return fmt.Sprintf("%.2f Gbit/s", v/1e9)
	case mbit:
		return fmt.Sprintf("%.0f Mbit/s", v/1e6)
	case duration:
		d := time.Duration(v)
		switch {
		case d >= 10*time.Millisecond:
			return d.Round(100 * time.Microsecond).String()
		default:
			return d.Round(time.Microsecond).String()
		}
	default:
		return fmt.Sprintf("%.0f/s", v)
	}
}

func (u unit) lowerIsBetter() bool { return u == duration }

// target judges a tunnel figure against its direct counterpart; it returns
// the target's text and whether it is met.
type target func(direct, tunnel float64) (string, bool)

// atLeast is a ratio target for higher-is-better figures.
func atLeast(r float64) target {
	return func(d, t float64) (string, bool) { return fmt.Sprintf("≥ %.2f ×", r), t >= r*d }
}

// atMost is a ratio target for durations.
func atMost(r float64) target {
	return func(d, t float64) (string, bool) { return fmt.Sprintf("≤ %.0f ×", r), t <= r*d }
}

// below is an absolute target for durations.
func below(limit time.Duration, text string) target {
	return func(_, t float64) (string, bool) { return "≤ " + text, t <= float64(limit) }
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// row is one measured case: the direct figure (0 when there is none) and
// one figure per system, in the report's system order.
type row struct {
	name   string
	unit   unit
	direct float64
	values []float64
	target target
}

// table is a Markdown table of rows comparing the systems to direct.
type table struct {
	title, note string
	systems     []string
	rows        []row
}

func (t *table) add(r row) { t.rows = append(t.rows, r) }

func (t *table) markdown(b *strings.Builder) {
	fmt.Fprintf(b, "\n## %s\n\n", t.title)
	if t.note != "" {
		fmt.Fprintf(b, "%s\n\n", t.note)
	}
	head := []string{"case", "direct"}
	for i, s := range t.systems {
		head = append(head, s, "ratio")
		if i > 0 {
			head = append(head, "tunnel vs "+s)
		}
	}
	head = append(head, "target")
	fmt.Fprintf(b, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat(" --- |", len(head)))
	for _, r := range t.rows {
		cells := []string{r.name, "—"}
		if r.direct > 0 {
			cells[1] = r.unit.format(r.direct)
		}
		for i, v := range r.values {
			ratio := "—"
			if r.direct > 0 && v > 0 {
				ratio = fmt.Sprintf("%.2f ×", v/r.direct)
			}
			cells = append(cells, r.unit.format(v), ratio)
			if i > 0 {
				cells = append(cells, change(r.unit, r.values[0], v))
			}
		}
		goal := "—"
		if r.target != nil && len(r.values) > 0 {
			text, ok := r.target(r.direct, r.values[0])
			goal = fmt.Sprintf("%s (%s)", text, verdict(ok))
		}
		cells = append(cells, goal)
		fmt.Fprintf(b, "| %s |\n", strings.Join(cells, " | "))
	}
}

// change is how much better (+) or worse (−) the tunnel did than a
// baseline, in percent of the baseline; a loss of more than 10 % is marked.
func change(u unit, tunnel, baseline float64) string {
	if tunnel <= 0 || baseline <= 0 {
		return "—"
	}
	c := tunnel/baseline - 1
	if u.lowerIsBetter() {
		c = baseline/tunnel - 1
	}
	s := fmt.Sprintf("%+.0f %%", 100*c)
	if c < -0.10 {
		s += " (**worse**)"
	}
	return strings.Replace(s, "-", "−", 1)
}

// notes is a two-column table of figures that have no direct counterpart.
type notes struct {
	title, note string
	rows        [][3]string // case, result, target
}

func (n *notes) add(name, result, target string) {
	n.rows = append(n.rows, [3]string{name, result, target})
}

func (n *notes) markdown(b *strings.Builder) {
	fmt.Fprintf(b, "\n## %s\n\n", n.title)
	if n.note != "" {
		fmt.Fprintf(b, "%s\n\n", n.note)
	}
	fmt.Fprintf(b, "| case | result | target |\n| --- | --- | --- |\n")
	for _, r := range n.rows {
		if r[2] == "" {
			r[2] = "—"
		}
		fmt.Fprintf(b, "| %s | %s | %s |\n", r[0], r[1], r[2])
	}
}

// report is the whole run: a header and its sections in order.
type report struct {
	date, machine, command, tools, load string
	sections                            []interface{ markdown(*strings.Builder) }
}

func (r *report) add(s interface{ markdown(*strings.Builder) }) { r.sections = append(r.sections, s) }

func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Porthole benchmarks\n\n")
	fmt.Fprintf(&b, "- Date: %s\n- Machine: %s\n- Load average before the run: %s\n- Command: `%s`\n- %s\n", r.date, r.machine, r.load, r.command, r.tools)
	fmt.Fprintf(&b, "- Setup: relay and forwarders are the built `porthole` binaries (TLS + yamux); the upstreams run in their own process; direct and tunnel runs are interleaved and the median is shown.\n")
	for _, s := range r.sections {
		s.markdown(&b)
	}
	return b.String()
}
