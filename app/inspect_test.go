package app

import (
	"encoding/json"
	"errors"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"porthole/forwarder"
	"porthole/internal/desktoptest"
	tt "porthole/internal/tunneltest"
	"porthole/tray"
)

// decodeQR reads the QR code in img, as a phone's camera would, with zbar:
// gozxing's reader misses about one valid code in three hundred (the URL,
// and so the code, changes with the relay's port), which zbar reads.
func decodeQR(t *testing.T, img image.Image) string {
	t.Helper()
	desktoptest.Need(t, "zbarimg")
	file := filepath.Join(t.TempDir(), "qr.png")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(png.Encode(f, img), f.Close()); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", file).Output()
	if err != nil {
		t.Fatalf("no QR code: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestOnlineProfileShowsTrafficAndQRCode starts a profile and sends
// requests through it: the tray item counts them, the window shows the
// counters and a QR code that decodes to the public URL, and the
// inspector's API lists the profile's tunnel under the profile's name.
func TestOnlineProfileShowsTrafficAndQRCode(t *testing.T) {
	rc := tt.RelayConfig(t)
	rc.Domain = "tunnel.example" // a name a phone could look up
	srv := tt.StartRelay(t, rc)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") }))
	defer up.Close()
	a, _ := newTestApp(t)
	changes := rendered(a)
	refreshed := make(chan []tray.Item, 100)
	a.refreshed = func(items []tray.Item) { refreshed <- items }
	a.Start(true)
	p, _ := a.profiles.get(a.win.selected)
	p.Name, p.BuiltinRelay, p.RelayAddr, p.RelayFingerprint, p.Subdomain, p.Upstream = "web", false, srv.AgentAddr(), srv.Fingerprint(), "web", up.URL
	if err := a.saveProfile(p, "", ""); err != nil {
		t.Fatal(err)
	}
	a.win.selectProfile(p.ID)
	a.win.toggleSelected()
	var online forwarder.State
	for online.Phase != forwarder.Online {
		select {
		case s := <-changes:
			online = s.State
		case <-time.After(30 * time.Second):
			t.Fatal("the profile did not come online")
		}
	}
	publicURL := online.Forwarding[0].URL

	for range 2 {
		resp, err := tt.Client(srv).Get(publicURL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	// The tray and window show the count once the app has rendered it;
	// they follow the traffic by themselves.
	timeout := time.After(10 * time.Second)
	for counted := false; !counted; {
		select {
		case items := <-refreshed:
			counted = len(items) == 1 && items[0].Traffic.Requests == 2
		case <-timeout:
			t.Fatalf("no rendering with 2 requests; the tunnel counted %+v", a.engine.Metrics(p.ID).Totals())
		}
	}
	if item := trayItem(t, a, "web"); item.Label != "web — online at "+publicURL+" — 2 requests" {
		t.Errorf("tray item %q", item.Label)
	}
	if got := a.win.counters.Text; !strings.HasPrefix(got, "2 requests · 0 errors · ") || !strings.HasSuffix(got, " open connections") {
		t.Errorf("window counters %q", got)
	}
	if !a.win.live.Visible() {
		t.Error("the live panel is hidden")
	}
	shot := a.win.w.Canvas().Capture()
	if dir := os.Getenv("PORTHOLE_SCREENSHOT_DIR"); dir != "" {
		f, _ := os.Create(filepath.Join(dir, "window.png"))
		png.Encode(f, shot)
		f.Close()
	}
	if got := decodeQR(t, shot); got != publicURL {
		t.Errorf("the window's QR code reads %q, want %q", got, publicURL)
	}
	// An address only this computer can open has no QR code, and the
	// window says why.
	it, _ := a.win.item(p.ID)
	a.win.showLive(it, "http://web.localhost:7780")
	if a.win.qr.Visible() || a.win.scan.Text != "No QR code: only this computer can open web.localhost." {
		t.Errorf("QR code shown %v for a localhost address; the window says %q", a.win.qr.Visible(), a.win.scan.Text)
	}
	a.win.showLive(it, publicURL)
	if !a.win.qr.Visible() || !strings.HasPrefix(a.win.scan.Text, "Scan the code") {
		t.Errorf("QR code shown %v for %s; the window says %q", a.win.qr.Visible(), publicURL, a.win.scan.Text)
	}

	// The inspector serves the profile's tunnel, named by the profile.
	if a.InspectorURL() == "" {
		t.Fatal("no inspector")
	}
	resp, err := http.Get(a.InspectorURL() + "/api/tunnels")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Tunnels []struct {
			Name      string
			PublicURL string `json:"public_url"`
		}
	}
	json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if len(list.Tunnels) == 0 || list.Tunnels[0].Name != "web" || list.Tunnels[0].PublicURL != publicURL {
		t.Errorf("inspector tunnels: %+v", list.Tunnels)
	}
	if _, ok := findItem(a, "Inspect traffic…"); !ok {
		t.Error("the tray has no Inspect traffic… item")
	}
}

func findItem(a *App, label string) (int, bool) {
	for i, it := range a.menu(a.items()).Fyne().Items {
		if it.Label == label {
			return i, true
		}
	}
	return 0, false
}

// TestPhoneCannotOpen: a QR code is offered only for an address a phone's
// browser could open.
func TestPhoneCannotOpen(t *testing.T) {
	for _, c := range []struct{ url, why string }{
		{"https://web.tunnel.example", ""},
		{"http://web.tunnel.example:8080", ""},
		{"http://192.168.1.20:8080", ""},
		{"http://[2001:db8::1]:8080", ""},
		{"http://localhost:8080", "No QR code: only this computer can open localhost."},
		{"http://web.localhost:7780", "No QR code: only this computer can open web.localhost."},
		{"https://WEB.LOCALHOST.:7743", "No QR code: only this computer can open web.localhost."},
		{"http://127.0.0.1:7780", "No QR code: only this computer can open 127.0.0.1."},
		{"http://[::1]:7780", "No QR code: only this computer can open ::1."},
		{"http://0.0.0.0:7780", "No QR code: only this computer can open 0.0.0.0."},
		{"tcp://tunnel.example:20001", "No QR code: a phone's browser cannot open a tcp:// address."},
		{"tls://web.tunnel.example:443", "No QR code: a phone's browser cannot open a tls:// address."},
		{"::", "No QR code: the address is not a web address."},
	} {
		if got := phoneCannotOpen(c.url); got != c.why {
			t.Errorf("phoneCannotOpen(%q) = %q, want %q", c.url, got, c.why)
		}
	}
}
