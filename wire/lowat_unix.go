//go:build linux || darwin

package wire

import (
	"net"

	"golang.org/x/sys/unix"
)

// limitUnsent caps how many bytes the kernel keeps queued on c that it has
// not yet sent (TCP_NOTSENT_LOWAT). Without a cap the send buffer grows to
// megabytes under bulk traffic, and every frame written after, a keepalive
// ping or a window update included, waits behind all of it: on a slow path
// that is seconds, long enough to take a live session for dead.
func limitUnsent(c net.Conn, n int) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	if raw, err := tc.SyscallConn(); err == nil {
		raw.Control(func(fd uintptr) {
			unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, n)
		})
	}
}
