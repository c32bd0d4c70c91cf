package app

import (
	"image"
	"image/draw"
	"net/netip"
	"net/url"
	"strings"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"porthole/inspect"
	"porthole/tray"
)

// startInspector serves the traffic inspector and the agent API over the
// engine, on Options.WebAddr (127.0.0.1:4040, or the next free port up to
// 4049, by default). Without a free port the app runs without it.
func (a *App) startInspector(addr string) {
	if addr == "false" || a.inspect == nil {
		return
	}
	if addr == "" {
		addr = inspect.DefaultAddr
	}
	ln, err := inspect.Listen(addr)
	if err != nil {
		a.log.Warn("traffic inspector is off", "err", err)
		return
	}
	api := inspect.NewAPI(a.inspect, a.engine.API(a.profiles.all), a.log.With("part", "inspector"))
	a.web = inspect.Serve(ln, api, a.log)
	a.log.Info("traffic inspector", "url", a.web.URL())
}

// InspectorURL is the inspector's address, or "" when it is off.
func (a *App) InspectorURL() string {
	if a.web == nil {
		return ""
	}
	return a.web.URL()
}

// openInspector opens the inspector in the default browser. UI goroutine;
// the browser starts on its own.
func (a *App) openInspector() {
	u, err := url.Parse(a.InspectorURL())
	if err != nil {
		return
	}
	if err := a.fy.OpenURL(u); err != nil {
		a.notify("The inspector could not be opened", err.Error())
	}
}

// traffic fills in what each running profile's tunnel has carried.
func (a *App) traffic(items []tray.Item) {
	for i := range items {
		if m := a.engine.Metrics(items[i].ID); m != nil {
			items[i].Traffic = m.Totals()
		}
	}
}

// phoneCannotOpen says briefly why a phone could not open a public URL
// from its QR code, or "" if it could: a phone's browser opens http and
// https addresses, and none that names the computer it runs on (localhost,
// NAME.localhost, a loopback address), which for the phone is itself.
func phoneCannotOpen(publicURL string) string {
	u, err := url.Parse(publicURL)
	if err != nil || u.Hostname() == "" {
		return "No QR code: the address is not a web address."
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "No QR code: a phone's browser cannot open a " + u.Scheme + ":// address."
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	ip, err := netip.ParseAddr(host)
	if host == "localhost" || strings.HasSuffix(host, ".localhost") || err == nil && (ip.IsLoopback() || ip.IsUnspecified()) {
		return "No QR code: only this computer can open " + host + "."
	}
	return ""
}

// qrImage is the QR code of s, size pixels square, black on white with a
// quiet zone, for a phone to open.
func qrImage(s string, size int) (image.Image, error) {
	hints := map[gozxing.EncodeHintType]any{gozxing.EncodeHintType_MARGIN: 2}
	m, err := qrcode.NewQRCodeWriter().Encode(s, gozxing.BarcodeFormat_QR_CODE, size, size, hints)
	if err != nil {
		return nil, err
	}
	img := image.NewGray(m.Bounds())
	draw.Draw(img, img.Bounds(), m, m.Bounds().Min, draw.Src)
	return img, nil
}
