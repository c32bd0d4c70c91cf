package e2e

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"porthole/inspect"
	tt "porthole/internal/tunneltest"
)

// browser starts headless Chromium (Debian's package) with a fresh profile
// and no background traffic. It skips when Chromium is missing, except
// under the full check (PORTHOLE_DESKTOP_TESTS=require), where it fails.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("PORTHOLE_DESKTOP_TESTS") == "require" {
			t.Fatal("chromium is required (scripts/deps.sh test installs it)")
		}
		t.Skip("chromium not installed")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// TestInspectorInABrowser opens the inspector in headless Chromium, sees a
// request arrive live, opens it, replays it with a changed header, and
// checks that the upstream got the change.
func TestInspectorInABrowser(t *testing.T) {
	ctx := browser(t)
	up, upstream := recordingUpstream(t)
	tun := httpTunnel(up.URL)
	tun.Label = "command_line"
	in := startInspected(t, inspect.DefaultConfig(), tun)
	publicURL := tt.URL(t, in.state, "http")

	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	// The page is up and its live stream connected.
	run("open the inspector",
		chromedp.Navigate(in.api.URL()),
		chromedp.WaitVisible(`#live:not(.off)`),
		chromedp.WaitVisible(`#tunnels li`),
	)

	// A request arrives while the page is open: it appears without a reload.
	req, _ := http.NewRequest("POST", publicURL+"/orders?id=7", strings.NewReader(`{"item":"tea","qty":2}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Test", "original")
	resp, err := tt.Client(in.srv).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	original := next(t, upstream)

	run("open the request as it arrives",
		chromedp.WaitVisible(`#requests li[data-id] .s2`), // its response (200) arrived too
		chromedp.Click(`#requests li[data-id]`),
		chromedp.WaitVisible(`#d-request pre`),
	)
	title, body := text(`#d-title`), text(`#d-request pre`)
	if title != "POST /orders?id=7" {
		t.Errorf("detail title %q", title)
	}
	if !strings.Contains(body, `"item": "tea"`) {
		t.Errorf("request body shown as %q, want pretty JSON", body)
	}

	// Copy as curl gives a command that repeats the request.
	run("copy as curl", chromedp.Click(`#copy-curl`))
	// The page keeps what it copied in #clipboard (the headless browser may
	// refuse the clipboard itself); wait until it is there.
	curl, err := chromedp.Run(ctx, chromedp.Poll[string](`document.getElementById("clipboard").value`))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"curl -X POST '" + publicURL + "/orders?id=7'", "-H 'X-Test: original'", `--data-binary '{"item":"tea","qty":2}'`} {
		if !strings.Contains(curl, want) {
			t.Errorf("curl command lacks %s:\n%s", want, curl)
		}
	}

	// Replay with a changed header.
	run("open the replay editor",
		chromedp.Click(`#replay-edit`),
		chromedp.WaitVisible(`#e-headers`),
	)
	headers, err := chromedp.Run(ctx, chromedp.Value(`#e-headers`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(headers, "X-Test: original") {
		t.Fatalf("editor headers:\n%s", headers)
	}
	run("send the changed request",
		chromedp.SetValue(`#e-headers`, strings.Replace(headers, "X-Test: original", "X-Test: changed", 1)),
		chromedp.Click(`#e-send`),
	)
	replayed := next(t, upstream)
	if replayed.Header.Get("X-Test") != "changed" {
		t.Errorf("the upstream got X-Test %q, want the change", replayed.Header.Get("X-Test"))
	}
	if replayed.Method != original.Method || replayed.URI != original.URI || replayed.Body != original.Body {
		t.Errorf("replay %+v, original %+v", replayed, original)
	}

	// The replay shows up in the list, marked as one.
	run("see the replay", chromedp.WaitVisible(`#requests li .badge`))
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	checkNotBlank(t, shot)
	if dir := os.Getenv("PORTHOLE_SCREENSHOT_DIR"); dir != "" {
		os.WriteFile(filepath.Join(dir, "inspector.png"), shot, 0o644)
	}
}

// TestInspectorShowsFormParts: a multipart form's fields show as a table of
// names and values, and a file part as its name, type and size, not as the
// body's bytes.
func TestInspectorShowsFormParts(t *testing.T) {
	ctx := browser(t)
	up, upstream := recordingUpstream(t)
	in := startInspected(t, inspect.DefaultConfig(), httpTunnel(up.URL))
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	mw.WriteField("title", "Green tea")
	fw, _ := mw.CreateFormFile("photo", "leaf.png")
	fw.Write(append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 1000)...))
	mw.Close()
	resp, err := tt.Client(in.srv).Post(tt.URL(t, in.state, "http")+"/upload", mw.FormDataContentType(), &form)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	next(t, upstream)

	if err := chromedp.Do(ctx,
		chromedp.Navigate(in.api.URL()),
		chromedp.Click(`#requests li[data-id]`),
		chromedp.WaitVisible(`#d-request table.kv:last-of-type`),
	); err != nil {
		t.Fatal(err)
	}
	table, err := chromedp.Run(ctx, chromedp.Text(`#d-request table.kv:last-of-type`))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"title", "Green tea", "photo", `file "leaf.png", application/octet-stream, 1008 bytes`} {
		if !strings.Contains(table, want) {
			t.Errorf("form parts shown as %q, want %q in them", table, want)
		}
	}
}

// checkNotBlank fails unless the screenshot has many colours spread over
// the page: a blank or error page has a handful.
func checkNotBlank(t *testing.T, shot []byte) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		img, _, err = image.Decode(bytes.NewReader(shot))
	}
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	b := img.Bounds()
	colours := map[[3]uint32]int{}
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[[3]uint32{r >> 8, g >> 8, bl >> 8}]++
		}
	}
	most := 0
	for _, n := range colours {
		most = max(most, n)
	}
	total := (b.Dx() / 2) * (b.Dy() / 2)
	if len(colours) < 50 || most > total*95/100 {
		t.Errorf("the screenshot looks blank: %d colours, the commonest on %d of %d pixels", len(colours), most, total)
	}
}
