package inspect

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// API error codes, in the "error_code" field of every error body, beside
// "status_code" and "msg", as ngrok's agent answers.
const (
	CodeNotFound      = 100 // 404: no such tunnel or request
	CodeBadRequest    = 101 // 400: malformed body or parameter
	CodeInvalidTunnel = 102 // 400: the tunnel definition is invalid
	CodeStartFailed   = 103 // 502: the relay refused the tunnel
	CodeExists        = 104 // 409: a tunnel with that name runs already
	CodeUnavailable   = 105 // 503: the agent is not connected to its relay
	CodeMethod        = 106 // 405: method not allowed on this resource
	CodeForbidden     = 107 // 403: Host or Origin not allowed (DNS rebinding, cross-site)
	CodeReplayFailed  = 108 // 502: the replay did not reach the upstream
	CodeNotReplayable = 109 // 400: the request cannot be sent again as captured
)

// apiError is the JSON body of every error answer.
type apiError struct {
	ErrorCode  int               `json:"error_code"`
	StatusCode int               `json:"status_code"`
	Msg        string            `json:"msg"`
	Details    map[string]string `json:"details"`
}

// API serves the agent API and the web inspector for one store and agent.
type API struct {
	store *Store
	agent Agent
	log   *slog.Logger
	mux   *http.ServeMux
}

// NewAPI returns the handler of the agent API (under /api/) and the web
// inspector (everything else). It checks nothing about the Host: Server
// does.
func NewAPI(store *Store, agent Agent, log *slog.Logger) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &API{store: store, agent: agent, log: log, mux: http.NewServeMux()}
	m := a.mux
	m.HandleFunc("GET /api/{$}", a.root)
	m.HandleFunc("GET /api/status", a.status)
	m.HandleFunc("GET /api/tunnels", a.listTunnels)
	m.HandleFunc("POST /api/tunnels", a.startTunnel)
	m.HandleFunc("GET /api/tunnels/{name}", a.tunnel)
	m.HandleFunc("DELETE /api/tunnels/{name}", a.stopTunnel)
	m.HandleFunc("GET /api/requests/http", a.listRequests)
	m.HandleFunc("POST /api/requests/http", a.replay)
	m.HandleFunc("DELETE /api/requests/http", a.clearRequests)
	m.HandleFunc("GET /api/requests/http/{id}", a.request)
	m.HandleFunc("GET /api/events", a.events)
	m.HandleFunc("GET /api/har", a.harList)
	m.HandleFunc("GET /api/har/{id}", a.harOne)
	for _, p := range []string{"/api/{$}", "/api/status", "/api/tunnels", "/api/tunnels/{name}", "/api/requests/http",
		"/api/requests/http/{id}", "/api/events", "/api/har", "/api/har/{id}"} {
		m.HandleFunc(p, a.notAllowed)
	}
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, http.StatusNotFound, CodeNotFound, "no such resource", nil)
	})
	m.Handle("GET /metrics", metricsHandler(agent))
	m.Handle("/", webHandler())
	return a
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	a.mux.ServeHTTP(w, r)
}

func (a *API) notAllowed(w http.ResponseWriter, r *http.Request) {
	a.fail(w, http.StatusMethodNotAllowed, CodeMethod, "method "+r.Method+" is not allowed here", nil)
}

func (a *API) json(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		a.log.Debug("api: write", "err", err)
	}
}

func (a *API) fail(w http.ResponseWriter, status, code int, msg string, err error) {
	details := map[string]string{}
	if err != nil {
		details["err"] = err.Error()
	}
	a.json(w, status, apiError{ErrorCode: code, StatusCode: status, Msg: msg, Details: details})
}

// agentErrors maps an Agent's errors to the API's answers.
var agentErrors = []struct {
	err          error
	status, code int
	msg          string
}{
	{ErrNotFound, http.StatusNotFound, CodeNotFound, "tunnel not found"},
	{ErrInvalid, http.StatusBadRequest, CodeInvalidTunnel, "invalid tunnel configuration"},
	{ErrExists, http.StatusConflict, CodeExists, "a tunnel with this name already exists"},
	{ErrUnavailable, http.StatusServiceUnavailable, CodeUnavailable, "the agent is not connected to its relay"},
	{ErrNotReplayable, http.StatusBadRequest, CodeNotReplayable, "the request cannot be replayed"},
	{ErrUpstreamDown, http.StatusBadGateway, CodeReplayFailed, "the replay did not reach the upstream"},
	{ErrStartFailed, http.StatusBadGateway, CodeStartFailed, "failed to start tunnel"},
}

