package e2e

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"porthole/forwarder"
	"porthole/inspect"
	tt "porthole/internal/tunneltest"
	"porthole/wire"
)

func httpTunnel(upstream string) forwarder.Tunnel {
	return forwarder.Tunnel{Proto: wire.ProtoHTTP, Upstream: upstream, Name: "app"}
}

func get(t *testing.T, c *http.Client, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	if h := req.Header.Get("Host"); h != "" {
		req.Host = h
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s body: %v", url, err)
	}
	return resp, string(body)
}

func TestHTTPUpstreamForms(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello from upstream") }))
	defer up.Close()
	port := up.Listener.Addr().(*net.TCPAddr).Port
	srv := tt.StartRelay(t, tt.RelayConfig(t))
	client := tt.Client(srv)
	for _, form := range []struct{ given, normalized string }{
		{fmt.Sprint(port), fmt.Sprintf("http://localhost:%d", port)},
		{fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("http://127.0.0.1:%d", port)},
		{fmt.Sprintf("http://127.0.0.1:%d", port), fmt.Sprintf("http://127.0.0.1:%d", port)},
		{fmt.Sprintf("localhost:%d", port), fmt.Sprintf("http://localhost:%d", port)},
	} {
		t.Run(form.given, func(t *testing.T) {
			a, st := tt.StartAgent(t, tt.AgentConfig(t, srv, httpTunnel(form.given)))
			defer a.Stop()
			if got := st.Forwarding[0].Upstream; got != form.normalized {
				t.Errorf("forwarding upstream = %q, want %q", got, form.normalized)
			}
			resp, body := get(t, client, tt.URL(t, st, "http")+"/")
			if resp.StatusCode != 200 || body != "hello from upstream" {
				t.Errorf("got %d %q", resp.StatusCode, body)
			}
		})
	}
}

// TestPort443MeansHTTPS binds the real port 443 on loopback (tests run as a
// user that may bind it in CI) and checks that the bare "443" reaches it over TLS.
func TestPort443MeansHTTPS(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:443")
	if err != nil {
		t.Skipf("cannot bind 127.0.0.1:443 here: %v", err)
	}
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "tls=%v", r.TLS != nil)
	}))
	up.Listener.Close()
	up.Listener = l
	up.StartTLS()
	defer up.Close()
	srv := tt.StartRelay(t, tt.RelayConfig(t))
	_, st := tt.StartAgent(t, tt.AgentConfig(t, srv, httpTunnel("443")))
	if got := st.Forwarding[0].Upstream; got != "https://localhost:443" {
		t.Errorf("upstream = %q, want https://localhost:443", got)
	}
	if _, body := get(t, tt.Client(srv), tt.URL(t, st, "http")); body != "tls=true" {
		t.Errorf("body = %q, want tls=true", body)
	}
}

func TestHTTPSUpstreamVerification(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "secure") }))
	defer up.Close()
	caFile := writePEM(t, up.Certificate().Raw)
	target := "https://" + up.Listener.Addr().String()
	srv := tt.StartRelay(t, tt.RelayConfig(t))
	client := tt.Client(srv)

	cases := []struct {
		name       string
		verify     bool
		ca         string
		wantStatus int
		wantCode   string
	}{
		{"unverified by default", false, "", 200, ""},
		{"verify against system roots fails", true, "", 502, "PH-502-UPSTREAM-TLS"},
		{"verify against the CA file works", true, caFile, 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tun := httpTunnel(target)
			tun.UpstreamTLSVerify, tun.UpstreamCAFile = c.verify, c.ca
			a, st := tt.StartAgent(t, tt.AgentConfig(t, srv, tun))
			defer a.Stop()
			resp, body := get(t, client, tt.URL(t, st, "http"))
			if resp.StatusCode != c.wantStatus || resp.Header.Get("Porthole-Error") != c.wantCode {
				t.Errorf("got %d %q (%s), want %d %q", resp.StatusCode, resp.Header.Get("Porthole-Error"), body, c.wantStatus, c.wantCode)
			}
			if c.wantStatus == 200 && body != "secure" {
				t.Errorf("body = %q", body)
			}
		})
	}
}

func TestBadCAFileIsRefusedUpFront(t *testing.T) {
	srv := tt.StartRelay(t, tt.RelayConfig(t))
	tun := httpTunnel("https://127.0.0.1:1")
	tun.UpstreamTLSVerify = true
	tun.UpstreamCAFile = writeFile(t, "not a certificate")
	_, err := forwarder.New(tt.AgentConfig(t, srv, tun))
	if err == nil || !strings.Contains(err.Error(), "no PEM certificates") {
		t.Fatalf("forwarder.New error = %v, want a CA file error", err)
	}
}

func protoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "proto=%d tls=%v", r.ProtoMajor, r.TLS != nil)
	})
}

