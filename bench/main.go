// Command bench measures Porthole against a direct connection, in one run on
// loopback: TCP throughput, HTTP requests per second and latency, large
// responses, the memory and CPU of the relay and forwarders, memory per idle
// tunneled connection, and reconnect time after a relay restart. It runs the
// built porthole binaries as a user would (TLS on), drives them with wrk and
// iperf3 when installed (Go load generators otherwise), prints a Markdown
// table, and stops by itself.
//
//	go run ./bench [-duration 5s] [-idle 5000] [-out docs/BENCHMARKS.md]
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"strings"
	"time"
)

// analysisHeading starts the part of the -out file that the harness keeps.
const analysisHeading = "## Analysis"

func main() {
	serve := flag.String("serve-upstream", "", "internal: run the upstream servers on this address prefix and print their ports")
	duration := flag.Duration("duration", 5*time.Second, "length of each load run")
	rounds := flag.Int("rounds", 2, "direct/tunnel rounds per case (interleaved); the median is reported")
	idle := flag.Int("idle", 5000, "idle connections to hold through the tunnel")
	out := flag.String("out", "", "also write the report to this Markdown file")
	flag.Parse()
	if *serve != "" {
		serveUpstream(*serve)
		return
	}
	log.SetFlags(0)
	log.SetPrefix("bench: ")
	b, err := setup()
	if err != nil {
		log.Fatal(err)
	}
	defer b.close()
	rep := &report{
		date:    time.Now().UTC().Format("2006-01-02"),
		machine: fmt.Sprintf("%d cores, %s, %s/%s", runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH),
		command: "go run ./bench " + strings.Join(os.Args[1:], " "),
		tools:   b.tools(),
	}
	b.run(rep, *duration, *rounds, *idle)
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
