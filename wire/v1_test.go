package wire

import (
	"io"
	"log"
	"net"
	"testing"

	"github.com/hashicorp/yamux"
)

// TestV1RefusalReadsAsAVersion1Reply runs what a version 1 agent ran: a
// yamux client that opens its control stream, sends its hello there and
// waits for the reply. The hand-written refusal must reach it as a coded
// error on that stream, and the stream then ends.
func TestV1RefusalReadsAsAVersion1Reply(t *testing.T) {
	agent, relay := net.Pipe()
	defer agent.Close()
	defer relay.Close()
	cfg := yamux.DefaultConfig()
	cfg.LogOutput, cfg.Logger = nil, log.New(io.Discard, "", 0)
	sess, err := yamux.Client(agent, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	go func() {
		// The relay answers once the control stream is open, then drops
		// what the agent sent.
		if ReadV1Open(relay) == nil {
			WriteV1Refusal(relay, Errorf(CodeBadVersion, "upgrade the agent"))
		}
		io.Copy(io.Discard, relay)
	}()
	ctrl, err := sess.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteMessage(ctrl, &Message{Type: TypeHello, Hello: &Hello{Version: 1, Token: "t"}}); err != nil {
		t.Fatal(err)
	}
	m, err := ReadMessage(ctrl)
	if err != nil {
		t.Fatalf("reading the reply: %v", err)
	}
	if m.Error == nil || m.Error.Code != CodeBadVersion || !m.Error.Code.Fatal() {
		t.Errorf("reply %+v, want a fatal %s error", m, CodeBadVersion)
	}
	if n, err := ctrl.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("after the reply: read %d bytes, %v; want the end of the stream", n, err)
	}
}
