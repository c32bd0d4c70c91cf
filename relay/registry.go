package relay

import (
	"crypto/rand"
	"net"
	"strconv"
	"sync"
	"time"

	"porthole/wire"
)

// registry maps public names and ports to live bindings. A name or port
// whose agent disconnected stays reserved for that agent's token for the
// grace period, so a reconnecting agent gets its address back; a name listed
// for a token in the tokens file is that token's for good.
type registry struct {
	grace time.Duration

	mu       sync.Mutex
	names    map[string]*binding
	ports    map[int]*binding
	held     map[string]hold // name -> grace reservation
	heldPort map[int]hold
	static   map[string]identity // names reserved in the tokens file
}

type hold struct {
	owner identity
	until time.Time
}

func newRegistry(static map[string]identity, grace time.Duration) *registry {
	return &registry{
		grace:    grace,
		names:    map[string]*binding{},
		ports:    map[int]*binding{},
		held:     map[string]hold{},
		heldPort: map[int]hold{},
		static:   static,
	}
}

// setStatic replaces the names reserved in the tokens file, by owner.
func (r *registry) setStatic(static map[string]identity) {
	r.mu.Lock()
	r.static = static
	r.mu.Unlock()
}

// reservedFor reports whether the tokens file gives name to who.
func (r *registry) reservedFor(name string, who identity) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	owner, ok := r.static[name]
	return ok && owner == who
}

// lookup returns the live binding for a name, and whether the name is
// reserved for a disconnected agent (an offline tunnel).
func (r *registry) lookup(name string) (b *binding, offline bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b := r.names[name]; b != nil {
		return b, false
	}
	h, ok := r.held[name]
	return nil, ok && time.Now().Before(h.until)
}

// claimName gives name (or a random free one if empty) to b. A live
// binding is never taken over, whatever its owner: an agent that comes
// back after its link died replaces its old session first (see
// Server.addSession), which releases the name for it.
func (r *registry) claimName(name string, b *binding) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if name == "" {
		for {
			name = randomName()
			if r.names[name] == nil && !r.heldByOther(name, b.owner) {
				if _, ok := r.static[name]; !ok {
					break
				}
			}
		}
	}
	if owner, ok := r.static[name]; ok && owner != b.owner {
		return wire.Errorf(wire.CodeNameDenied, "name %q is reserved for another token", name)
	}
	if r.names[name] != nil {
		return wire.Errorf(wire.CodeNameTaken, "name %q is in use by another agent", name)
	}
	if r.heldByOther(name, b.owner) {
		return wire.Errorf(wire.CodeNameTaken, "name %q is held for its disconnected agent for a while", name)
	}
	delete(r.held, name)
	b.name = name
	r.names[name] = b
	return nil
}

func (r *registry) heldByOther(name string, who identity) bool {
	h, ok := r.held[name]
	return ok && h.owner != who && time.Now().Before(h.until)
}

// claimPort gives b a TCP listener on host, on port (or a free port in
// pr when zero). Like names, live ports are never taken over.
func (r *registry) claimPort(host string, port int, pr PortRange, b *binding) (ln net.Listener, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	listen := func(p int) (net.Listener, error) {
		return net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
	}
	if port == 0 {
		if pr.Any() {
			ln, err = listen(0)
		} else {
			err = wire.Errorf(wire.CodeNoPorts, "no free TCP port in %s", pr)
			for p := pr.Lo; p <= pr.Hi; p++ {
				if r.ports[p] != nil || r.heldPortByOther(p, b.owner) {
					continue
				}
				if l, lerr := listen(p); lerr == nil {
					ln, err = l, nil
					break
				}
			}
		}
		if err != nil {
			if _, ok := err.(*wire.Error); !ok {
				err = wire.Errorf(wire.CodeNoPorts, "no free TCP port: %v", err)
			}
			return nil, err
		}
	} else {
		if !pr.Contains(port) {
			return nil, wire.Errorf(wire.CodePortTaken, "port %d is outside the relay's range %s", port, pr)
		}
		if r.ports[port] != nil {
			return nil, wire.Errorf(wire.CodePortTaken, "port %d is in use by another agent", port)
		}
		if r.heldPortByOther(port, b.owner) {
			return nil, wire.Errorf(wire.CodePortTaken, "port %d is held for its disconnected agent for a while", port)
		}
		if ln, err = listen(port); err != nil {
			return nil, wire.Errorf(wire.CodePortTaken, "port %d is not available", port)
		}
	}
	b.port = ln.Addr().(*net.TCPAddr).Port
	delete(r.heldPort, b.port)
	r.ports[b.port] = b
	return ln, nil
}

func (r *registry) heldPortByOther(p int, who identity) bool {
	h, ok := r.heldPort[p]
	return ok && h.owner != who && time.Now().Before(h.until)
}

// release removes b if it is still the live binding for its name or port,
// and holds them for its owner for the grace period.
func (r *registry) release(b *binding) {
	r.mu.Lock()
	defer r.mu.Unlock()
	until := time.Now().Add(r.grace)
	if b.name != "" && r.names[b.name] == b {
		delete(r.names, b.name)
		r.held[b.name] = hold{b.owner, until}
	}
	if b.port != 0 && r.ports[b.port] == b {
		delete(r.ports, b.port)
		r.heldPort[b.port] = hold{b.owner, until}
	}
	r.sweep()
}

// sweep forgets expired reservations; called with mu held.
func (r *registry) sweep() {
	now := time.Now()
	for n, h := range r.held {
		if now.After(h.until) {
			delete(r.held, n)
		}
	}
	for p, h := range r.heldPort {
		if now.After(h.until) {
			delete(r.heldPort, p)
		}
	}
}

const nameAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

func randomName() string {
	b := make([]byte, 10)
	rand.Read(b)
	for i := range b {
		b[i] = nameAlphabet[int(b[i])%len(nameAlphabet)]
	}
	return string(b)
}