func TestHTTP2Upstream(t *testing.T) {
	h2cUp := httptest.NewUnstartedServer(protoHandler())
	h2cUp.Config.Protocols = new(http.Protocols)
	h2cUp.Config.Protocols.SetHTTP1(true)
	h2cUp.Config.Protocols.SetUnencryptedHTTP2(true)
	h2cUp.Start()
	defer h2cUp.Close()
	tlsUp := httptest.NewUnstartedServer(protoHandler())
	tlsUp.EnableHTTP2 = true
	tlsUp.StartTLS()
	defer tlsUp.Close()

	srv := tt.StartRelay(t, tt.RelayConfig(t))
	client := tt.Client(srv)
	cases := []struct {
		name     string
		upstream string
		http2    bool
		want     string
	}{
		{"http1 by default", h2cUp.URL, false, "proto=1 tls=false"},
		{"h2c prior knowledge", h2cUp.URL, true, "proto=2 tls=false"},
		{"https http1 by default", tlsUp.URL, false, "proto=1 tls=true"},
		{"https h2 by ALPN", tlsUp.URL, true, "proto=2 tls=true"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tun := httpTunnel(c.upstream)
			tun.UpstreamHTTP2 = c.http2
			a, st := tt.StartAgent(t, tt.AgentConfig(t, srv, tun))
			defer a.Stop()
			if _, body := get(t, client, tt.URL(t, st, "http")); body != c.want {
				t.Errorf("upstream saw %q, want %q", body, c.want)
			}
		})
	}
}

// headerEcho answers with the request's Host and headers as JSON.
func headerEcho() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		h.Set("Host", r.Host)
		json.NewEncoder(w).Encode(h)
	}))
}

func TestForwardedHeaders(t *testing.T) {
	up := headerEcho()
	defer up.Close()
	upHost := up.Listener.Addr().String()
	srv := tt.StartRelay(t, tt.RelayConfig(t))
	client := tt.Client(srv)

	for _, c := range []struct {
		name, hostHeader, wantHost string
	}{
		{"host kept", "", "app.localhost"},
		{"host rewritten", "rewrite", upHost},
		{"host literal", "internal.example", "internal.example"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tun := httpTunnel(up.URL)
			tun.HostHeader = c.hostHeader
			a, st := tt.StartAgent(t, tt.AgentConfig(t, srv, tun))
			defer a.Stop()
			for _, scheme := range []string{"http", "https"} {
				pub := tt.URL(t, st, scheme)
				pubHost := tt.HostPort(pub)
				want := c.wantHost
				if want == "app.localhost" {
					want = pubHost
				}
				// Spoofed forwarded headers: X-Forwarded-For is a chain and
				// is appended to; Proto and Host are replaced, so a
				// plain-HTTP client cannot pass for an HTTPS one.
				hdr := []string{"X-Forwarded-For", "203.0.113.7", "X-Forwarded-Proto", "https",
					"X-Forwarded-Host", "evil.example", "X-Kept", "yes"}
				if scheme == "http" {
					// Hop-by-hop headers exist only in HTTP/1.
					hdr = append(hdr, "Connection", "X-Hop", "X-Hop", "drop me",
						"Upgrade", "h2c", "Connection", "Upgrade, HTTP2-Settings", "HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")
				}
				_, body := get(t, client, pub, hdr...)
				var h http.Header
				if err := json.Unmarshal([]byte(body), &h); err != nil {
					t.Fatalf("%s: bad echo %q: %v", scheme, body, err)
				}
				checks := map[string]string{
					"Host":              want,
					"X-Forwarded-For":   "203.0.113.7, 127.0.0.1",
					"X-Forwarded-Proto": scheme,
					"X-Forwarded-Host":  pubHost,
					"X-Kept":            "yes",
					"X-Hop":             "",
					"Upgrade":           "",
					"Http2-Settings":    "",
				}
				for k, v := range checks {
					if got := h.Get(k); got != v {
						t.Errorf("%s: upstream saw %s = %q, want %q", scheme, k, got, v)
					}
				}
			}
		})
	}
}

func TestWebSocketUpgradePasses(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "want upgrade", 400)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		io.Copy(c, brw) // echo the upgraded stream
	}))
	defer up.Close()
	srv := tt.StartRelay(t, tt.RelayConfig(t))
	for _, inspected := range []bool{false, true} {
		t.Run(fmt.Sprintf("inspected=%v", inspected), func(t *testing.T) {
			cfg := tt.AgentConfig(t, srv, httpTunnel(up.URL))
			if inspected {
				cfg.Inspect = inspect.NewStore(inspect.DefaultConfig())
			}
			a, st := tt.StartAgent(t, cfg)
			defer a.Stop()
			webSocketEcho(t, srv.HTTPAddr(), tt.HostPort(tt.URL(t, st, "http")))
			if inspected {
				waitFinished(t, cfg.Inspect)
				if x := cfg.Inspect.List(0, ""); len(x) != 1 || !x[0].Upgraded || x[0].Status != 101 {
					t.Errorf("captured: %+v", x)
				}
			}
		})
	}
}

