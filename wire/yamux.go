package wire

import (
	"log"
	"time"

	"github.com/hashicorp/yamux"
)

// StreamWindow is the per-stream receive window. A larger window lets one
// stream fill a fast link; memory is only committed as data is buffered.
const StreamWindow = 256 << 10

// YamuxConfig returns the session settings both ends use.
func YamuxConfig(keepAlive time.Duration, logger *log.Logger) *yamux.Config {
	c := yamux.DefaultConfig()
	c.AcceptBacklog = 1024
	c.EnableKeepAlive = true
	c.KeepAliveInterval = keepAlive
	c.ConnectionWriteTimeout = keepAlive
	c.MaxStreamWindowSize = StreamWindow
	c.StreamOpenTimeout = 30 * time.Second
	c.StreamCloseTimeout = time.Minute
	c.LogOutput = nil
	c.Logger = logger
	return c
}
