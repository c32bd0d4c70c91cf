package e2e

import (
	"crypto/tls"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"porthole/forwarder"
	tt "porthole/internal/tunneltest"
	"porthole/wire"
)

func TestTCPTunnel(t *testing.T) {
	echo := tt.EchoServer(t, nil)
	srv := tt.StartRelay(t, tt.RelayConfig(t))
	// Ask for a specific port: find one the OS considers free.
	probe := tt.Listen(t)
	port := probe.Addr().(*net.TCPAddr).Port
	probe.Close()

	_, st := tt.StartAgent(t, tt.AgentConfig(t, srv, forwarder.Tunnel{
		Proto: wire.ProtoTCP, Upstream: echo.Addr().String(), RemotePort: port,
	}))
	url := tt.URL(t, st, "tcp")
	if want := "tcp://localhost:" + itoa(port); url != want {
		t.Errorf("public URL = %q, want %q", url, want)
	}
	if up := st.Forwarding[0].Upstream; up != "tcp://"+echo.Addr().String() {
		t.Errorf("upstream = %q", up)
	}
	c, err := net.Dial("tcp", "127.0.0.1:"+itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := tt.RoundTrip(t, c, "hello over tcp"); got != "hello over tcp" {
		t.Errorf("echo = %q", got)
	}
}

func TestTCPTunnelReencryptsToTLSUpstream(t *testing.T) {
	upCert := tt.NewCert(t, "127.0.0.1")
	echo := tt.EchoServer(t, &tls.Config{Certificates: []tls.Certificate{upCert.TLS}})
	srv := tt.StartRelay(t, tt.RelayConfig(t))
	for _, c := range []struct {
		name   string
		verify bool
		ca     string
		works  bool
	}{
		{"unverified", false, "", true},
		{"verified by CA", true, upCert.CertFile, true},
		{"verified by system roots", true, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, st := tt.StartAgent(t, tt.AgentConfig(t, srv, forwarder.Tunnel{
				Proto: wire.ProtoTCP, Upstream: "tls://" + echo.Addr().String(),
				UpstreamTLSVerify: c.verify, UpstreamCAFile: c.ca,
			}))
			defer a.Stop()
			conn, err := net.Dial("tcp", tt.HostPort(strings.Replace(tt.URL(t, st, "tcp"), "localhost", "127.0.0.1", 1)))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if !c.works {
				// The agent refuses the upstream and closes the public side.
				conn.Write([]byte("x"))
				if n, err := conn.Read(make([]byte, 1)); err == nil {
					t.Fatalf("read %d bytes through an unverified upstream", n)
				}
				return
			}
			if got := tt.RoundTrip(t, conn, "plain in, TLS out"); got != "plain in, TLS out" {
				t.Errorf("echo = %q", got)
			}
		})
	}
}

func TestTLSTunnelPassesThroughBySNI(t *testing.T) {
	upCert := tt.NewCert(t, "app.localhost")
	echo := tt.EchoServer(t, &tls.Config{Certificates: []tls.Certificate{upCert.TLS}})
	srv := tt.StartRelay(t, tt.RelayConfig(t))
	_, st := tt.StartAgent(t, tt.AgentConfig(t, srv, forwarder.Tunnel{
		Proto: wire.ProtoTLS, Upstream: echo.Addr().String(), Name: "app",
	}))
	if url := tt.URL(t, st, "tls"); url != "tls://app.localhost:"+port(srv.HTTPSAddr()) {
		t.Errorf("public URL = %q", url)
	}
	// The client verifies the upstream's own certificate: the relay never
	// terminated the connection.
	conn, err := tls.Dial("tcp", srv.HTTPSAddr(), &tls.Config{ServerName: "app.localhost", RootCAs: upCert.Pool})
	if err != nil {
		t.Fatalf("TLS through the tunnel: %v", err)
	}
	defer conn.Close()
	if got := tt.RoundTrip(t, conn, "end to end"); got != "end to end" {
		t.Errorf("echo = %q", got)
	}
}

func TestTLSTunnelTerminatedAtAgent(t *testing.T) {
	agentCert := tt.NewCert(t, "app.localhost")
	upCert := tt.NewCert(t, "127.0.0.1")
	echo := tt.EchoServer(t, &tls.Config{Certificates: []tls.Certificate{upCert.TLS}})
	srv := tt.StartRelay(t, tt.RelayConfig(t))
	_, st := tt.StartAgent(t, tt.AgentConfig(t, srv, forwarder.Tunnel{
		Proto: wire.ProtoTLS, Upstream: "tls://" + echo.Addr().String(), Name: "app",
		TerminateCertFile: agentCert.CertFile, TerminateKeyFile: agentCert.KeyFile,
		UpstreamTLSVerify: true, UpstreamCAFile: upCert.CertFile,
	}))
	_ = st
	conn, err := tls.Dial("tcp", srv.HTTPSAddr(), &tls.Config{ServerName: "app.localhost", RootCAs: agentCert.Pool})
	if err != nil {
		t.Fatalf("TLS to the agent's certificate: %v", err)
	}
	defer conn.Close()
	if got := tt.RoundTrip(t, conn, "terminated and re-encrypted"); got != "terminated and re-encrypted" {
		t.Errorf("echo = %q", got)
	}
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestTCPTunnelHalfCloseThenDownload: a TCP client that sends its request,
// half-closes, and then downloads for far longer than a quiet half-closed
// stream may last (wire.HalfClosedTimeout, shortened here) gets all of it:
// the relay and the agent keep a stream open while it carries bytes.
func TestTCPTunnelHalfCloseThenDownload(t *testing.T) {
	was := wire.HalfClosedTimeout
	wire.HalfClosedTimeout = 100 * time.Millisecond
	t.Cleanup(func() { wire.HalfClosedTimeout = was })

	want := strings.Repeat("a slow download, line by line\n", 50)
	up := tt.Listen(t)
	go func() {
		c, err := up.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if req, _ := io.ReadAll(c); string(req) != "GET everything" { // until the client's half-close
			return
		}
		tick := time.NewTicker(20 * time.Millisecond) // a line every 20 ms: ten timeouts in all
		defer tick.Stop()
		for line := range strings.Lines(want) {
			<-tick.C
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
	}()
	srv := tt.StartRelay(t, tt.RelayConfig(t))
	_, st := tt.StartAgent(t, tt.AgentConfig(t, srv, forwarder.Tunnel{Proto: wire.ProtoTCP, Upstream: up.Addr().String()}))
	c, err := net.Dial("tcp", tt.HostPort(tt.URL(t, st, "tcp")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET everything")
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != want {
		t.Errorf("downloaded %d of %d bytes after the half-close, then %v", len(got), len(want), err)
	}
}