// failFor answers an Agent's error with its status and code; the details
// carry its cause.
func (a *API) failFor(w http.ResponseWriter, err error) {
	for _, e := range agentErrors {
		if errors.Is(err, e.err) {
			a.fail(w, e.status, e.code, e.msg, errors.New(strings.TrimPrefix(err.Error(), e.err.Error()+": ")))
			return
		}
	}
	a.fail(w, http.StatusBadGateway, CodeStartFailed, "failed to start tunnel", err)
}

func (a *API) root(w http.ResponseWriter, r *http.Request) {
	a.json(w, http.StatusOK, map[string]string{
		"uri": "/api/", "tunnels": "/api/tunnels", "requests": "/api/requests/http", "status": "/api/status",
	})
}

// statusJSON is GET /api/status.
type statusJSON struct {
	URI     string `json:"uri"`
	Status  string `json:"status"`
	Tunnels int    `json:"tunnels"`
	Inspect struct {
		Requests int   `json:"requests"`
		Bytes    int64 `json:"bytes"`
		Budget   int64 `json:"budget"`
		BodyCap  int   `json:"body_cap"`
	} `json:"inspect"`
}

func (a *API) status(w http.ResponseWriter, r *http.Request) {
	s := statusJSON{URI: "/api/status", Status: a.agent.Status(), Tunnels: len(a.agent.Tunnels())}
	s.Inspect.Requests = a.store.Len()
	s.Inspect.Bytes = a.store.Used()
	s.Inspect.Budget, s.Inspect.BodyCap = a.store.cfg.Budget, a.store.cfg.BodyCap
	a.json(w, http.StatusOK, s)
}

// tunnelJSON is one entry of GET /api/tunnels, in ngrok's shape.
type tunnelJSON struct {
	Name      string `json:"name"`
	URI       string `json:"uri"`
	PublicURL string `json:"public_url"`
	Proto     string `json:"proto"`
	Config    struct {
		Addr    string `json:"addr"`
		Inspect bool   `json:"inspect"`
	} `json:"config"`
	Metrics Snapshot `json:"metrics"`
}

// entries renders a tunnel as the API lists it: one entry per public
// address, the first under the tunnel's name and the others under
// "name (scheme)", as ngrok names its http and https pair.
func entries(t Tunnel) []tunnelJSON {
	var out []tunnelJSON
	var m Snapshot
	if t.Tap != nil {
		m = t.Tap.Metrics().Snapshot()
	}
	for i, u := range t.PublicURLs {
		e := tunnelJSON{Name: t.Name, PublicURL: u, Metrics: m}
		e.Proto, _, _ = strings.Cut(u, "://")
		if i > 0 {
			e.Name = fmt.Sprintf("%s (%s)", t.Name, e.Proto)
		}
		e.URI = "/api/tunnels/" + url.PathEscape(e.Name)
		e.Config.Addr, e.Config.Inspect = t.Addr, t.Inspect
		out = append(out, e)
	}
	return out
}

// findTunnel returns the tunnel an entry name belongs to, and the entry.
func (a *API) findTunnel(name string) (Tunnel, *tunnelJSON) {
	for _, t := range a.agent.Tunnels() {
		for _, e := range entries(t) {
			if e.Name == name {
				return t, &e
			}
		}
	}
	return Tunnel{}, nil
}

func (a *API) listTunnels(w http.ResponseWriter, r *http.Request) {
	list := []tunnelJSON{}
	for _, t := range a.agent.Tunnels() {
		list = append(list, entries(t)...)
	}
	a.json(w, http.StatusOK, map[string]any{"tunnels": list, "uri": "/api/tunnels"})
}

