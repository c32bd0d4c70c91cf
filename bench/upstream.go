package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

var oneMiB = bytes.Repeat([]byte("porthole"), 1<<20/8)

// serveUpstream runs the services the tunnel forwards to, in their own
// process so that their CPU is not the bench's: HTTP (/hello, /1m), a TCP
// echo and a TCP sink. It prints "http PORT", "echo PORT", "sink PORT".
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
	hl := listen(host)
	go (&http.Server{Handler: mux}).Serve(hl)
	el := listen(host)
	go accept(el, func(c net.Conn) { io.Copy(c, c) })
	sl := listen(host)
	go accept(sl, func(c net.Conn) { io.Copy(io.Discard, c) })
	fmt.Printf("http %d\necho %d\nsink %d\n", port(hl), port(el), port(sl))
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, os.Interrupt)
	<-ch
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
