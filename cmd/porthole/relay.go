package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"porthole/internal/bytesize"
	"porthole/relay"
	"porthole/settings"
)

// relayFlags names the flag of each relay Config field, to word its errors.
var relayFlags = map[string]string{
	"AgentAddr":            "--addr",
	"HTTPAddr":             "--http",
	"HTTPSAddr":            "--https",
	"Domain":               "--domain",
	"Tokens":               "--token/--tokens-file",
	"NoAuth":               "--no-auth",
	"TCPPorts":             "--tcp-ports",
	"TLSCertFile":          "--tls-cert",
	"TLSKeyFile":           "--tls-key",
	"StateDir":             "--state-dir",
	"ACME":                 "--acme-email/--acme-ca",
	"NameGrace":            "--name-grace",
	"ShutdownGrace":        "--shutdown-grace",
	"ReadHeaderTimeout":    "--read-header-timeout",
	"HandshakeTimeout":     "--handshake-timeout",
	"MaxHandshakes":        "--max-handshakes",
	"MaxHandshakesPerIP":   "--max-handshakes-per-ip",
	"StreamsPerSession":    "--max-streams",
	"MaxTunnels":           "--max-tunnels",
	"MaxTCPPorts":          "--max-tcp-ports",
	"ControlRate":          "--control-rate",
	"ClientConnsPerTunnel": "--max-client-conns",
	"UnroutedConnsPerIP":   "--max-unrouted-conns",
	"StreamWindow":         "--stream-window",
	"StallTimeout":         "--stall-timeout",
	"MaxBacklog":           "--max-backlog",
	"ClientBacklog":        "--client-backlog",
}

