package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

var oneMiB = bytes.Repeat([]byte("porthole"), 1<<20/8)

// serveUpstream runs the services the tunnel forwards to, in their own
// process so that their CPU is not the bench's: HTTP, a TCP echo and a TCP
// load server. It prints "http PORT", "echo PORT", "tcpload PORT".
//
// HTTP: /hello; /1m (one MiB); /bytes/N (N bytes); POST /sink (reads the
// body, answers its length).
func serveUpstream(host string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello\n")
	})
	mux.HandleFunc("/1m", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(oneMiB)
	})
	mux.HandleFunc("/bytes/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.PathValue("n"), 10, 64)
		if err != nil || n < 0 {
			http.Error(w, "bad size", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		for n > 0 {
			k := min(n, int64(len(oneMiB)))
			if _, err := w.Write(oneMiB[:k]); err != nil {
				return
			}
			n -= k
		}
	})
	mux.HandleFunc("POST /sink", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d\n", n)
	})
	hl := listen(host)
	go (&http.Server{Handler: mux}).Serve(hl)
	el := listen(host)
	go accept(el, func(c net.Conn) { io.Copy(c, c) })
	tl := listen(host)
	go accept(tl, serveTCPLoad)
	fmt.Printf("http %d\necho %d\ntcpload %d\n", port(hl), port(el), port(tl))
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, os.Interrupt)
	<-ch
}

// serveTCPLoad is the Go stand-in for an iperf3 server. The client's first
// byte says what it wants: 'u' to upload (the server discards what it
// reads and, when the client half-closes, answers "BYTES NANOSECONDS": what
// it received, from its first byte to the end), 'd' to download (the
// server writes until the client hangs up).
func serveTCPLoad(c net.Conn) {
	var cmd [1]byte
	if _, err := io.ReadFull(c, cmd[:]); err != nil {
		return
	}
	switch cmd[0] {
	case 'u':
		var first [1]byte
		if _, err := io.ReadFull(c, first[:]); err != nil {
			return
		}
		start := time.Now()
		n, _ := io.Copy(io.Discard, c)
		fmt.Fprintf(c, "%d %d\n", n+1, time.Since(start).Nanoseconds())
	case 'd':
		for {
			if _, err := c.Write(oneMiB); err != nil {
				return
			}
		}
	}
}

func listen(host string) net.Listener {
	l, err := net.Listen("tcp", host+":0")
	if err != nil {
		panic(err)
	}
	return l
}

func accept(l net.Listener, h func(net.Conn)) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() { defer c.Close(); h(c) }()
	}
}

func port(l net.Listener) int { return l.Addr().(*net.TCPAddr).Port }