func (a *API) tunnel(w http.ResponseWriter, r *http.Request) {
	_, e := a.findTunnel(r.PathValue("name"))
	if e == nil {
		a.fail(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("tunnel %q not found", r.PathValue("name")), nil)
		return
	}
	a.json(w, http.StatusOK, e)
}

// maxBody bounds a JSON request body to the API.
const maxBody = 1 << 20

// decode reads a JSON body. Only application/json is accepted: a browser
// cannot send it cross-site without a CORS preflight, which this API never
// grants.
func (a *API) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	ct := r.Header.Get("Content-Type")
	if mt, _, _ := strings.Cut(ct, ";"); strings.TrimSpace(strings.ToLower(mt)) != "application/json" {
		a.fail(w, http.StatusUnsupportedMediaType, CodeBadRequest, "the body must be application/json", nil)
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		a.fail(w, http.StatusBadRequest, CodeBadRequest, "malformed JSON body", err)
		return false
	}
	return true
}

func (a *API) startTunnel(w http.ResponseWriter, r *http.Request) {
	var req TunnelRequest
	if !a.decode(w, r, &req) {
		return
	}
	t, err := a.agent.StartTunnel(r.Context(), req)
	if err != nil {
		a.log.Info("api: start tunnel refused", "name", req.Name, "err", err)
		a.failFor(w, err)
		return
	}
	es := entries(t)
	if len(es) == 0 {
		a.fail(w, http.StatusBadGateway, CodeStartFailed, "failed to start tunnel", errors.New("no public address"))
		return
	}
	a.json(w, http.StatusCreated, es[0])
}