// webSocketEcho upgrades a connection through the relay and checks that
// bytes come back.
func webSocketEcho(t *testing.T, relayHTTP, host string) {
	t.Helper()
	c, err := net.Dial("tcp", relayHTTP)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", host)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status = %d, want 101", resp.StatusCode)
	}
	io.WriteString(c, "ping over the tunnel")
	buf := make([]byte, len("ping over the tunnel"))
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping over the tunnel" {
		t.Fatalf("echo = %q, %v", buf, err)
	}
	c.Close()
}

func TestServerSentEventsAreNotBuffered(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-release // the rest comes only after the client saw the first event
		io.WriteString(w, "data: second\n\n")
	}))
	defer up.Close()
	defer close(release)
	srv := tt.StartRelay(t, tt.RelayConfig(t))
	store := inspect.NewStore(inspect.DefaultConfig())
	for _, inspected := range []bool{false, true} {
		cfg := tt.AgentConfig(t, srv, httpTunnel(up.URL))
		if inspected {
			cfg.Inspect = store
		}
		a, st := tt.StartAgent(t, cfg)
		for _, scheme := range []string{"http", "https"} {
			resp, err := tt.Client(srv).Get(tt.URL(t, st, scheme))
			if err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(resp.Body).ReadString('\n')
			if err != nil || line != "data: first\n" {
				t.Fatalf("inspected=%v %s: first event = %q, %v", inspected, scheme, line, err)
			}
			resp.Body.Close()
		}
		a.Stop()
	}
	// Both streams were listed while they ran; the HTTPS one came over HTTP/2.
	xs := store.List(0, "")
	if len(xs) != 2 || xs[0].Request.Proto != "HTTP/2.0" || !xs[0].TLS || xs[1].Request.Proto != "HTTP/1.1" || xs[1].TLS {
		for _, x := range xs {
			t.Errorf("captured %s tls=%v", x.Request.Proto, x.TLS)
		}
	}
}

// patterned is a deterministic pseudo-random stream of n bytes.
func patterned(n int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{7}), n)
}

func TestLargeBodiesKeepTheirHash(t *testing.T) {
	const size = 100 << 20
	h := sha256.New()
	io.Copy(h, patterned(size))
	want := hex.EncodeToString(h.Sum(nil))
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			h := sha256.New()
			n, _ := io.Copy(h, r.Body)
			fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
			return
		}
		io.Copy(w, patterned(size))
	}))
	defer up.Close()
	srv := tt.StartRelay(t, tt.RelayConfig(t))
	_, st := tt.StartAgent(t, tt.AgentConfig(t, srv, httpTunnel(up.URL)))
	client := tt.Client(srv)
	url := tt.URL(t, st, "http")

	resp, err := client.Post(url, "application/octet-stream", patterned(size))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := string(body); got != fmt.Sprintf("%d %s", size, want) {
		t.Errorf("upload: upstream got %q, want %d %s", got, size, want)
	}

	resp, err = client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	h = sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil || n != size || hex.EncodeToString(h.Sum(nil)) != want {
		t.Errorf("download: %d bytes, hash %x, err %v; want %d bytes, %s", n, h.Sum(nil), err, size, want)
	}
}

func TestBasicAuth(t *testing.T) {
	up := headerEcho()
	defer up.Close()
	srv := tt.StartRelay(t, tt.RelayConfig(t))
	tun := httpTunnel(up.URL)
	tun.BasicAuth = "alice:wonderland"
	_, st := tt.StartAgent(t, tt.AgentConfig(t, srv, tun))
	url := tt.URL(t, st, "http")
	client := tt.Client(srv)

	resp, _ := get(t, client, url)
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" || resp.Header.Get("Porthole-Error") != "PH-401-AUTH-REQUIRED" {
		t.Errorf("without credentials: %d %v", resp.StatusCode, resp.Header)
	}
	req, _ := http.NewRequest("GET", url, nil)
	req.SetBasicAuth("alice", "wrong")
	if resp, err := client.Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("wrong password: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	req.SetBasicAuth("alice", "wonderland")
	resp, err := client.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("with credentials: %v %v", resp, err)
	}
	var h http.Header
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if h.Get("Authorization") != "" {
		t.Errorf("the tunnel's credentials reached the upstream")
	}
}

