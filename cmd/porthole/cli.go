package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Exit codes.
const (
	exitOK    = 0
	exitFatal = 1
	exitUsage = 2
)

const usage = `usage:
  porthole relay  [--addr 127.0.0.1:7835] [--http 127.0.0.1:8080] [--https ADDR]
                  [--domain localhost] (--token T | --tokens-file F | --no-auth) [--tcp-ports 20000-20100]
                  [--tls-cert F --tls-key F | --acme-email E [--acme-ca URL]] [--state-dir DIR]
                  [--admin 127.0.0.1:9090] [limits: porthole relay -h]
  porthole http UPSTREAM --relay HOST[:PORT] [--token T | --token-file F] [--relay-ca F | --relay-fingerprint FP]
                  [--name SUB | --url HOST] [--upstream-protocol http1|http2] [--upstream-tls-verify]
                  [--upstream-tls-verify-cas F] [--host-header rewrite|VALUE] [--basic-auth U:P]
                  [--web-addr 127.0.0.1:4040|false] [--inspect=false]
                  [--cidr-allow CIDR] [--cidr-deny CIDR] [--rate-limit N/m]
                  [--stream-window SIZE] [--max-backlog SIZE] [--client-backlog SIZE]
  porthole tcp UPSTREAM  ... [--remote-port N] [--proxy-protocol]
  porthole tls UPSTREAM  ... (--name SUB | --url HOST) [--terminate-cert F --terminate-key F] [--proxy-protocol]
  porthole start PROFILE... | --all [--web-addr 127.0.0.1:4040|false] [--inspect=false]
`

// usageError is bad usage: exit 2 with its one-line reason.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// run is main without the process: it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "relay":
		err = runRelay(rest, stdout, stderr)
	case "http", "tcp", "tls":
		err = runAgent(cmd, rest, stdout, stderr)
	case "start":
		err = runStart(rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		err = usagef("unknown command %q (want relay, http, tcp, tls or start)", cmd)
	}
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "porthole %s: %s\n", args[0], ue.msg)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "porthole %s: %v\n", args[0], err)
		return exitFatal
	}
}

// newFlagSet returns a flag set that reports errors as usageError and prints
// its defaults only for -h.
func newFlagSet(name string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fs.SetOutput(stdout)
		fmt.Fprintf(stdout, "usage of porthole %s:\n", name)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parseArgs parses flags that may come before or after the positional
// arguments, and returns the positional ones.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usagef("%v", err)
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, usagef("bad --log-level %q (want debug, info, warn or error)", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}
