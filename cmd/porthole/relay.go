package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"porthole/relay"
)

func runRelay(args []string, stdout, stderr io.Writer) error {
	def := relay.DefaultConfig()
	fs := newFlagSet("relay", stdout)
	addr := fs.String("addr", def.AgentAddr, "agent listener (TLS)")
	httpAddr := fs.String("http", def.HTTPAddr, "public HTTP listener; empty to disable")
	httpsAddr := fs.String("https", "", "public HTTPS and TLS-tunnel listener (SNI routed)")
	domain := fs.String("domain", def.Domain, "tunnels get hostnames NAME.DOMAIN")
	token := fs.String("token", "", "the one token agents must present")
	tokensFile := fs.String("tokens-file", "", "file of tokens, one per line, each optionally followed by its reserved names")
	tcpPorts := fs.String("tcp-ports", def.TCPPorts.String(), "port range for TCP tunnels, or 0 for any")
	cert := fs.String("tls-cert", "", "certificate (PEM); self-signed if not given")
	key := fs.String("tls-key", "", "private key (PEM) for --tls-cert")
	stateDir := fs.String("state-dir", "", "where the self-signed certificate is kept (default: user config dir)")
	acmeEmail := fs.String("acme-email", "", "get certificates from an ACME CA (Let's Encrypt by default), with this contact address")
	acmeCA := fs.String("acme-ca", "", "ACME directory URL (staging, or a private CA); turns ACME on")
	acmeCARoot := fs.String("acme-ca-root", "", "trust the ACME directory's HTTPS by this CA bundle (PEM), for a private CA")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	cfg := def
	cfg.AgentAddr, cfg.HTTPAddr, cfg.HTTPSAddr, cfg.Domain = *addr, *httpAddr, *httpsAddr, *domain
	cfg.TLSCertFile, cfg.TLSKeyFile = *cert, *key
	if cfg.TCPPorts, err = relay.ParsePortRange(*tcpPorts); err != nil {
		return usagef("--tcp-ports: %v", err)
	}
	switch {
	case *token != "" && *tokensFile != "":
		return usagef("--token and --tokens-file are mutually exclusive")
	case *token != "":
		cfg.Tokens = []relay.Token{{Secret: *token}}
	case *tokensFile != "":
		if cfg.Tokens, err = relay.ParseTokensFile(*tokensFile); err != nil {
			return usagef("%v", err)
		}
	}
	if *acmeEmail != "" || *acmeCA != "" {
		a := relay.DefaultACMEConfig()
		a.Email, a.CA = *acmeEmail, *acmeCA
		if *acmeCARoot != "" {
			if a.CARoots, err = readCertPool(*acmeCARoot); err != nil {
				return usagef("--acme-ca-root: %v", err)
			}
		}
		cfg.ACME = &a
	} else if *acmeCARoot != "" {
		return usagef("--acme-ca-root needs --acme-email or --acme-ca")
	}
	cfg.StateDir = *stateDir
	if cfg.StateDir == "" {
		dir, err := os.UserConfigDir()
		if err != nil {
			return fmt.Errorf("no state directory: %w (use --state-dir)", err)
		}
		cfg.StateDir = filepath.Join(dir, "porthole", "relay")
	}
	if cfg.Logger, err = newLogger(stderr, *logLevel); err != nil {
		return err
	}
	// Catch signals before announcing anything, so that a script that
	// stops the relay as soon as it printed its address gets a clean exit.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := relay.New(cfg)
	if err != nil {
		return usagef("%v", err)
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
	if fp := srv.Fingerprint(); fp != "" {
		fmt.Fprintf(stdout, "fingerprint: %s\n", fp)
	} else {
		fmt.Fprintf(stdout, "certificates: ACME for %s\n", cfg.Domain)
	}

	<-ctx.Done()
	stop()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	srv.Shutdown(sctx)
	return nil
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
