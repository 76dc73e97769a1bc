// Package authz decides who may call which route. Each route declares its
// Rule (package route); the Guard enforces them over the whole HTTP API: a
// route with no rule is refused to everyone.
//
// Ownership (whose offer, whose pupil, whose convention) is read from the
// event log, the authoritative record, not from the read models, which may
// lag behind a command just written. A principal who does not own a
// resource gets the same 403 whether the resource exists or not.
package authz

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"

	"passerelle/eventstore"
	"passerelle/internal/api"
	"passerelle/internal/auth"
)

// request is what a rule may look at.
type request struct {
	ctx    context.Context
	p      auth.Principal
	params map[string]string
	query  url.Values
	body   []byte
	store  eventstore.Store // ownership is read from the log
}

// field reads one string field of the JSON body; a body that is not JSON
// gives "" and the route's own validation answers it.
func (r *request) field(name string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(r.body, &m) != nil {
		return ""
	}
	var s string
	_ = json.Unmarshal(m[name], &s)
	return s
}

// Guard checks every request against its route's rule before the router
// runs it.
type Guard struct {
	verifier auth.Verifier
	mux      *chi.Mux
	store    eventstore.Store
	rules    map[string]Rule
}

// New guards mux with rules, each route's rule by "METHOD pattern" (a
// route without one is refused to everyone): tokens are checked by
// verifier, ownership read from store.
func New(mux *chi.Mux, verifier auth.Verifier, store eventstore.Store, rules map[string]Rule) *Guard {
	return &Guard{verifier: verifier, mux: mux, store: store, rules: rules}
}

func (g *Guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rctx := chi.NewRouteContext()
	path := r.URL.RawPath // the path the router routes on: an encoded / stays in its segment
	if path == "" {
		path = r.URL.Path
	}
	if !g.mux.Match(rctx, r.Method, path) {
		g.mux.ServeHTTP(w, r) // 404 or 405, as the router answers
		return
	}
	rl := g.rules[r.Method+" "+rctx.RoutePattern()]
	if rl.open && (rl.unless == "" || !r.URL.Query().Has(rl.unless)) {
		g.mux.ServeHTTP(w, r)
		return
	}
	p, err := g.authenticate(r)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="passerelle"`)
		api.WriteError(w, r, api.Errorf(http.StatusUnauthorized, "unauthenticated", "%s", err.Error()))
		return
	}
	if rl.allow == nil {
		api.WriteError(w, r, forbidden())
		return
	}
	req := &request{ctx: r.Context(), p: p, params: map[string]string{}, query: r.URL.Query(), store: g.store}
	for i, k := range rctx.URLParams.Keys {
		req.params[k] = rctx.URLParams.Values[i]
	}
	if r.Method == http.MethodPost && r.Body != nil {
		body, err := io.ReadAll(io.LimitReader(r.Body, api.MaxBody+1))
		if err != nil {
			api.WriteError(w, r, api.Errorf(http.StatusBadRequest, "validation_failed", "cannot read request body"))
			return
		}
		req.body = body
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	allowed, err := rl.allow(req)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if !allowed {
		api.WriteError(w, r, forbidden())
		return
	}
	g.mux.ServeHTTP(w, r.WithContext(auth.With(r.Context(), p)))
}

func (g *Guard) authenticate(r *http.Request) (auth.Principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return auth.Principal{}, errors.New("a bearer token is required (Authorization: Bearer <token>)")
	}
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || token == "" {
		return auth.Principal{}, errors.New("the Authorization header must be: Bearer <token>")
	}
	p, err := g.verifier.Verify(token)
	if err != nil {
		return auth.Principal{}, errors.New("the bearer token is invalid or expired")
	}
	return p, nil
}

func forbidden() *api.Error {
	return api.Errorf(http.StatusForbidden, "forbidden", "this role may not do this, or not on this resource")
}
