// Package e2e tests Porthole end to end: real relays, real forwarders and
// real upstreams on loopback, driven through public connections as a user's
// clients would.
package e2e
