package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"porthole/engine"
	"porthole/forwarder"
	"porthole/settings"
)

// runStart runs saved profiles, the same ones the desktop app shows, until
// a signal arrives or every profile has failed.
func runStart(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("start", stdout)
	all := fs.Bool("all", false, "start every saved profile")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	names, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if *all == (len(names) > 0) {
		return usagef("name the profiles to start, or pass --all")
	}
	path, err := settings.DefaultPath()
	if err != nil {
		return err
	}
	store := &settings.Store{Path: path}
	data, err := store.Load()
	if err != nil {
		return err
	}
	profiles, err := pick(data.Profiles, names, *all)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}

	var mu sync.Mutex
	failed := map[string]error{}
	allFailed := make(chan struct{})
	byID := map[string]settings.Profile{}
	for _, p := range profiles {
		byID[p.ID] = p
	}
	local := &engine.LocalRelay{StateDir: filepath.Join(filepath.Dir(path), "local-relay"), Logger: log}
	defer local.Close()
	m := engine.New(engine.Config{
		Secrets:    settings.NewKeyring(),
		LocalRelay: local,
		Logger:     log,
		OnChange: func(id string, s forwarder.State) {
			p := byID[id]
			switch s.Phase {
			case forwarder.Online:
				var b strings.Builder
				for _, fw := range s.Forwarding {
					fmt.Fprintf(&b, "forwarding %s -> %s (%s)\n", fw.URL, fw.Upstream, p.Name)
				}
				io.WriteString(stdout, b.String())
			case forwarder.Failed:
				mu.Lock()
				failed[id] = fmt.Errorf("%s: %w", p.Name, s.Err)
				if len(failed) == len(profiles) {
					close(allFailed)
				}
				mu.Unlock()
			}
		},
	})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, p := range profiles {
		m.Start(p)
	}
	select {
	case <-ctx.Done():
	case <-allFailed:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	m.Shutdown(sctx)
	mu.Lock()
	defer mu.Unlock()
	if len(failed) == len(profiles) {
		var errs []error
		for _, p := range profiles {
			errs = append(errs, failed[p.ID])
		}
		return errors.Join(errs...)
	}
	return nil
}

func pick(profiles []settings.Profile, names []string, all bool) ([]settings.Profile, error) {
	if all {
		if len(profiles) == 0 {
			return nil, usagef("there are no saved profiles")
		}
		return profiles, nil
	}
	var out []settings.Profile
	for _, n := range names {
		found := false
		for _, p := range profiles {
			if strings.EqualFold(p.Name, n) || p.ID == n {
				out = append(out, p)
				found = true
				break
			}
		}
		if !found {
			var have []string
			for _, p := range profiles {
				have = append(have, fmt.Sprintf("%q", p.Name))
			}
			if len(have) == 0 {
				return nil, usagef("no profile named %q (there are no saved profiles)", n)
			}
			return nil, usagef("no profile named %q (saved: %s)", n, strings.Join(have, ", "))
		}
	}
	return out, nil
}
