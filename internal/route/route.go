// Package route declares the HTTP routes. Each route is declared once,
// beside its handler (commands, readapi, history, internal/app), as a Route
// value; internal/app gathers the list and from it mounts the router and
// builds the authorization guard, and the tests check /openapi.json and
// their own coverage against it.
package route

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"passerelle/internal/api"
	"passerelle/internal/authz"
)

// Route is one route of the HTTP API.
type Route struct {
	Method  string // http.MethodGet or http.MethodPost
	Pattern string // chi pattern: /v1/offers/{id}/withdraw
	Summary string // one line; the summary of its OpenAPI operation
	Status  int    // the status of a success

	// Body is the type of a command's strict JSON body (nil: none, at most
	// an empty object). Its fields are required unless tagged omitempty.
	Body reflect.Type
	// OptionalBody: an empty body reads as {}.
	OptionalBody bool

	// Query names the query parameters a query reads.
	Query []string
	// StrictQuery: any other query parameter is refused (400 naming it).
	StrictQuery bool

	// Allow is who may call it; the zero Rule refuses everyone, and
	// authz.Open lets everyone in without a token.
	Allow authz.Rule

	Handler http.Handler
}

// Key is "METHOD pattern", the route's name in the guard and in tests.
func (r Route) Key() string { return r.Method + " " + r.Pattern }

var param = regexp.MustCompile(`\{([^}]+)\}`)

// PathParams are the names of the pattern's {parameters}, in order.
func (r Route) PathParams() []string {
	var out []string
	for _, m := range param.FindAllStringSubmatch(r.Pattern, -1) {
		out = append(out, m[1])
	}
	return out
}

// Mount serves every route on mux. Declaring a route twice is a programming
// error: it panics, as chi does for a malformed pattern.
func Mount(mux chi.Router, routes []Route) {
	seen := map[string]bool{}
	for _, rt := range routes {
		if seen[rt.Key()] || rt.Handler == nil {
			panic(fmt.Sprintf("route %s: declared twice or without a handler", rt.Key()))
		}
		seen[rt.Key()] = true
		h := rt.Handler
		if len(rt.Query) > 0 || rt.StrictQuery {
			h = checkQuery(rt.Query, rt.StrictQuery, h)
		}
		mux.Method(rt.Method, rt.Pattern, h)
	}
}

// Rules is the guard's table: each route's rule by its key.
func Rules(routes []Route) map[string]authz.Rule {
	out := make(map[string]authz.Rule, len(routes))
	for _, rt := range routes {
		out[rt.Key()] = rt.Allow
	}
	return out
}

// checkQuery parses the query once, for the checks and for the handler
// (api.Query). On a route that reads parameters (known) it refuses one
// whose value, once decoded, is not valid UTF-8 or holds a NUL
// character; then, when strict, a parameter the route does not read;
// each time naming the first such parameter in alphabetical order, so
// that the answer does not vary.
func checkQuery(known []string, strict bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if len(q) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		if len(known) > 0 {
			if name, ok := notText(q); !ok {
				api.WriteError(w, r, api.Invalid(name, "must be valid UTF-8 without NUL characters"))
				return
			}
		}
		if strict {
			if name, ok := unknown(q, known); !ok {
				api.WriteError(w, r, api.Invalid(name, "unknown query parameter"))
				return
			}
		}
		next.ServeHTTP(w, api.WithQuery(r, q))
	})
}

// notText names the first parameter, in alphabetical order, whose name or
// a value is not valid UTF-8 or holds a NUL character; ok when none does.
func notText(q url.Values) (name string, ok bool) {
	for _, k := range slices.Sorted(maps.Keys(q)) {
		for _, v := range q[k] {
			if !utf8.ValidString(k+v) || strings.IndexByte(k+v, 0) >= 0 {
				return strings.ReplaceAll(strings.ToValidUTF8(k, "\uFFFD"), "\x00", `\u0000`), false
			}
		}
	}
	return "", true
}

// unknown names the first parameter, in alphabetical order, that is not
// among known; ok when there is none.
func unknown(q url.Values, known []string) (name string, ok bool) {
	var out []string
	for k := range q {
		if !slices.Contains(known, k) {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return "", true
	}
	return slices.Min(out), false
}

// BodyFields are the JSON fields of a body type and, among them, the
// required ones: those not tagged omitempty, and those tagged
// `required:"true"` (present even when zero, see api.Unmarshal).
func BodyFields(t reflect.Type) (fields, required []string) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil, nil
	}
	for f := range t.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		fields = append(fields, name)
		if f.Tag.Get("required") == "true" || !slices.Contains(strings.Split(opts, ","), "omitempty") {
			required = append(required, name)
		}
	}
	return fields, required
}
