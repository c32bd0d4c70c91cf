//go:build !unix

package inspect

// newRegion returns n bytes of zeroed memory, a function that returns
// them, and whether they are outside the Go heap. Where mapping memory
// from the system is not implemented, they are one pointer-free heap
// allocation: the collector does not scan it, but counts it towards its
// next goal.
func newRegion(n int) (b []byte, release func(), offHeap bool) {
	return make([]byte, n), func() {}, false
}
