// Package httpclient is the one HTTP client of the tests: it sends JSON to
// a Passerelle, over the network (New) or straight to a handler
// (ForHandler), as a role when the service checks tokens, and reads the
// answer without assumptions on its shape.
package httpclient

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Client sends requests; its zero value is not usable.
type Client struct {
	t    testing.TB
	base string       // a server's URL, or
	h    http.Handler // a handler served in-process
	// Token issues a bearer token for a role and subject; nil: requests
	// carry none (a service without authentication).
	Token  func(role, subject string) string
	bearer string
}

// New speaks to the server at base (e.g. httptest.Server.URL).
func New(t testing.TB, base string) Client { return Client{t: t, base: base} }

// ForHandler serves each request with h, without a network.
func ForHandler(t testing.TB, h http.Handler) Client { return Client{t: t, h: h} }

// With is the same client failing t (a subtest, a fuzz iteration).
func (c Client) With(t testing.TB) Client {
	c.t = t
	return c
}

// As is the client acting as role and subject (unchanged when Token is
// nil).
func (c Client) As(role, subject string) Client {
	if c.Token != nil {
		c.bearer = c.Token(role, subject)
	}
	return c
}

// Base is the server's URL ("" in-process).
func (c Client) Base() string { return c.base }

// Reply is an answer.
type Reply struct {
	Status int
	Header http.Header
	Body   map[string]any // the JSON object answered, nil for anything else
	Raw    string         // the body as sent; "<event stream>" for SSE
}

// Do sends method target (a path with an optional ?query). body is nil
// (none), a string or []byte sent as is ("" is none), or a value sent as
// JSON; header lists name, value pairs.
func (c Client) Do(method, target string, body any, header ...string) Reply {
	c.t.Helper()
	path, query, _ := strings.Cut(target, "?")
	return c.Raw(method, path, query, body, header...)
}

// Raw is Do with the path and the query apart. In-process the path reaches
// the router as given, unparsed, so that a fuzzer can send any string.
func (c Client) Raw(method, path, rawQuery string, body any, header ...string) Reply {
	c.t.Helper()
	raw := c.encode(method, path, body)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := c.request(ctx, method, path, rawQuery, raw)
	if len(raw) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp := c.send(req, method, path)
	defer func() { _ = resp.Body.Close() }()
	return c.reply(resp, method, path)
}

// encode is the body as sent: nothing, a string or bytes as is, or JSON.
func (c Client) encode(method, path string, body any) []byte {
	c.t.Helper()
	switch b := body.(type) {
	case nil:
		return nil
	case string:
		return []byte(b)
	case []byte:
		return b
	}
	raw, err := json.Marshal(body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return raw
}

// request is the request to the handler, or to the server at base.
func (c Client) request(ctx context.Context, method, path, rawQuery string, raw []byte) *http.Request {
	c.t.Helper()
	if c.h != nil {
		req := httptest.NewRequestWithContext(ctx, method, "/", bytes.NewReader(raw))
		req.URL.Path, req.URL.RawPath, req.URL.RawQuery = path, "", rawQuery
		return req
	}
	target := c.base + path
	if rawQuery != "" {
		target += "?" + rawQuery
	}
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(raw))
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return req
}

// send serves req in-process or sends it over the network.
func (c Client) send(req *http.Request, method, path string) *http.Response {
	c.t.Helper()
	if c.h != nil {
		rec := httptest.NewRecorder()
		c.h.ServeHTTP(rec, req)
		return rec.Result()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// reply reads the answer: its body, and the JSON object when it is one.
func (c Client) reply(resp *http.Response, method, path string) Reply {
	c.t.Helper()
	r := Reply{Status: resp.StatusCode, Header: resp.Header}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		r.Raw = "<event stream>" // endless: not read past its headers
		return r
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	r.Raw = string(b)
	if len(b) > 0 && b[0] == '{' {
		_ = json.Unmarshal(b, &r.Body) // not JSON: Body stays nil, Raw tells
	}
	return r
}

// Must sends a request and fails the test unless the status is want; it
// returns the JSON object answered.
func (c Client) Must(want int, method, target string, body any, header ...string) map[string]any {
	c.t.Helper()
	r := c.Do(method, target, body, header...)
	if r.Status != want {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, target, r.Status, want, r.Raw)
	}
	if r.Body == nil && strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		c.t.Fatalf("%s %s: the answer is not a JSON object: %s", method, target, r.Raw)
	}
	return r.Body
}
