package relay

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"

	"porthole/internal/backlog"
	"porthole/internal/httperr"
)

// TestShedConnectionAnswer: a public HTTP/1 connection whose stream is
// shed before the agent's answer began gets the coded answer of the bound
// kept; one whose answer began, or that was aborted for another reason, is
// only closed.
func TestShedConnectionAnswer(t *testing.T) {
	share, total := backlog.OverShare, backlog.OverTotal
	for _, c := range []struct {
		name    string
		began   bool
		shedFor *backlog.Reason
		status  int
		code    httperr.Code
	}{
		{"over the share", false, &share, http.StatusTooManyRequests, httperr.ClientBacklog},
		{"over the total", false, &total, http.StatusServiceUnavailable, httperr.RelayBacklog},
		{"answer began", true, &share, 0, ""},
		{"stalled", false, nil, 0, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			relaySide, client := net.Pipe()
			defer client.Close()
			ac := &answerConn{Conn: relaySide}
			read := make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(client)
				read <- b
			}()
			if c.began {
				if _, err := ac.Write([]byte("HTTP/1.1 200 OK\r\n")); err != nil {
					t.Fatal(err)
				}
			}
			if status, code := ac.abort(c.shedFor); status != c.status || code != c.code {
				t.Errorf("abort reports %d %q, want %d %q", status, code, c.status, c.code)
			}
			if _, err := ac.Write([]byte("late")); err == nil {
				t.Error("the pipe wrote after the abort")
			}
			got := <-read
			if c.status == 0 {
				if c.began && string(got) != "HTTP/1.1 200 OK\r\n" || !c.began && len(got) != 0 {
					t.Errorf("the client read %q, want only what the agent sent", got)
				}
				return
			}
			resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(got)), nil)
			if err != nil {
				t.Fatalf("the client read %q: %v", got, err)
			}
			if resp.StatusCode != c.status || resp.Header.Get(httperr.Header) != string(c.code) || !resp.Close {
				t.Errorf("answer %d %s (close %v), want %d %s and the connection closed", resp.StatusCode, resp.Header.Get(httperr.Header), resp.Close, c.status, c.code)
			}
		})
	}
}
