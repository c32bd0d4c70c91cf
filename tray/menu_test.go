package tray

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"fyne.io/fyne/v2"

	"porthole/engine"
	"porthole/forwarder"
	"porthole/inspect"
	"porthole/wire"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// TestStatus words each status twice: briefly in the menu, in full in the
// settings window.
func TestStatus(t *testing.T) {
	long := errors.New(strings.Repeat("x", 200))
	refused := &forwarder.DialError{Addr: "r:7835", Err: syscall.ECONNREFUSED}
	cases := []struct {
		state       forwarder.State
		label, full string
	}{
		{forwarder.State{}, "stopped", "stopped"},
		{forwarder.State{Phase: forwarder.Connecting}, "connecting…", "connecting…"},
		{forwarder.State{Phase: forwarder.Online, Forwarding: []forwarder.Forwarding{{URL: "http://app.localhost:7780"}}},
			"online at http://app.localhost:7780 — 0 requests", "online at http://app.localhost:7780"},
		{forwarder.State{Phase: forwarder.Online}, "online — 0 requests", "online"},
		{forwarder.State{Phase: forwarder.Reconnecting, RetryAt: now.Add(2500 * time.Millisecond), Err: refused},
			"reconnecting…", "reconnecting in 3 s — Cannot reach the relay at r:7835: nothing accepts connections there."},
		{forwarder.State{Phase: forwarder.Reconnecting, RetryAt: now.Add(time.Second), Err: fmt.Errorf("%w: %w", forwarder.ErrSessionLost, io.EOF)},
			"reconnecting…", "reconnecting in 1 s — The connection to the relay was lost."},
		{forwarder.State{Phase: forwarder.Reconnecting, RetryAt: now.Add(-time.Second)}, "reconnecting…", "reconnecting…"},
		// Relay refusals in the words the settings form shows at its
		// fields, never as codes.
		{forwarder.State{Phase: forwarder.Failed, Err: fmt.Errorf("handshake: %w", wire.Errorf(wire.CodeAuthFailed, "authentication failed"))},
			"error: Token: Authentication failed. Check the token and type it again.",
			"error: Token: Authentication failed. Check the token and type it again."},
		{forwarder.State{Phase: forwarder.Failed, Err: wire.Errorf(wire.CodeTunnelLimit, "this session holds 16 tunnels already")},
			"error: This session holds 16 tunnels already.", "error: This session holds 16 tunnels already."},
		{forwarder.State{Phase: forwarder.Failed, Err: long}, "error: X" + strings.Repeat("x", 78) + "…", "error: X" + strings.Repeat("x", 199) + "."},
		{forwarder.State{Phase: forwarder.Stopped}, "stopped", "stopped"},
	}
	for _, c := range cases {
		s := engine.Status{State: c.state}
		if got := Label(Item{Name: "p", Status: s}); got != "p — "+c.label {
			t.Errorf("Label(%v) = %q, want %q", c.state.Phase, got, "p — "+c.label)
		}
		if got := Status(s, now); got != c.full {
			t.Errorf("Status(%v) = %q, want %q", c.state.Phase, got, c.full)
		}
	}
}

// TestMenuDoesNotCountDown: while a profile waits to reconnect, the menu
// stays the same from one second to the next, so that the app has no
// reason to rebuild it (which would close it under the user's pointer).
func TestMenuDoesNotCountDown(t *testing.T) {
	items := []Item{{ID: "w", Name: "web", Status: engine.Status{Running: true, State: forwarder.State{
		Phase: forwarder.Reconnecting, RetryAt: time.Now().Add(5 * time.Second), Err: errors.New("session lost")}}}}
	first := labels(Menu(items, false, Actions{}))
	items[0].Status.RetryAt = time.Now().Add(4 * time.Second)
	if again := labels(Menu(items, false, Actions{})); strings.Join(again, "\n") != strings.Join(first, "\n") {
		t.Errorf("the menu changed with the countdown:\n%v\n%v", first, again)
	}
}

// labels flattens a menu for comparison: "[x] " marks checked items, "---"
// separators, "(off) " disabled ones. It reads the menu as Fyne's tray
// gets it, so that both ways of showing it are checked at once.
func labels(m Model) []string {
	var out []string
	for _, it := range m.Fyne().Items {
		switch {
		case it.IsSeparator:
			out = append(out, "---")
		case it.Checked:
			out = append(out, "[x] "+it.Label)
		case it.Disabled:
			out = append(out, "(off) "+it.Label)
		default:
			out = append(out, it.Label)
		}
	}
	return out
}

