// Package instance keeps one running copy of the desktop app per user. The
// first copy listens on a Unix socket; a later launch connects to it, asks
// it to show its window, and exits.
package instance

import (
	"bufio"
	"errors"
	"net"
	"os"
	"path/filepath"
	"time"
)

// ErrRunning means another instance runs and was asked to show itself.
var ErrRunning = errors.New("porthole is already running")

// Claim makes this process the running instance, calling onShow whenever a
// later launch asks for the window; release gives the claim up. If another
// instance already runs, Claim asks it to show its window and returns
// ErrRunning.
func Claim(path string, onShow func()) (release func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		if notify(path) == nil {
			return nil, ErrRunning
		}
		// A socket left by a copy that crashed: take it over.
		os.Remove(path)
		if l, err = net.Listen("unix", path); err != nil {
			return nil, err
		}
	}
	go serve(l, onShow)
	return func() { l.Close() }, nil
}

func serve(l net.Listener, onShow func()) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			if err == nil && line == "show\n" {
				onShow()
				c.Write([]byte("ok\n"))
			}
		}()
	}
}

// notify asks the running instance to show its window.
func notify(path string) error {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("show\n")); err != nil {
		return err
	}
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || reply != "ok\n" {
		return errors.New("the running instance did not answer")
	}
	return nil
}
