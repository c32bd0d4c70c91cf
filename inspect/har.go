package inspect

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/), the format
// browsers' developer tools import.
type harLog struct {
	Log struct {
		Version string     `json:"version"`
		Creator harCreator `json:"creator"`
		Entries []harEntry `json:"entries"`
	} `json:"log"`
}

type harCreator struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

type harEntry struct {
	StartedDateTime string      `json:"startedDateTime"`
	Time            float64     `json:"time"` // milliseconds
	Request         harRequest  `json:"request"`
	Response        harResponse `json:"response"`
	Cache           struct{}    `json:"cache"`
	Timings         harTimings  `json:"timings"`
	ServerIPAddress string      `json:"serverIPAddress,omitempty"`
	Comment         string      `json:"comment,omitempty"`
}

type harNV struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type harRequest struct {
	Method      string       `json:"method"`
	URL         string       `json:"url"`
	HTTPVersion string       `json:"httpVersion"`
	Cookies     []harNV      `json:"cookies"`
	Headers     []harNV      `json:"headers"`
	QueryString []harNV      `json:"queryString"`
	PostData    *harPostData `json:"postData,omitempty"`
	HeadersSize int          `json:"headersSize"`
	BodySize    int64        `json:"bodySize"`
}

type harPostData struct {
	MimeType string `json:"mimeType"`
	Text     string `json:"text"`
	Encoding string `json:"encoding,omitempty"` // "base64" for binary, a common extension
}

type harResponse struct {
	Status      int        `json:"status"`
	StatusText  string     `json:"statusText"`
	HTTPVersion string     `json:"httpVersion"`
	Cookies     []harNV    `json:"cookies"`
	Headers     []harNV    `json:"headers"`
	Content     harContent `json:"content"`
	RedirectURL string     `json:"redirectURL"`
	HeadersSize int        `json:"headersSize"`
	BodySize    int64      `json:"bodySize"`
}

type harContent struct {
	Size     int64  `json:"size"`
	MimeType string `json:"mimeType"`
	Text     string `json:"text,omitempty"`
	Encoding string `json:"encoding,omitempty"`
	Comment  string `json:"comment,omitempty"`
}

type harTimings struct {
	Send    float64 `json:"send"`
	Wait    float64 `json:"wait"`
	Receive float64 `json:"receive"`
}

// HAR renders exchanges, oldest first, as a HAR 1.2 log.
func HAR(xs []*Exchange) any {
	var l harLog
	l.Log.Version = "1.2"
	l.Log.Creator = harCreator{Name: "Porthole", Version: "1"}
	l.Log.Entries = []harEntry{}
	for i := len(xs) - 1; i >= 0; i-- {
		l.Log.Entries = append(l.Log.Entries, harFor(xs[i]))
	}
	return l
}

func harFor(x *Exchange) harEntry {
	ms := float64(x.Duration) / float64(time.Millisecond)
	scheme := "http"
	if x.TLS {
		scheme = "https"
	}
	u := scheme + "://" + x.Request.Host + x.Request.URI
	e := harEntry{
		StartedDateTime: x.Start.Format(time.RFC3339Nano),
		Time:            ms,
		Timings:         harTimings{Send: 0, Wait: ms, Receive: 0},
		Request: harRequest{
			Method: x.Request.Method, URL: u, HTTPVersion: x.Request.Proto,
			Cookies: []harNV{}, Headers: harHeaders(withHost(x.Request)), QueryString: harQuery(x.Request.URI),
			HeadersSize: -1, BodySize: x.Request.BodySize,
		},
		Response: harResponse{Status: 0, HTTPVersion: x.Request.Proto, Cookies: []harNV{}, Headers: []harNV{},
			HeadersSize: -1, BodySize: -1, Content: harContent{MimeType: "x-unknown"}},
	}
	if x.ReplayOf != "" {
		e.Comment = "replay of " + x.ReplayOf
	}
	if x.Request.BodySize > 0 {
		text, enc := harText(x.Request.Body)
		e.Request.PostData = &harPostData{MimeType: x.Request.Header().Get("Content-Type"), Text: text, Encoding: enc}
	}
	if r := x.Response; r != nil {
		text, enc := harText(r.Body)
		h := r.Header()
		e.Response = harResponse{
			Status: r.Status, StatusText: http.StatusText(r.Status), HTTPVersion: r.Proto,
			Cookies: []harNV{}, Headers: harHeaders(h), RedirectURL: h.Get("Location"),
			HeadersSize: -1, BodySize: r.BodySize,
			Content: harContent{Size: r.BodySize, MimeType: orUnknown(h.Get("Content-Type")), Text: text, Encoding: enc},
		}
		if r.Truncated {
			e.Response.Content.Comment = "body truncated at the capture limit"
		}
	}
	return e
}

func orUnknown(s string) string {
	if s == "" {
		return "x-unknown"
	}
	return s
}

// harText returns a body as text, or base64 when it is not UTF-8.
func harText(b []byte) (string, string) {
	if utf8.Valid(b) {
		return string(b), ""
	}
	return base64.StdEncoding.EncodeToString(b), "base64"
}

func harHeaders(h http.Header) []harNV {
	out := []harNV{}
	for k, vs := range h {
		for _, v := range vs {
			out = append(out, harNV{k, v})
		}
	}
	sortNV(out)
	return out
}

func harQuery(uri string) []harNV {
	out := []harNV{}
	_, q, ok := strings.Cut(uri, "?")
	if !ok {
		return out
	}
	vals, _ := url.ParseQuery(q)
	for k, vs := range vals {
		for _, v := range vs {
			out = append(out, harNV{k, v})
		}
	}
	sortNV(out)
	return out
}

func sortNV(nv []harNV) {
	slices.SortStableFunc(nv, func(a, b harNV) int { return strings.Compare(a.Name, b.Name) })
}

func (a *API) harList(w http.ResponseWriter, r *http.Request) {
	var xs []*Exchange
	if ids := r.URL.Query().Get("ids"); ids != "" {
		for _, id := range strings.Split(ids, ",") {
			if x := a.store.Get(id); x != nil {
				xs = append(xs, x)
			}
		}
		slices.SortFunc(xs, func(a, b *Exchange) int { return strings.Compare(b.ID, a.ID) }) // newest first, as List
	} else {
		xs = a.store.List(0, r.URL.Query().Get("tunnel_name"))
	}
	w.Header().Set("Content-Disposition", `attachment; filename="porthole.har"`)
	a.json(w, http.StatusOK, HAR(xs))
}

func (a *API) harOne(w http.ResponseWriter, r *http.Request) {
	x := a.store.Get(r.PathValue("id"))
	if x == nil {
		a.fail(w, http.StatusNotFound, CodeNotFound, "request not found", nil)
		return
	}
	w.Header().Set("Content-Disposition", `attachment; filename="porthole-`+x.ID+`.har"`)
	a.json(w, http.StatusOK, HAR([]*Exchange{x}))
}
