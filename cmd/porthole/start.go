package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"porthole/engine"
	"porthole/forwarder"
	"porthole/inspect"
	"porthole/settings"
)

// runStart runs saved profiles, the same ones the desktop app shows, until
// a signal arrives or none of them runs any more. It fails (exit 1) when
// the profiles file cannot be read, which it never changes, and when every
// profile failed.
func runStart(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("start", stdout)
	all := fs.Bool("all", false, "start every saved profile")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	webAddr := fs.String("web-addr", inspect.DefaultAddr, `inspector and agent API address ("false" turns them off)`)
	inspectOn := fs.Bool("inspect", true, "keep HTTP requests for the inspector (false: only count them)")
	names, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if *all == (len(names) > 0) {
		return usagef("name the profiles to start, or pass --all")
	}
	paths, err := settings.DefaultPaths()
	if err != nil {
		return err
	}
	data, err := (&settings.Store{Path: paths.Profiles()}).Load()
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

	web, err := listenWeb(*webAddr)
	if err != nil {
		return err
	}
	defer web.close()
	var store *inspect.Store
	if web.on() {
		store = inspect.NewStore(inspect.DefaultConfig())
	}
	local := &engine.LocalRelay{StateDir: paths.LocalRelay(), Logger: log}
	defer local.Close()
	ended := make(chan struct{}, 1)
	inspectorShown := false
	m := engine.New(engine.Config{
		Secrets:    settings.NewKeyring(),
		LocalRelay: local,
		Logger:     log,
		Inspect:    store,
		CountOnly:  !*inspectOn,
		OnChange: func(id string, s engine.Status) {
			switch {
			case s.Phase == forwarder.Online:
				i := slices.IndexFunc(profiles, func(p settings.Profile) bool { return p.ID == id })
				if i < 0 {
					return // a tunnel started over the API
				}
				var b strings.Builder
				for _, fw := range s.Forwarding {
					b.WriteString(forwardingLine(fw, profiles[i].Name))
				}
				if u := web.url(); u != "" && !inspectorShown {
					inspectorShown = true
					fmt.Fprintf(&b, "inspect %s\n", u)
				}
				io.WriteString(stdout, b.String())
			case !s.Running:
				select {
				case ended <- struct{}{}:
				default:
				}
			}
		},
	})
	web.serve(store, m.API(func() []settings.Profile { return profiles }), log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, p := range profiles {
		m.Start(p)
	}
	running := func() bool {
		return slices.ContainsFunc(profiles, func(p settings.Profile) bool { return m.Status(p.ID).Running })
	}
	for running() {
		select {
		case <-ctx.Done():
		case <-ended:
			continue
		}
		break
	}
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	m.Shutdown(sctx)

	var errs []error
	for _, p := range profiles {
		if s := m.Status(p.ID); s.Phase == forwarder.Failed {
			errs = append(errs, fmt.Errorf("%s: %w", p.Name, s.Err))
		}
	}
	if len(errs) == len(profiles) {
		return errors.Join(errs...)
	}
	return nil
}

// pick returns the profiles named (by name, case-insensitively, or by ID),
// each once however often it is named, in the order first named.
func pick(profiles []settings.Profile, names []string, all bool) ([]settings.Profile, error) {
	if all {
		if len(profiles) == 0 {
			return nil, usagef("there are no saved profiles")
		}
		return profiles, nil
	}
	var out []settings.Profile
	for _, n := range names {
		i := slices.IndexFunc(profiles, func(p settings.Profile) bool { return strings.EqualFold(p.Name, n) || p.ID == n })
		if i < 0 {
			var have []string
			for _, p := range profiles {
				have = append(have, fmt.Sprintf("%q", p.Name))
			}
			if len(have) == 0 {
				return nil, usagef("no profile named %q (there are no saved profiles)", n)
			}
			return nil, usagef("no profile named %q (saved: %s)", n, strings.Join(have, ", "))
		}
		if !slices.ContainsFunc(out, func(p settings.Profile) bool { return p.ID == profiles[i].ID }) {
			out = append(out, profiles[i])
		}
	}
	return out, nil
}
