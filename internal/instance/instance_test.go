package instance

import (
	"errors"
	"net"
	"path/filepath"
	"testing"
)

func TestSecondLaunchShowsTheFirst(t *testing.T) {
	path := filepath.Join(t.TempDir(), "porthole.sock")
	shown := make(chan struct{}, 1)
	release, err := Claim(path, func() { shown <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := Claim(path, func() { t.Error("the second copy was asked to show") }); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Claim = %v, want ErrRunning", err)
	}
	<-shown
}

func TestStaleSocketIsTakenOver(t *testing.T) {
	path := filepath.Join(t.TempDir(), "porthole.sock")
	// A socket file nobody listens on, as a crashed copy leaves behind.
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	release, err := Claim(path, func() {})
	if err != nil {
		t.Fatalf("Claim over a stale socket: %v", err)
	}
	release()
}