func TestHTTPSListenerNegotiatesHTTP2AndHTTP1(t *testing.T) {
	up := httptest.NewServer(protoHandler())
	defer up.Close()
	srv := tt.StartRelay(t, tt.RelayConfig(t))
	_, st := tt.StartAgent(t, tt.AgentConfig(t, srv, httpTunnel(up.URL)))
	url := tt.URL(t, st, "https")
	if !strings.HasPrefix(url, "https://app.localhost:") {
		t.Errorf("https URL = %q", url)
	}
	for _, alpn := range []string{"h2", "http/1.1"} {
		tr := tt.Client(srv).Transport.(*http.Transport)
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true, NextProtos: []string{alpn}}
		tr.ForceAttemptHTTP2 = alpn == "h2"
		if alpn != "h2" {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		resp, body := get(t, &http.Client{Transport: tr}, url)
		want := map[string]int{"h2": 2, "http/1.1": 1}[alpn]
		if resp.ProtoMajor != want || body != "proto=1 tls=false" {
			t.Errorf("%s: public proto %d (want %d), upstream %q", alpn, resp.ProtoMajor, want, body)
		}
	}
}

// TestH2CIsPriorKnowledge reads the upstream side of the wire: the agent's
// first bytes must be the HTTP/2 client preface and a SETTINGS frame, with
// no HTTP/1.1 Upgrade request before them.
func TestH2CIsPriorKnowledge(t *testing.T) {
	l := tt.Listen(t)
	first := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			first <- err
			return
		}
		defer c.Close()
		preface := make([]byte, len(http2.ClientPreface))
		if _, err := io.ReadFull(c, preface); err != nil || string(preface) != http2.ClientPreface {
			first <- fmt.Errorf("preface %q, %v", preface, err)
			return
		}
		f, err := http2.NewFramer(io.Discard, c).ReadFrame()
		if err != nil {
			first <- err
			return
		}
		if _, ok := f.(*http2.SettingsFrame); !ok {
			first <- fmt.Errorf("first frame %T, want SETTINGS", f)
			return
		}
		first <- nil
	}()
	srv := tt.StartRelay(t, tt.RelayConfig(t))
	tun := httpTunnel(l.Addr().String())
	tun.UpstreamHTTP2 = true
	cfg := tt.AgentConfig(t, srv, tun)
	cfg.ResponseTimeout = 500 * time.Millisecond
	_, st := tt.StartAgent(t, cfg)
	go tt.Client(srv).Get(tt.URL(t, st, "http"))
	if err := <-first; err != nil {
		t.Fatal(err)
	}
}

// TestRelayWithGivenCertificate runs the relay with --tls-cert/--tls-key:
// the agent trusts it by CA file, and public HTTPS clients verify it.
func TestRelayWithGivenCertificate(t *testing.T) {
	cert := tt.NewCert(t, "localhost", "*.localhost", "127.0.0.1")
	rc := tt.RelayConfig(t)
	rc.TLSCertFile, rc.TLSKeyFile = cert.CertFile, cert.KeyFile
	srv := tt.StartRelay(t, rc)
	up := httptest.NewServer(protoHandler())
	defer up.Close()
	cfg := tt.AgentConfig(t, srv, httpTunnel(up.URL))
	cfg.RelayFingerprint, cfg.RelayCAFile = "", cert.CertFile
	_, st := tt.StartAgent(t, cfg)
	tr := tt.Client(srv).Transport.(*http.Transport)
	tr.TLSClientConfig = &tls.Config{RootCAs: cert.Pool}
	resp, body := get(t, &http.Client{Transport: tr}, tt.URL(t, st, "https"))
	if resp.StatusCode != 200 || resp.TLS == nil || resp.ProtoMajor != 2 || body != "proto=1 tls=false" {
		t.Errorf("verified HTTPS through the relay: %d proto %d %q", resp.StatusCode, resp.ProtoMajor, body)
	}
}

// TestKeptAliveConnectionStaysWithItsTunnel sends a second request for
// another tunnel on a connection the relay routed to the first: the agent
// answers 421 instead of serving it.
func TestKeptAliveConnectionStaysWithItsTunnel(t *testing.T) {
	up := httptest.NewServer(protoHandler())
	defer up.Close()
	srv := tt.StartRelay(t, tt.RelayConfig(t))
	_, st := tt.StartAgent(t, tt.AgentConfig(t, srv, httpTunnel(up.URL)))
	other := httpTunnel(up.URL)
	other.Name = "other"
	_, st2 := tt.StartAgent(t, tt.AgentConfig(t, srv, other))

	c, err := net.Dial("tcp", srv.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i, host := range []string{tt.HostPort(tt.URL(t, st, "http")), tt.HostPort(tt.URL(t, st2, "http"))} {
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", host)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		want := []int{200, 421}[i]
		if resp.StatusCode != want {
			t.Errorf("request %d for %s: %d, want %d", i+1, host, resp.StatusCode, want)
		}
	}
}
