//go:build !linux

package netutil

import "net"

// ackedBytes reports nothing where the kernel's TCP counters are not read:
// progress is then only what a Write hands to the kernel.
func ackedBytes(net.Conn) func() (uint64, bool) { return noAcks }
