// Command bench measures Porthole against a direct connection, in one run.
//
// On loopback: TCP throughput, HTTP requests per second and latency, large
// responses, the memory and CPU of the relay and forwarders, memory per idle
// tunneled connection, and reconnect time after a relay restart.
//
// With -wan, also over emulated agent–relay links (see allLinks): TCP with
// one and eight streams and a large HTTP transfer, each way; over link B,
// HTTP latency, the first byte on a new connection, reconnect, and the
// relay's memory under stalled public readers.
//
// It runs the built porthole binaries as a user would (TLS on), drives them
// with wrk and iperf3 when installed (Go load generators otherwise), prints
// Markdown tables, and stops by itself. With -baseline REV it also builds
// porthole as it was at a git revision and measures its loopback cases
// beside the working tree's, interleaved, so that a change is judged in one
// run.
//
//	go run ./bench [-wan] [-baseline main] [-duration 5s] [-out docs/BENCHMARKS.md]
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"porthole/internal/bytesize"
)

// analysisHeading starts the part of the -out file that the harness keeps.
const analysisHeading = "## Analysis"

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	serve := flag.String("serve-upstream", "", "internal: run the upstream servers on this address prefix and print their ports")
	var o options
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of each load run")
	flag.IntVar(&o.rounds, "rounds", 3, "direct/tunnel rounds per case (interleaved); the median is reported")
	flag.IntVar(&o.idle, "idle", 5000, "idle connections to hold through the tunnel (loopback)")
	loopback := flag.Bool("loopback", true, "measure on loopback")
	flag.BoolVar(&o.wan, "wan", false, "also measure over emulated links")
	links := flag.String("links", "ABCD", "emulated links to measure with -wan")
	o.download = 100 << 20
	flag.Var(bytesize.Value{N: &o.download}, "download", "size of each HTTP transfer over an emulated link")
	flag.IntVar(&o.stalled, "stalled", 50, "stalled public readers over link B")
	flag.DurationVar(&o.stallFor, "stall-time", 10*time.Second, "how long the stalled readers run before the relay is measured")
	flag.Var((*listFlag)(&o.relayFlags), "relay-flag", "extra flag for the relay under test (repeatable), e.g. -relay-flag=--stream-window=8MiB")
	flag.Var((*listFlag)(&o.agentFlags), "agent-flag", "extra flag for the agents under test (repeatable)")
	flag.DurationVar(&o.inspectorFill, "inspector-fill", 3*time.Minute, "longest load that fills and turns over the inspector's store before its cost is measured (0: measure it empty)")
	flag.StringVar(&o.baseline, "baseline", "", "also measure porthole as built from this git revision, on loopback")
	flag.BoolVar(&goLoad, "go-load", false, "use the Go load generators even where wrk and iperf3 are installed")
	out := flag.String("out", "", "also write the report to this Markdown file")
	flag.Parse()
	if *serve != "" {
		serveUpstream(*serve)
		return
	}
	log.SetFlags(0)
	log.SetPrefix("bench: ")
	o.loopback = *loopback
	var err error
	if o.links, err = parseLinks(*links); err != nil {
		log.Fatal(err)
	}
	load := loadAverage()
	h, err := setup(o)
	if err != nil {
		log.Fatal(err)
	}
	var once sync.Once
	stopAll = func() { once.Do(h.close) }
	// An interrupted run stops what it started too.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fatalf("interrupted")
	}()
	rep := &report{
		date:    time.Now().UTC().Format("2006-01-02"),
		machine: fmt.Sprintf("%d cores, %s, %s/%s", runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH),
		command: "go run ./bench " + strings.Join(os.Args[1:], " "),
		tools:   h.tools(),
		load:    load,
	}
	if o.loopback {
		h.loopback(rep)
	}
	if o.wan {
		h.wan(rep)
	}
	stopAll()
	rep.load += "; after: " + loadAverage()
	text := rep.markdown()
	fmt.Print(text)
	if *out != "" {
		// Keep the hand-written analysis that follows the generated tables.
		if old, err := os.ReadFile(*out); err == nil {
			if i := strings.Index(string(old), "\n"+analysisHeading); i >= 0 {
				text += string(old[i:])
			}
		}
		if err := os.WriteFile(*out, []byte(text), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// loadAverage is the machine's 1, 5 and 15 minute load averages.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], ", ")
}
