//go:build unix

package inspect

import "syscall"

// newRegion returns n bytes of zeroed memory mapped from the system, a
// function that returns them, and whether it got them so. The memory is
// outside the Go heap: the garbage collector neither scans it nor counts it
// towards its next goal, so a full store costs the process its budget in
// resident memory, not the budget and as much again of collector headroom.
// Pages become resident as the store first writes them. If the system
// refuses, the memory comes from the heap.
func newRegion(n int) (b []byte, release func(), offHeap bool) {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]byte, n), func() {}, false
	}
	return b, func() { syscall.Munmap(b) }, true
}
