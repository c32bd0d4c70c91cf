// Package httperr renders the error pages that the relay and the forwarder
// send to public HTTP clients. Every page carries a stable code, both in the
// body and in the Porthole-Error header, so that scripts can branch on it.
package httperr

import (
	"fmt"
	"html"
	"net/http"
)

// Code is a stable error code shown to public clients.
type Code string

// Codes for public error pages.
const (
	TunnelNotFound      Code = "PH-404-TUNNEL-NOT-FOUND"  // no tunnel has this hostname
	TunnelOffline       Code = "PH-503-TUNNEL-OFFLINE"    // the tunnel's agent is disconnected
	UpstreamRefused     Code = "PH-502-UPSTREAM-REFUSED"  // the upstream refused the connection
	UpstreamUnreachable Code = "PH-502-UPSTREAM-DIAL"     // the upstream could not be dialed
	UpstreamBadResponse Code = "PH-502-UPSTREAM-RESPONSE" // the upstream sent an invalid response
	UpstreamTLS         Code = "PH-502-UPSTREAM-TLS"      // the upstream's certificate was not trusted
	UpstreamTimeout     Code = "PH-504-UPSTREAM-TIMEOUT"  // the upstream did not answer in time
	AuthRequired        Code = "PH-401-AUTH-REQUIRED"     // the tunnel asks for basic auth
	Misdirected         Code = "PH-421-MISDIRECTED"       // the request names another tunnel than its connection
)

// Header is the response header that carries the code.
const Header = "Porthole-Error"

// Write sends an error page with the status, code and a one-line detail.
func Write(w http.ResponseWriter, status int, code Code, detail string) {
	h := w.Header()
	h.Set(Header, string(code))
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!doctype html>\n<title>%d %s</title>\n<h1>%d %s</h1>\n<p>%s</p>\n<p><code>%s</code></p>\n",
		status, http.StatusText(status), status, http.StatusText(status), html.EscapeString(detail), code)
}
