package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"porthole/internal/backlog"
	tt "porthole/internal/tunneltest"
	"porthole/relay"
)

// The backlog tests hold streams full on purpose, from several client
// addresses, and check that the relay (downloads to slow public clients)
// and the agent (uploads to slow upstreams) hold at most what their budget
// allows: the streams of a client that takes more than its share, or of
// the client holding the most when all take more than the total, are
// closed; other clients' transfers go on.

// bulkUpstream serves GET /bytes/N (N bytes), GET /endless (until the
// client leaves) and POST /upload (reads the body and answers with its
// length). It reports on gone the client address (X-Forwarded-For) of every
// download or upload it lost before the end. An upload from hold waits,
// before reading, until release is closed.
type bulkUpstream struct {
	url     string
	gone    chan string
	hold    string
	release chan struct{}
}

func newBulkUpstream(t *testing.T, hold string) *bulkUpstream {
	u := &bulkUpstream{gone: make(chan string, 1024), hold: hold, release: make(chan struct{})}
	chunk := make([]byte, 32<<10)
	for i := range chunk {
		chunk[i] = byte(i)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := r.Header.Get("X-Forwarded-For")
		switch {
		case r.Method == http.MethodPost:
			if client == u.hold {
				select {
				case <-u.release:
				case <-r.Context().Done():
					u.gone <- client
					return
				}
			}
			n, err := io.Copy(io.Discard, r.Body)
			if err != nil {
				u.gone <- client
				return
			}
			fmt.Fprint(w, n)
		case r.URL.Path == "/endless":
			for {
				if _, err := w.Write(chunk); err != nil {
					u.gone <- client
					return
				}
			}
		default:
			n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/bytes/"))
			w.Header().Set("Content-Length", strconv.Itoa(n))
			for n > 0 {
				k, err := w.Write(chunk[:min(n, len(chunk))])
				if err != nil {
					u.gone <- client
					return
				}
				n -= k
			}
		}
	}))
	t.Cleanup(srv.Close)
	u.url = srv.URL
	return u
}

// await counts the upstream's reports by client into gone until enough
// says so, failing the test after a generous deadline.
func (u *bulkUpstream) await(t *testing.T, what string, gone map[string]int, enough func() bool) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for !enough() {
		select {
		case c := <-u.gone:
			gone[c]++
		case <-deadline:
			t.Fatalf("waited in vain for %s: transfers ended by client %v", what, gone)
		}
	}
}

// goneFrom adds the reports that came so far to gone.
func (u *bulkUpstream) goneFrom(gone map[string]int) {
	for {
		select {
		case c := <-u.gone:
			gone[c]++
		default:
			return
		}
	}
}

// at is a local address to dial from, as a client of its own.
func at(ip string) *net.TCPAddr { return &net.TCPAddr{IP: net.ParseIP(ip)} }

// stalledDownloads starts n endless downloads from the address whose
// clients never read.
func stalledDownloads(t *testing.T, srv *relay.Server, host, from string, n int) []net.Conn {
	t.Helper()
	var cs []net.Conn
	for range n {
		c := dialFrom(t, at(from), srv.HTTPAddr())
		fmt.Fprintf(c, "GET /endless HTTP/1.1\r\nHost: %s\r\n\r\n", host)
		cs = append(cs, c)
	}
	return cs
}

// heapInUse is the live heap after a collection.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// checkHeap checks that the heap comes back within limit bytes of base: a
// stream that was shed frees its buffer as it is drained, which ends a
// moment after the stream is reset.
func checkHeap(t *testing.T, what string, base, limit int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	grew := heapInUse() - base
	for grew > limit && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		grew = heapInUse() - base
	}
	t.Logf("%s: heap grew %d KiB (limit %d KiB)", what, grew>>10, limit>>10)
	if grew > limit {
		t.Errorf("%s: heap grew %d KiB, limit %d KiB", what, grew>>10, limit>>10)
	}
}

// The addresses of the backlog tests' clients, as the upstream sees them
// (X-Forwarded-For), and as the budgets count them.
const ipA, ipB, ipC = "127.0.0.2", "127.0.0.3", "127.0.0.4"

var keyA, keyB, keyC = netip.MustParseAddr(ipA), netip.MustParseAddr(ipB), netip.MustParseAddr(ipC)

// backlogRelay starts a relay with the window and bounds, and an agent
// serving an HTTP tunnel to up.
func backlogRelay(t *testing.T, up *bulkUpstream, window, share, total int64) (*relay.Server, string) {
	rc := tt.RelayConfig(t)
	rc.StreamWindow, rc.ClientBacklog, rc.MaxBacklog = window, share, total
	srv := tt.StartRelay(t, rc)
	_, st := tt.StartAgent(t, tt.AgentConfig(t, srv, httpTunnel(up.url)))
	return srv, tt.HostPort(tt.URL(t, st, "http"))
}

