// Command porthole runs a Porthole relay or agent without the desktop app.
//
//	porthole relay [flags]              run a relay
//	porthole http UPSTREAM [flags]      expose an HTTP service
//	porthole tcp UPSTREAM [flags]       expose a TCP service
//	porthole tls UPSTREAM [flags]       expose a TLS service, routed by SNI
//	porthole start PROFILE... | --all   run saved profiles
//
// It builds without cgo and shares its engine and profile store with the
// desktop app.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
