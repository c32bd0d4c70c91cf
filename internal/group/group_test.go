package group

import (
	"sync/atomic"
	"testing"
)

func TestGroupJoinsAndRefusesAfterWait(t *testing.T) {
	var g Group
	var ran atomic.Int32
	release := make(chan struct{})
	for range 10 {
		// Goroutines that start more goroutines: legal while they run.
		g.Go(func() {
			<-release
			g.Go(func() { ran.Add(1) })
			ran.Add(1)
		})
	}
	close(release)
	g.Wait()
	// Every goroutine that Go accepted has finished; the nested ones were
	// either accepted before Wait began (and joined) or refused.
	if n := ran.Load(); n < 10 || n > 20 {
		t.Errorf("%d goroutines ran", n)
	}
	if g.Go(func() { t.Error("ran after Wait") }) {
		t.Error("Go accepted a goroutine after Wait")
	}
}
