// Package inspect records the traffic of an agent's tunnels and serves it:
// a capture middleware for HTTP tunnels and connection counters for every
// tunnel (capture.go, metrics.go), a store of exchanges packed one to a
// byte run (entry.go) in memory of its own, bounded by a budget (store.go,
// region_*.go), the agent API compatible with ngrok's (api.go), HAR export
// (har.go), and the one-page web inspector embedded from web/ (web.go).
//
// It builds without cgo and imports no GUI or keyring code: the command
// line and the desktop app both serve it.
package inspect
