package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"porthole/forwarder"
	"porthole/inspect"
	"porthole/internal/bytesize"
	"porthole/wire"
)

// agentFlags are the flags shared by http, tcp and tls.
type agentFlags struct {
	relay, token, tokenFile, relayCA, relayFP, logLevel string
	webAddr                                             string
	inspect                                             bool
	window, maxBacklog, clientBacklog                   int64
}

func (a *agentFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.relay, "relay", "", "relay agent address HOST:PORT (required)")
	fs.StringVar(&a.token, "token", "", "auth token (or --token-file, or set PORTHOLE_TOKEN)")
	fs.StringVar(&a.tokenFile, "token-file", "", "read the auth token from this file, which keeps it out of the process list")
	fs.StringVar(&a.relayCA, "relay-ca", "", "trust the relay by this CA bundle (PEM)")
	fs.StringVar(&a.relayFP, "relay-fingerprint", "", "trust the relay by this SHA-256 certificate fingerprint")
	fs.StringVar(&a.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&a.webAddr, "web-addr", inspect.DefaultAddr, `inspector and agent API address ("false" turns them off)`)
	fs.BoolVar(&a.inspect, "inspect", true, "keep HTTP requests for the inspector (false: only count them)")
	def := forwarder.DefaultConfig()
	a.window, a.maxBacklog, a.clientBacklog = def.StreamWindow, def.MaxBacklog, def.ClientBacklog
	fs.Var(bytesize.Value{N: &a.window}, "stream-window",
		"receive window per stream for uploads, a `SIZE` from 256KiB to 1GiB: one upload moves at most this much per round trip to the relay")
	fs.Var(bytesize.Value{N: &a.maxBacklog}, "max-backlog",
		"`SIZE` the agent may hold, in all, of uploads its upstreams have not read yet; past it, the public client holding the most loses its connection furthest behind (0: no bound)")
	fs.Var(bytesize.Value{N: &a.clientBacklog}, "client-backlog",
		"`SIZE` of the backlog one public client address may hold, at least --stream-window; past it, its connection furthest behind is closed")
}

func (a *agentFlags) apply(cfg *forwarder.Config) error {
	if a.relay == "" {
		return usagef("--relay HOST[:PORT] is required")
	}
	if a.relayCA != "" && a.relayFP != "" {
		return usagef("--relay-ca and --relay-fingerprint are mutually exclusive")
	}
	cfg.RelayAddr, cfg.RelayCAFile, cfg.RelayFingerprint = a.relay, a.relayCA, a.relayFP
	cfg.StreamWindow, cfg.MaxBacklog, cfg.ClientBacklog = a.window, a.maxBacklog, a.clientBacklog
	switch {
	case a.token != "" && a.tokenFile != "":
		return usagef("--token and --token-file are mutually exclusive")
	case a.tokenFile != "":
		tok, err := readTokenFile(a.tokenFile)
		if err != nil {
			return err
		}
		cfg.Token = tok
	case a.token != "":
		cfg.Token = a.token
	default:
		cfg.Token = os.Getenv("PORTHOLE_TOKEN")
	}
	return nil
}

// readTokenFile reads a token kept in a file: its first line, trimmed. Its
// errors name the file, never the token.
func readTokenFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	tok := strings.TrimSpace(line)
	if tok == "" {
		return "", fmt.Errorf("--token-file %s: the first line is empty", path)
	}
	return tok, nil
}

// agentFlagNames names the flag of each forwarder Config and Tunnel field,
// to word its errors.
var agentFlagNames = map[string]string{
	"RelayAddr":         "--relay",
	"Token":             "--token",
	"RelayCAFile":       "--relay-ca",
	"RelayFingerprint":  "--relay-fingerprint",
	"Upstream":          "UPSTREAM",
	"Name":              "--name",
	"RemotePort":        "--remote-port",
	"UpstreamCAFile":    "--upstream-tls-verify-cas",
	"BasicAuth":         "--basic-auth",
	"HostHeader":        "--host-header",
	"TerminateCertFile": "--terminate-cert",
	"TerminateKeyFile":  "--terminate-key",
	"Hostname":          "--url",
	"CIDRAllow":         "--cidr-allow",
	"CIDRDeny":          "--cidr-deny",
	"RateLimit":         "--rate-limit",
	"ProxyProtocol":     "--proxy-protocol",
	"StreamWindow":      "--stream-window",
	"MaxBacklog":        "--max-backlog",
	"ClientBacklog":     "--client-backlog",
}

// agentConfigError words a refused forwarder Config in flags. A file that
// cannot be read or used is a runtime failure; anything else is bad usage.
func agentConfigError(err error) error {
	var ce *forwarder.FieldError
	if !errors.As(err, &ce) {
		return err
	}
	msg := err.Error()
	if name, ok := agentFlagNames[ce.Field]; ok && name != "UPSTREAM" {
		msg = name + ": " + msg
	}
	var fe *forwarder.FileError
	if errors.As(err, &fe) {
		return errors.New(msg)
	}
	return usagef("%s", msg)
}

