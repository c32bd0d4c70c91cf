// Package group runs goroutines that their owner waits for. Unlike a bare
// sync.WaitGroup, a Group refuses new goroutines once its owner has begun to
// wait, so that no Add can race Wait: whoever starts a goroutine through a
// Group can always join it.
package group

import "sync"

// Group is a set of goroutines. The zero Group is ready to use.
type Group struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// Go runs f in a new goroutine and reports true, or reports false without
// running f once the group is closed.
func (g *Group) Go(f func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Go(f)
	return true
}

// Close makes Go refuse new goroutines. It does not wait.
func (g *Group) Close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// Wait closes the group and waits for every goroutine it ran.
func (g *Group) Wait() {
	g.Close()
	g.wg.Wait()
}
