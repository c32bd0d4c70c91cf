package tunneltest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"porthole/internal/selfsigned"
)

// Cert is a self-signed certificate written to files.
type Cert struct {
	TLS      tls.Certificate
	Pool     *x509.CertPool // trusts the certificate
	CertFile string
	KeyFile  string
}

// NewCert makes a self-signed certificate for the hosts (names or IPs).
func NewCert(t testing.TB, hosts ...string) Cert {
	t.Helper()
	certPEM, keyPEM, err := selfsigned.Generate(hosts[0], hosts, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := Cert{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"), Pool: x509.NewCertPool()}
	if err := os.WriteFile(c.CertFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.KeyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	c.Pool.AppendCertsFromPEM(certPEM)
	if c.TLS, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	return c
}

// Listen returns a loopback listener closed at the end of the test.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// EchoServer accepts connections on l and echoes them, prefixing nothing.
// With a non-nil cfg it speaks TLS.
func EchoServer(t testing.TB, cfg *tls.Config) net.Listener {
	l := Listen(t)
	if cfg != nil {
		l = tls.NewListener(l, cfg)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return l
}

// RoundTrip writes msg on c and reads back len(msg) bytes.
func RoundTrip(t testing.TB, c net.Conn, msg string) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(bytes.TrimSpace(buf))
}

// WaitGoroutines waits until the goroutine count is back to base, failing
// with every stack after a generous deadline. Goroutines end asynchronously
// after their connections close, so there is no single event to wait on.
func WaitGoroutines(t testing.TB, base int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines left, baseline %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitNoGoroutinesIn waits until no goroutine is running a function whose
// name starts with one of the prefixes (such as "porthole/forwarder."),
// failing with their stacks after a generous deadline. Only running frames
// count, not the "created by" line of a goroutine that is finishing in
// another package. Goroutines end asynchronously after their connections
// close, so there is no single event to wait on.
func WaitNoGoroutinesIn(t testing.TB, prefixes ...string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		left := goroutinesIn(prefixes)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines still run in %v:\n\n%s", len(left), prefixes, strings.Join(left, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// goroutinesIn returns the stacks of the goroutines with a frame in one of
// the packages.
func goroutinesIn(prefixes []string) []string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, line := range strings.Split(g, "\n")[1:] {
			if strings.HasPrefix(line, "\t") || strings.HasPrefix(line, "created by ") {
				continue
			}
			if hasAnyPrefix(line, prefixes) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
