// Package httperr renders the error pages that the relay and the forwarder
// send to public HTTP clients. Every page carries a stable code, both in the
// body and in the Porthole-Error header, so that scripts can branch on it.
package httperr

import (
	"bytes"
	"fmt"
	"html"
	"io"
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
	IPDenied            Code = "PH-403-IP-DENIED"         // the tunnel's address rules refuse the client
	RateLimited         Code = "PH-429-RATE-LIMITED"      // the client sent more requests than the tunnel's rate limit
	BadRequest          Code = "PH-400-BAD-REQUEST"       // the request head could not be parsed
	HeadTimeout         Code = "PH-408-HEAD-TIMEOUT"      // the request head did not arrive in time
	TooManyConns        Code = "PH-429-TOO-MANY-CONNS"    // the client has too many connections open to the tunnel
	HeadTooLarge        Code = "PH-431-HEAD-TOO-LARGE"    // the request head is over the limit
	ClientBacklog       Code = "PH-429-CLIENT-BACKLOG"    // the client's address left more unread than its share
	RelayBacklog        Code = "PH-503-RELAY-BACKLOG"     // the relay holds all it may for clients that do not read
)

// Header is the response header that carries the code.
const Header = "Porthole-Error"

// Write sends an error page with the status, code and a one-line detail.
func Write(w http.ResponseWriter, status int, code Code, detail string) {
	setHeaders(w.Header(), code)
	w.WriteHeader(status)
	w.Write(page(status, code, detail))
}

// WriteResponse writes an error page as a whole HTTP/1.1 response that
// closes the connection, for a connection no http.Server serves. extra
// headers (such as Retry-After) are added to it.
func WriteResponse(w io.Writer, status int, code Code, detail string, extra http.Header) error {
	body := page(status, code, detail)
	h := extra.Clone()
	if h == nil {
		h = http.Header{}
	}
	setHeaders(h, code)
	resp := &http.Response{
		StatusCode: status, ProtoMajor: 1, ProtoMinor: 1, Header: h, Close: true,
		Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
	}
	return resp.Write(w)
}

func setHeaders(h http.Header, code Code) {
	h.Set(Header, string(code))
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
}

func page(status int, code Code, detail string) []byte {
	return fmt.Appendf(nil, "<!doctype html>\n<title>%d %s</title>\n<h1>%d %s</h1>\n<p>%s</p>\n<p><code>%s</code></p>\n",
		status, http.StatusText(status), status, http.StatusText(status), html.EscapeString(detail), code)
}
