//go:build race

package inspect

// raceEnabled: the race detector makes sync.Pool drop items at random and
// adds memory of its own, so allocation and memory tests do not hold.
const raceEnabled = true