func runAgent(kind string, args []string, stdout, stderr io.Writer) error {
	proto, _ := wire.ParseProto(kind)
	fs := newFlagSet(kind, stdout)
	var af agentFlags
	af.register(fs)
	var t forwarder.Tunnel
	var upstreamProtocol string
	fs.StringVar(&t.Name, "name", "", "subdomain to ask for (random if empty)")
	fs.BoolVar(&t.UpstreamTLSVerify, "upstream-tls-verify", false, "verify the upstream's TLS certificate")
	fs.StringVar(&t.UpstreamCAFile, "upstream-tls-verify-cas", "", "verify the upstream against this CA bundle (PEM)")
	if proto == wire.ProtoHTTP {
		fs.StringVar(&upstreamProtocol, "upstream-protocol", "http1", "http1, or http2 (h2c prior knowledge; ALPN for https)")
		fs.StringVar(&t.HostHeader, "host-header", "", `Host sent upstream: "rewrite" for the upstream's host, or a literal value`)
		fs.StringVar(&t.BasicAuth, "basic-auth", "", "require USER:PASSWORD from public clients")
	}
	if proto == wire.ProtoTCP {
		fs.IntVar(&t.RemotePort, "remote-port", 0, "public port to ask for (any if 0)")
	}
	if proto == wire.ProtoTLS {
		fs.StringVar(&t.TerminateCertFile, "terminate-cert", "", "terminate public TLS at the agent with this certificate")
		fs.StringVar(&t.TerminateKeyFile, "terminate-key", "", "key for --terminate-cert")
	}
	var access accessFlags
	access.register(fs, proto)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := access.apply(&t); err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one UPSTREAM (a port, host:port or URL), got %d arguments", len(pos))
	}
	t.Proto, t.Upstream = proto, pos[0]
	switch upstreamProtocol {
	case "", "http1":
	case "http2":
		t.UpstreamHTTP2 = true
	default:
		return usagef("bad --upstream-protocol %q (want http1 or http2)", upstreamProtocol)
	}
	if proto == wire.ProtoTLS && t.Name == "" && t.Hostname == "" {
		return usagef("--name (or --url) is required for tls tunnels")
	}
	cfg := forwarder.DefaultConfig()
	if err := af.apply(&cfg); err != nil {
		return err
	}
	t.Label = "command_line" // ngrok's name for the tunnel of the command line
	t.NoInspect = !af.inspect
	cfg.Tunnels = []forwarder.Tunnel{t}
	if cfg.Logger, err = newLogger(stderr, af.logLevel); err != nil {
		return err
	}
	web, err := listenWeb(af.webAddr)
	if err != nil {
		return err
	}
	if web.on() {
		cfg.Inspect = inspect.NewStore(inspect.DefaultConfig())
	}
	cfg.OnState = printForwarding(stdout, web)
	f, err := forwarder.New(cfg)
	if err != nil {
		web.close()
		return agentConfigError(err)
	}
	web.serve(cfg.Inspect, f.InspectAgent(), cfg.Logger)
	defer web.close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return f.Run(ctx)
}

// web is the inspector: its listener, then its server. It is off, with
// neither, for --web-addr=false, and when every default port is taken;
// then noPort says why.
type web struct {
	ln     net.Listener
	srv    *inspect.Server
	noPort error
}

// listenWeb opens the inspector's address. The default address moves up to
// the next free port; if none is free, the agent runs without the
// inspector, and serve warns of it: a command that fails before it serves
// prints its one line of error alone. An address given explicitly must work.
func listenWeb(addr string) (*web, error) {
	if addr == "false" {
		return &web{}, nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, usagef("bad --web-addr %q: want HOST:PORT or false", addr)
	}
	ln, err := inspect.Listen(addr)
	switch {
	case err == nil:
		return &web{ln: ln}, nil
	case addr == inspect.DefaultAddr:
		return &web{noPort: err}, nil
	}
	return nil, fmt.Errorf("inspector: %w", err)
}

// on reports whether the inspector has a listener to serve on.
func (w *web) on() bool { return w.ln != nil }

// serve serves the inspector and the agent API in the background, or warns
// that the inspector is off for want of a free port.
func (w *web) serve(store *inspect.Store, agent inspect.Agent, log *slog.Logger) {
	switch {
	case w.noPort != nil:
		log.Warn("inspector is off: no free port", "err", w.noPort)
	case w.on():
		w.srv = inspect.Serve(w.ln, inspect.NewAPI(store, agent, log.With("part", "inspector")), log)
	}
}

func (w *web) close() {
	switch {
	case w.srv != nil:
		w.srv.Close()
	case w.ln != nil:
		w.ln.Close()
	}
}

// url is the inspector's address, or "" when it is off.
func (w *web) url() string {
	if !w.on() {
		return ""
	}
	return "http://" + w.ln.Addr().String()
}

// printForwarding prints one "forwarding URL -> UPSTREAM" line per public
// address each time the tunnel comes online, and once a tunnel added over
// the API is bound; after the first lines, the inspector's address as
// "inspect URL".
func printForwarding(w io.Writer, web *web) func(forwarder.State) {
	printed := map[forwarder.Forwarding]bool{}
	inspectorShown := false
	return func(s forwarder.State) {
		if s.Phase != forwarder.Online {
			clear(printed)
			return
		}
		var b strings.Builder
		for _, fw := range s.Forwarding {
			if !printed[fw] {
				printed[fw] = true
				b.WriteString(forwardingLine(fw, ""))
			}
		}
		if u := web.url(); u != "" && !inspectorShown {
			inspectorShown = true
			fmt.Fprintf(&b, "inspect %s\n", u)
		}
		io.WriteString(w, b.String())
	}
}

// forwardingLine is the line that announces a public address:
// "forwarding PUBLIC_URL -> UPSTREAM", followed by " (PROFILE)" for a saved
// profile. Scripts read these lines.
func forwardingLine(fw forwarder.Forwarding, profile string) string {
	line := "forwarding " + fw.URL + " -> " + fw.Upstream
	if profile != "" {
		line += " (" + profile + ")"
	}
	return line + "\n"
}