func runRelay(args []string, stdout, stderr io.Writer) error {
	def := relay.DefaultConfig()
	cfg := def
	fs := newFlagSet("relay", stdout)
	fs.StringVar(&cfg.AgentAddr, "addr", def.AgentAddr, "agent listener (TLS)")
	fs.StringVar(&cfg.HTTPAddr, "http", def.HTTPAddr, "public HTTP listener; empty to disable")
	fs.StringVar(&cfg.HTTPSAddr, "https", "", "public HTTPS and TLS-tunnel listener (SNI routed)")
	fs.StringVar(&cfg.Domain, "domain", def.Domain, "tunnels get hostnames NAME.DOMAIN")
	token := optionalString(fs, "token", "the one token agents must present")
	tokensFile := fs.String("tokens-file", "", "file of tokens, one per line, each optionally followed by its reserved names")
	fs.BoolVar(&cfg.NoAuth, "no-auth", false, "accept any agent, without a token; only when every listener is on loopback")
	tcpPorts := fs.String("tcp-ports", def.TCPPorts.String(), "port range for TCP tunnels, or 0 for any")
	fs.StringVar(&cfg.TLSCertFile, "tls-cert", "", "certificate (PEM); self-signed if not given")
	fs.StringVar(&cfg.TLSKeyFile, "tls-key", "", "private key (PEM) for --tls-cert")
	fs.StringVar(&cfg.StateDir, "state-dir", "", "where the self-signed certificate is kept (default: user config dir)")
	acmeEmail := fs.String("acme-email", "", "get certificates from an ACME CA (Let's Encrypt by default), with this contact address")
	acmeCA := fs.String("acme-ca", "", "ACME directory URL (staging, or a private CA); turns ACME on")
	acmeCARoot := fs.String("acme-ca-root", "", "trust the ACME directory's HTTPS by this CA bundle (PEM), for a private CA")
	admin := fs.String("admin", "", "admin listener for /metrics, /healthz and /readyz (off if empty; keep it private)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	// Limits; docs/PROTOCOL.md has the table.
	fs.DurationVar(&cfg.NameGrace, "name-grace", def.NameGrace, "how long a disconnected agent's names stay reserved for its token")
	fs.DurationVar(&cfg.ShutdownGrace, "shutdown-grace", def.ShutdownGrace, "how long a stopping relay waits for in-flight requests")
	fs.DurationVar(&cfg.ReadHeaderTimeout, "read-header-timeout", def.ReadHeaderTimeout, "time for a public client to send its request head (or TLS ClientHello)")
	fs.DurationVar(&cfg.HandshakeTimeout, "handshake-timeout", def.HandshakeTimeout, "time for an agent to finish TLS, its hello and its control stream")
	fs.IntVar(&cfg.MaxHandshakes, "max-handshakes", def.MaxHandshakes, "agent connections in their handshake at once (beyond it, the oldest of the busiest network is dropped)")
	fs.IntVar(&cfg.MaxHandshakesPerIP, "max-handshakes-per-ip", def.MaxHandshakesPerIP, "agent connections in their handshake at once from one address")
	fs.IntVar(&cfg.StreamsPerSession, "max-streams", def.StreamsPerSession, "public connections carried to one agent at once")
	fs.IntVar(&cfg.MaxTunnels, "max-tunnels", def.MaxTunnels, "tunnels one agent session may bind")
	fs.IntVar(&cfg.MaxTCPPorts, "max-tcp-ports", def.MaxTCPPorts, "TCP ports one agent session may hold")
	fs.Float64Var(&cfg.ControlRate, "control-rate", def.ControlRate, "control messages per second from one agent")
	fs.IntVar(&cfg.ClientConnsPerTunnel, "max-client-conns", def.ClientConnsPerTunnel, "connections one client address may have open to one tunnel")
	fs.IntVar(&cfg.UnroutedConnsPerIP, "max-unrouted-conns", def.UnroutedConnsPerIP, "connections one client address may have open that reach no tunnel (being routed, or answered by the relay's own pages)")
	fs.Var(bytesize.Value{N: &cfg.StreamWindow}, "stream-window",
		"receive window per stream for downloads, a `SIZE` from 256KiB to 1GiB: one download moves at most this much per round trip to the agent, and a public client that stops reading holds up to this much in the relay")
	fs.DurationVar(&cfg.StallTimeout, "stall-timeout", def.StallTimeout, "close a public connection that accepts no bytes for this long (0: never)")
	fs.Var(bytesize.Value{N: &cfg.MaxBacklog}, "max-backlog",
		"`SIZE` the relay may hold, in all, of downloads public clients have not read yet; past it, the client holding the most loses its connection furthest behind (0: no bound)")
	fs.Var(bytesize.Value{N: &cfg.ClientBacklog}, "client-backlog",
		"`SIZE` of the backlog one client address (IPv4, or IPv6 /64) may hold, at least --stream-window; past it, its connection furthest behind is closed")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	cfg.AdminAddr = *admin
	if cfg.TCPPorts, err = relay.ParsePortRange(*tcpPorts); err != nil {
		return usagef("--tcp-ports: %v", err)
	}
	switch {
	case token.set && *tokensFile != "":
		return usagef("--token and --tokens-file are mutually exclusive")
	case token.set && token.value == "":
		return usagef("--token is empty (an unset variable?); give a token, or --no-auth for a relay on loopback")
	case token.set:
		cfg.Tokens = []relay.Token{{Secret: token.value}}
	case *tokensFile != "":
		if cfg.Tokens, err = relay.ParseTokensFile(*tokensFile); err != nil {
			return err
		}
	}
	if *acmeEmail != "" || *acmeCA != "" {
		a := relay.DefaultACMEConfig()
		a.Email, a.CA = *acmeEmail, *acmeCA
		if *acmeCARoot != "" {
			if a.CARoots, err = readCertPool(*acmeCARoot); err != nil {
				return fmt.Errorf("--acme-ca-root: %w", err)
			}
		}
		cfg.ACME = &a
	} else if *acmeCARoot != "" {
		return usagef("--acme-ca-root needs --acme-email or --acme-ca")
	}
	if cfg.StateDir == "" {
		paths, err := settings.DefaultPaths()
		if err != nil {
			return fmt.Errorf("no state directory: %w (use --state-dir)", err)
		}
		cfg.StateDir = paths.Relay()
	}
	if cfg.Logger, err = newLogger(stderr, *logLevel); err != nil {
		return err
	}
	// Catch signals before announcing anything, so that a script that
	// stops the relay as soon as it printed its address gets a clean exit.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	srv, err := relay.New(cfg)
	if err != nil {
		return relayConfigError(err)
	}
	if err := srv.Start(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "agents: %s\n", srv.AgentAddr())
	if a := srv.HTTPAddr(); a != "" {
		fmt.Fprintf(stdout, "http: %s\n", a)
	}
	if a := srv.HTTPSAddr(); a != "" {
		fmt.Fprintf(stdout, "https: %s\n", a)
	}
	if a := srv.AdminAddr(); a != "" {
		fmt.Fprintf(stdout, "admin: %s\n", a)
	}
	if fp := srv.Fingerprint(); fp != "" {
		fmt.Fprintf(stdout, "fingerprint: %s\n", fp)
	} else {
		fmt.Fprintf(stdout, "certificates: ACME for %s\n", cfg.Domain)
	}

	for running := true; running; {
		select {
		case <-hup:
			reload(srv, *tokensFile, cfg.TLSCertFile != "", stdout, cfg.Logger)
		case <-ctx.Done():
			running = false
		}
	}
	stop()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	srv.Shutdown(sctx)
	return nil
}

// reload re-reads, on SIGHUP, the tokens file and the certificate files
// the relay was started with.
func reload(srv *relay.Server, tokensFile string, certFiles bool, stdout io.Writer, log *slog.Logger) {
	if tokensFile == "" && !certFiles {
		log.Warn("SIGHUP: nothing to reload (no --tokens-file, no --tls-cert)")
		return
	}
	if certFiles {
		reloadCertificate(srv, stdout, log)
	}
	if tokensFile != "" {
		reloadTokens(srv, tokensFile, stdout, log)
	}
}

// reloadCertificate re-reads --tls-cert and --tls-key, as after a renewal.
// A pair that does not load changes nothing; the relay keeps serving the
// certificate it has.
func reloadCertificate(srv *relay.Server, stdout io.Writer, log *slog.Logger) {
	fp, err := srv.ReloadCertificate()
	if err != nil {
		log.Error("SIGHUP: certificate not reloaded", "err", err)
		return
	}
	fmt.Fprintf(stdout, "certificate reloaded: fingerprint %s\n", fp)
}

// reloadTokens re-reads the tokens file. A file that cannot be read or is
// invalid changes nothing; the relay keeps its tokens.
func reloadTokens(srv *relay.Server, path string, stdout io.Writer, log *slog.Logger) {
	toks, err := relay.ParseTokensFile(path)
	if err != nil {
		log.Error("SIGHUP: tokens not reloaded", "err", err)
		return
	}
	res, err := srv.ReloadTokens(toks)
	if err != nil {
		log.Error("SIGHUP: tokens not reloaded", "err", err)
		return
	}
	fmt.Fprintf(stdout, "tokens reloaded: %d (%d added, %d removed), %d sessions ended\n",
		res.Tokens, res.Added, res.Removed, res.SessionsEnded)
}

// relayConfigError words a refused relay Config in flags: bad usage. Any
// other error of relay.New (an unreadable certificate) is a runtime failure.
func relayConfigError(err error) error {
	var ce *relay.ConfigError
	if !errors.As(err, &ce) {
		return err
	}
	if errors.Is(ce.Err, relay.ErrNoTokens) {
		return usagef("no token: give --token or --tokens-file, or --no-auth for a relay on loopback")
	}
	name, ok := relayFlags[ce.Field]
	if !ok {
		name = ce.Field
	}
	return usagef("%s: %v", name, ce.Err)
}

// optional is a string flag that knows whether it was given, so that an
// empty value (an unset shell variable) is told apart from no flag.
type optional struct {
	value string
	set   bool
}

func (o *optional) String() string { return o.value }
func (o *optional) Set(v string) error {
	o.value, o.set = v, true
	return nil
}

func optionalString(fs *flag.FlagSet, name, usage string) *optional {
	o := new(optional)
	fs.Var(o, name, usage)
	return o
}

// readCertPool reads a PEM bundle of CA certificates.
func readCertPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificates found", path)
	}
	return pool, nil
}
