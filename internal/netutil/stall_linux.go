package netutil

import (
	"net"

	"golang.org/x/sys/unix"
)

// ackedBytes returns a reader of how many bytes the peer of a TCP
// connection has acknowledged (TCP_INFO's bytes_acked), or one that reports
// nothing for other connections.
func ackedBytes(c net.Conn) func() (uint64, bool) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return noAcks
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return noAcks
	}
	return func() (uint64, bool) {
		var info *unix.TCPInfo
		var err error
		if cerr := raw.Control(func(fd uintptr) {
			info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		}); cerr != nil || err != nil {
			return 0, false
		}
		return info.Bytes_acked, true
	}
}