func (a *API) stopTunnel(w http.ResponseWriter, r *http.Request) {
	t, e := a.findTunnel(r.PathValue("name"))
	if e == nil {
		a.fail(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("tunnel %q not found", r.PathValue("name")), nil)
		return
	}
	if err := a.agent.StopTunnel(r.Context(), t.Name); err != nil {
		a.failFor(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// exchangeJSON is a captured request in ngrok's shape, with Porthole's
// additions: replay_of, trailers, body sizes and truncation.
type exchangeJSON struct {
	URI        string        `json:"uri"`
	ID         string        `json:"id"`
	TunnelName string        `json:"tunnel_name"`
	RemoteAddr string        `json:"remote_addr"`
	Start      string        `json:"start"`
	Duration   int64         `json:"duration"`
	ReplayOf   string        `json:"replay_of,omitempty"`
	Upgraded   bool          `json:"upgraded,omitempty"`
	Request    requestJSON   `json:"request"`
	Response   *responseJSON `json:"response"`
}

type requestJSON struct {
	Method    string      `json:"method"`
	Proto     string      `json:"proto"`
	Headers   http.Header `json:"headers"`
	URI       string      `json:"uri"`
	Raw       []byte      `json:"raw"`
	Trailers  http.Header `json:"trailers,omitempty"`
	BodySize  int64       `json:"body_size"`
	Truncated bool        `json:"truncated"`
}

type responseJSON struct {
	Status     string      `json:"status"`
	StatusCode int         `json:"status_code"`
	Proto      string      `json:"proto"`
	Headers    http.Header `json:"headers"`
	Raw        []byte      `json:"raw"`
	Trailers   http.Header `json:"trailers,omitempty"`
	BodySize   int64       `json:"body_size"`
	Truncated  bool        `json:"truncated"`
}

// exchangeView renders x; raw bytes only when asked for (the detail view).
func exchangeView(x *Exchange, raw bool) exchangeJSON {
	ip := x.RemoteAddr
	if h, _, err := net.SplitHostPort(ip); err == nil {
		ip = h
	}
	v := exchangeJSON{
		URI: "/api/requests/http/" + x.ID, ID: x.ID, TunnelName: x.Tunnel, RemoteAddr: ip,
		Start: x.Start.Format(time.RFC3339Nano), Duration: int64(x.Duration), ReplayOf: x.ReplayOf, Upgraded: x.Upgraded,
		Request: requestJSON{Method: x.Request.Method, Proto: x.Request.Proto, Headers: withHost(x.Request), URI: x.Request.URI,
			Trailers: x.Request.Trailer(), BodySize: x.Request.BodySize, Truncated: x.Request.Truncated, Raw: []byte{}},
	}
	if raw {
		v.Request.Raw = x.RawRequest()
	}
	if r := x.Response; r != nil {
		v.Response = &responseJSON{Status: fmt.Sprintf("%d %s", r.Status, http.StatusText(r.Status)), StatusCode: r.Status,
			Proto: r.Proto, Headers: r.Header(), Trailers: r.Trailer(), BodySize: r.BodySize, Truncated: r.Truncated, Raw: []byte{}}
		if raw {
			v.Response.Raw = x.RawResponse()
		}
	}
	return v
}

// withHost returns the request headers with Host, which Go keeps apart.
func withHost(m Message) http.Header {
	h := m.Header()
	if m.Host != "" {
		h["Host"] = []string{m.Host}
	}
	return h
}

func (a *API) listRequests(w http.ResponseWriter, r *http.Request) {
	limit := 0
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			a.fail(w, http.StatusBadRequest, CodeBadRequest, "limit must be a number", nil)
			return
		}
		limit = n
	}
	list := []exchangeJSON{}
	for _, x := range a.store.List(limit, r.URL.Query().Get("tunnel_name")) {
		list = append(list, exchangeView(x, false))
	}
	a.json(w, http.StatusOK, map[string]any{"uri": "/api/requests/http", "requests": list})
}

func (a *API) request(w http.ResponseWriter, r *http.Request) {
	x := a.store.Get(r.PathValue("id"))
	if x == nil {
		a.fail(w, http.StatusNotFound, CodeNotFound, "request not found", nil)
		return
	}
	a.json(w, http.StatusOK, exchangeView(x, true))
}

func (a *API) clearRequests(w http.ResponseWriter, r *http.Request) {
	a.store.Clear()
	w.WriteHeader(http.StatusNoContent)
}

// replayJSON is the body of POST /api/requests/http: ngrok's id and
// tunnel_name, and Porthole's optional changes.
type replayJSON struct {
	ID         string `json:"id"`
	TunnelName string `json:"tunnel_name"`
	// TunnelNameAlt is the camel-case spelling some ngrok clients send.
	TunnelNameAlt string `json:"tunnelName"`

	Method  string      `json:"method,omitempty"`
	URI     string      `json:"uri,omitempty"`
	Headers http.Header `json:"headers,omitempty"`
	Body    *string     `json:"body,omitempty"`
}

func (a *API) replay(w http.ResponseWriter, r *http.Request) {
	var req replayJSON
	if !a.decode(w, r, &req) {
		return
	}
	x := a.store.Get(req.ID)
	if x == nil {
		a.fail(w, http.StatusNotFound, CodeNotFound, "request not found", nil)
		return
	}
	tunnel := x.Tunnel
	if n := req.TunnelName + req.TunnelNameAlt; n != "" {
		t, e := a.findTunnel(n)
		if e == nil {
			a.fail(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("tunnel %q not found", n), nil)
			return
		}
		tunnel = t.Name
	}
	c := Changes{Method: req.Method, URI: req.URI, Header: req.Headers}
	if req.Body != nil {
		b := []byte(*req.Body)
		c.Body = &b
	}
	out, err := x.ReplayRequest(r.Context(), c)
	if err != nil {
		a.failFor(w, err)
		return
	}
	if err := a.agent.Replay(tunnel, out); err != nil {
		a.failFor(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// events streams the store's changes as server-sent events: "request" and
// "update" carry the exchange (without raw bytes), "clear" carries nothing.
// A client that falls behind is disconnected; EventSource reconnects and
// the page reloads the list.
func (a *API) events(w http.ResponseWriter, r *http.Request) {
	ch, cancel := a.store.Subscribe()
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	io.WriteString(w, ": hello\n\n")
	rc.Flush()
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepAlive.C:
			io.WriteString(w, ": keep-alive\n\n")
		case e, ok := <-ch:
			if !ok {
				return
			}
			var data []byte
			if e.Exchange != nil {
				data, _ = json.Marshal(exchangeView(e.Exchange, false))
			} else {
				data = []byte("{}")
			}
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Type, data)
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