// TestStalledDownloadsCostTheirClientsShare: forty downloads from one
// address that never read would hold forty windows in the relay; they hold
// at most the address's share, the rest are closed (and the agent and
// upstream let go of them), and a download from another address goes
// through the same tunnel whole.
func TestStalledDownloadsCostTheirClientsShare(t *testing.T) {
	const window, share, stalled = 2 << 20, 8 << 20, 40
	up := newBulkUpstream(t, "")
	srv, host := backlogRelay(t, up, window, share, 64<<20)
	base := heapInUse()

	conns := stalledDownloads(t, srv, host, ipA, stalled)
	// A full stream holds more than half a window (yamux gives window back
	// half a window at a time), so the share keeps fewer than
	// 2*share/window of them: every other one is shed, and its request
	// ends at the upstream.
	const shed = stalled - 2*share/window + 1
	gone := map[string]int{}
	up.await(t, "the stalled downloads beyond the share to end", gone, func() bool { return gone[ipA] >= shed })
	st := srv.Backlog()
	if st.Shed[backlog.OverShare] < shed || st.ByKey[keyA] > share {
		t.Errorf("backlog %+v: want at least %d streams shed over the share, and at most %d bytes held", st, shed, share)
	}
	// What the kept streams hold (yamux may have grown their buffers to
	// twice that), and a few MiB for everything else.
	checkHeap(t, fmt.Sprintf("%d stalled downloads", stalled), base, 2*share+8<<20)

	// Another address downloads through the same tunnel, whole.
	const size = 32 << 20
	c := dialFrom(t, at(ipB), srv.HTTPAddr())
	c.SetDeadline(time.Now().Add(60 * time.Second))
	fmt.Fprintf(c, "GET /bytes/%d HTTP/1.1\r\nHost: %s\r\n\r\n", size, host)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(io.Discard, resp.Body); n != size || err != nil {
		t.Errorf("the other client's download: %d of %d bytes, %v", n, size, err)
	}

	// The shed clients' connections are closed: after what their kernel
	// buffered, they read the end. The kept ones read on.
	var ended atomic.Int64
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			if _, err := io.Copy(io.Discard, c); !errors.Is(err, os.ErrDeadlineExceeded) {
				ended.Add(1)
			}
		})
	}
	wg.Wait()
	if ended.Load() < shed {
		t.Errorf("%d of the %d shed connections were closed", ended.Load(), shed)
	}
}

// TestBacklogTotalAcrossClients: three addresses stall downloads; the
// relay holds at most its total, taking streams from the address holding
// the most, and the address holding the least keeps its downloads.
func TestBacklogTotalAcrossClients(t *testing.T) {
	const window, share, total = 1 << 20, 4 << 20, 6 << 20
	up := newBulkUpstream(t, "")
	srv, host := backlogRelay(t, up, window, share, total)
	base := heapInUse()

	// A full stream holds more than half a window, so A and C each hold
	// more than share-window once trimmed to their share, and B more than
	// a window: more than the total in all. Whenever the total is
	// exceeded, A or C holds more than B's two windows.
	stalledDownloads(t, srv, host, ipA, 12)
	stalledDownloads(t, srv, host, ipB, 2)
	stalledDownloads(t, srv, host, ipC, 12)
	// Within the total, fewer than 2*total/window streams fit; B's two
	// are among them.
	const shed = 24 - (2*total/window - 1 - 2)
	gone := map[string]int{}
	up.await(t, "the total to be kept", gone, func() bool { return gone[ipA]+gone[ipC] >= shed })
	st := srv.Backlog()
	t.Logf("backlog %+v; downloads ended by client %v", st, gone)
	if st.Held > total || st.ByKey[keyA] > share || st.ByKey[keyC] > share || st.Shed[backlog.OverTotal] == 0 {
		t.Errorf("backlog %+v: want at most %d held, %d per client, and streams shed over the total", st, total, share)
	}
	if gone[ipB] != 0 || st.ByKey[keyB] == 0 {
		t.Errorf("the client holding the least lost %d downloads (holds %d bytes)", gone[ipB], st.ByKey[keyB])
	}
	checkHeap(t, "stalled downloads from three clients", base, 2*total+8<<20)
}