func TestMenu(t *testing.T) {
	online := forwarder.State{Phase: forwarder.Online, Forwarding: []forwarder.Forwarding{
		{URL: "http://web.localhost:7780"}, {URL: "https://web.localhost:7743"}}}
	cases := []struct {
		name  string
		items []Item
		login bool
		want  []string
	}{
		{"no profiles", nil, false, []string{
			"(off) No tunnels yet", "---", "Settings…", "Start at login", "---", "Quit"}},
		{"stopped and online", []Item{
			{ID: "a", Name: "api"},
			{ID: "w", Name: "web", Status: engine.Status{State: online, Running: true}, Traffic: inspect.Totals{Requests: 12, Conns: 3}},
		}, true, []string{
			"api — stopped",
			"[x] web — online at http://web.localhost:7780 — 12 requests",
			"---", "Copy http://web.localhost:7780", "Copy https://web.localhost:7743",
			"Settings…", "[x] Start at login", "---", "Quit"}},
		{"failed is not checked, connecting is", []Item{
			{ID: "a", Name: "api", Status: engine.Status{State: forwarder.State{Phase: forwarder.Failed, Err: errors.New("name taken")}}},
			{ID: "b", Name: "db", Status: engine.Status{State: forwarder.State{Phase: forwarder.Connecting}, Running: true}},
		}, false, []string{
			"api — error: Name taken.", "[x] db — connecting…",
			"---", "Settings…", "Start at login", "---", "Quit"}},
		{"tcp counts connections", []Item{
			{ID: "d", Name: "db", Status: engine.Status{Running: true, State: forwarder.State{Phase: forwarder.Online,
				Forwarding: []forwarder.Forwarding{{URL: "tcp://localhost:20001"}}}}, Traffic: inspect.Totals{Conns: 1}},
		}, false, []string{
			"[x] db — online at tcp://localhost:20001 — 1 connection",
			"---", "Copy tcp://localhost:20001",
			"Settings…", "Start at login", "---", "Quit"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := labels(Menu(c.items, c.login, Actions{}))
			if c.name == "stopped and online" {
				// With an inspector, its item comes before Settings….
				withInspect := labels(Menu(c.items, c.login, Actions{Inspect: func() {}}))
				if i := slices.Index(withInspect, "Inspect traffic…"); i < 0 || withInspect[i+1] != "Settings…" {
					t.Errorf("menu with an inspector: %v", withInspect)
				}
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("menu:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

func TestMenuActions(t *testing.T) {
	var toggled, copied string
	var settings, quit, inspected bool
	var login *bool
	a := Actions{
		Toggle:          func(id string) { toggled = id },
		CopyURL:         func(u string) { copied = u },
		OpenSettings:    func() { settings = true },
		SetStartAtLogin: func(on bool) { login = &on },
		Quit:            func() { quit = true },
		Inspect:         func() { inspected = true },
	}
	m := Menu([]Item{{ID: "w", Name: "web", Status: engine.Status{Running: true, State: forwarder.State{
		Phase: forwarder.Online, Forwarding: []forwarder.Forwarding{{URL: "http://web.localhost:7780"}}}}}}, false, a)
	byLabel := map[string]*fyne.MenuItem{}
	for _, it := range m.Fyne().Items {
		byLabel[it.Label] = it
	}
	byLabel["web — online at http://web.localhost:7780 — 0 requests"].Action()
	byLabel["Inspect traffic…"].Action()
	byLabel["Copy http://web.localhost:7780"].Action()
	byLabel["Settings…"].Action()
	byLabel["Start at login"].Action()
	byLabel["Quit"].Action()
	if toggled != "w" || copied != "http://web.localhost:7780" || !settings || !quit || login == nil || !*login || !inspected {
		t.Errorf("toggled %q copied %q settings %v quit %v login %v", toggled, copied, settings, quit, login)
	}
	if !byLabel["Quit"].IsQuit {
		t.Error("Quit is not the menu's quit item, so Fyne would add its own")
	}
}

// TestLabelsAreValidUTF8 builds menus whose names and errors are long and
// full of multi-byte characters: every label is valid UTF-8 (D-Bus refuses
// anything else) and cut to a bounded length.
func TestLabelsAreValidUTF8(t *testing.T) {
	long := func(unit string, n int) string { return strings.Repeat(unit, n) }
	var items []Item
	for i, unit := range []string{"é", "日本", "🚇", "a\u0301", "x", "\xff"} {
		for n := 1; n < 120; n += 7 {
			items = append(items,
				Item{ID: "n", Name: long(unit, n), Status: engine.Status{State: forwarder.State{Phase: forwarder.Online,
					Forwarding: []forwarder.Forwarding{{URL: "http://" + long("x", i) + ".localhost"}}}, Running: true}},
				Item{ID: "e", Name: "p", Status: engine.Status{State: forwarder.State{Phase: forwarder.Failed, Err: errors.New(long(unit, n))}}},
			)
		}
	}
	for _, it := range Menu(items, false, Actions{}).Fyne().Items {
		if !utf8.ValidString(it.Label) {
			t.Errorf("invalid UTF-8 label %q", it.Label)
		}
		if n := utf8.RuneCountInString(it.Label); n > maxName+len(" — error: ")+maxError {
			t.Errorf("label of %d characters: %q", n, it.Label)
		}
	}
	if got := Label(Item{Name: "p", Status: engine.Status{State: forwarder.State{Phase: forwarder.Failed, Err: errors.New(long("é", 100))}}}); got != "p — error: É"+long("é", maxError-2)+"…" {
		t.Errorf("cut error = %q", got)
	}
}