// TestSlowReaderWithinItsShareIsKept: a client reading 1 KiB a second is
// far behind, and its stream is charged a window, but it holds less than
// its share: while another address's stalled downloads are shed, it is
// not, and it reads on.
func TestSlowReaderWithinItsShareIsKept(t *testing.T) {
	const window, share, total = 1 << 20, 4 << 20, 8 << 20
	up := newBulkUpstream(t, "")
	srv, host := backlogRelay(t, up, window, share, total)

	slow := dialFrom(t, at(ipC), srv.HTTPAddr())
	fmt.Fprintf(slow, "GET /endless HTTP/1.1\r\nHost: %s\r\n\r\n", host)
	br := bufio.NewReaderSize(slow, 1024)
	if line, err := br.ReadString('\n'); err != nil || !strings.Contains(line, " 200 ") {
		t.Fatalf("slow reader: %q, %v", line, err)
	}
	stalledDownloads(t, srv, host, ipA, 12) // at least 5 over the share

	// Read 1 KiB a second until the slow stream is charged (its kernel
	// buffers are full and yamux holds the rest) and stalled ones beyond
	// their share are shed; then five seconds more.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	buf := make([]byte, 1024)
	gone := map[string]int{}
	charged := false
	deadline := time.Now().Add(60 * time.Second)
	for more := 5; more > 0; {
		<-tick.C
		if time.Now().After(deadline) {
			t.Fatalf("the slow reader was not charged, or no stalled download shed: backlog %+v, ended %v", srv.Backlog(), gone)
		}
		if _, err := io.ReadFull(br, buf); err != nil {
			t.Fatalf("the slow reader's download ended: %v", err)
		}
		up.goneFrom(gone)
		if charged {
			more--
		}
		charged = charged || srv.Backlog().ByKey[keyC] >= window/4 && gone[ipA] >= 4
	}
	st := srv.Backlog()
	if gone[ipC] != 0 || st.ByKey[keyC] == 0 {
		t.Errorf("the slow reader was shed (backlog %+v, downloads ended %v)", st, gone)
	}
}

// upload sends a POST of size bytes from the address, and reports the
// response's status and body, or the error that ended it.
func upload(t *testing.T, srv *relay.Server, host, from string, size int) (string, error) {
	c := dialFrom(t, at(from), srv.HTTPAddr())
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n", host, size)
	if _, err := io.Copy(c, io.LimitReader(zeros{}, int64(size))); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	body, err := io.ReadAll(resp.Body)
	return resp.Status + " " + string(body), err
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestSlowUpstreamCostsItsClientsShare: twenty uploads from one address
// to an upstream that does not read them would hold twenty windows in the
// agent; they hold at most the address's share, the rest are closed, and
// an upload from another address goes through the same tunnel whole. Once
// the upstream reads, the uploads that were kept complete.
func TestSlowUpstreamCostsItsClientsShare(t *testing.T) {
	const window, share, uploads, size = 1 << 20, 4 << 20, 60, 16 << 20
	up := newBulkUpstream(t, ipA) // A's uploads wait until released
	srv := tt.StartRelay(t, tt.RelayConfig(t))
	acfg := tt.AgentConfig(t, srv, httpTunnel(up.url))
	acfg.StreamWindow, acfg.ClientBacklog, acfg.MaxBacklog = window, share, 32<<20
	a, st := tt.StartAgent(t, acfg)
	host := tt.HostPort(tt.URL(t, st, "http"))
	base := heapInUse()

	type result struct {
		resp string
		err  error
	}
	results := make(chan result, uploads)
	for range uploads {
		go func() {
			resp, err := upload(t, srv, host, ipA, size)
			results <- result{resp, err}
		}()
	}
	// Fewer than 2*share/window streams fit in the share (see
	// TestStalledDownloadsCostTheirClientsShare); the others are shed, and
	// their clients' connections closed.
	const shed = uploads - 2*share/window + 1
	deadline := time.After(60 * time.Second)
	var done []result
	for len(done) < shed {
		select {
		case r := <-results:
			done = append(done, r)
		case <-deadline:
			t.Fatalf("%d uploads ended, want at least %d shed: agent backlog %+v", len(done), shed, a.F.Backlog())
		}
	}
	for _, r := range done {
		if r.err == nil {
			t.Errorf("an upload held by its upstream completed: %s", r.resp)
		}
	}
	bl := a.F.Backlog()
	if bl.Shed[backlog.OverShare] < shed || bl.ByKey[keyA] > share {
		t.Errorf("agent backlog %+v: want at least %d streams shed over the share, at most %d bytes held", bl, shed, share)
	}
	checkHeap(t, fmt.Sprintf("%d uploads to an upstream that does not read", uploads), base, 2*share+8<<20)

	// Another address uploads through the same tunnel, whole.
	if resp, err := upload(t, srv, host, ipB, size); err != nil || resp != "200 OK "+strconv.Itoa(size) {
		t.Errorf("the other client's upload: %q, %v", resp, err)
	}

	// The upstream reads at last: every upload kept completes, and every
	// one that did not was shed.
	close(up.release)
	for range uploads - len(done) {
		done = append(done, <-results)
	}
	completed := 0
	for _, r := range done {
		if r.err == nil && r.resp == "200 OK "+strconv.Itoa(size) {
			completed++
		}
	}
	bl = a.F.Backlog()
	if shed := bl.Shed[backlog.OverShare] + bl.Shed[backlog.OverTotal]; completed == 0 || uint64(uploads-completed) != shed {
		t.Errorf("%d of %d uploads completed, and %d were shed", completed, uploads, shed)
	}
}
