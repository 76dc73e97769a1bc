// Package authz decides who may call which route, in one table. It guards
// the whole HTTP API: a route with no rule is refused to everyone.
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

// Guard checks every request against the table before the router runs it.
type Guard struct {
	verifier auth.Verifier
	mux      *chi.Mux
	store    eventstore.Store
	rules    map[string]Rule
}

// New guards mux: tokens are checked by verifier, ownership read from store.
func New(mux *chi.Mux, verifier auth.Verifier, store eventstore.Store) *Guard {
	return &Guard{verifier: verifier, mux: mux, store: store, rules: table()}
}

func (g *Guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rctx := chi.NewRouteContext()
	if !g.mux.Match(rctx, r.Method, r.URL.Path) {
		g.mux.ServeHTTP(w, r) // 404 or 405, as the router answers
		return
	}
	rl := g.rules[r.Method+" "+rctx.RoutePattern()]
	if rl.open {
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
	req := &request{ctx: r.Context(), p: p, params: map[string]string{}, store: g.store}
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

// table is the authorization matrix: one rule per route.
func table() map[string]Rule {
	bo := Backoffice
	return map[string]Rule{
		"GET /healthz": Open, "GET /readyz": Open, "GET /metrics": Open, "GET /openapi.json": Open,

		// registrations
		"POST /v1/employers":          Roles(auth.Backoffice, auth.Operator),
		"POST /v1/schools":            bo,
		"POST /v1/pupils":             AnyOf(bo, School(Field("school_uai"))),
		"POST /v1/pupils/{id}/forget": bo,

		// offers
		"POST /v1/offers":               AnyOf(bo, Employer(Field("employer_id")), Roles(auth.Operator)),
		"POST /v1/offers/{id}/withdraw": AnyOf(bo, OfferOwner),
		"POST /v1/offers/{id}/amend":    AnyOf(bo, OfferOwner),
		"POST /v1/offers/{id}/reopen":   AnyOf(bo, OfferOwner),

		// applications
		"POST /v1/offers/{id}/applications":   AnyOf(bo, Pupil(Field("pupil_id"))),
		"POST /v1/applications/{id}/read":     AnyOf(bo, Employer(ApplicationEmployer)),
		"POST /v1/applications/{id}/accept":   AnyOf(bo, Employer(ApplicationEmployer)),
		"POST /v1/applications/{id}/reject":   AnyOf(bo, Employer(ApplicationEmployer)),
		"POST /v1/applications/{id}/cancel":   AnyOf(bo, Employer(ApplicationEmployer)),
		"POST /v1/applications/{id}/withdraw": AnyOf(bo, Pupil(ApplicationPupil)),
		"POST /v1/applications/{id}/confirm":  AnyOf(bo, Pupil(ApplicationPupil)),

		// conventions
		"POST /v1/conventions/{id}/complete":   AnyOf(bo, CompletingParty),
		"POST /v1/conventions/{id}/cancel":     AnyOf(bo, Employer(ConventionEmployer), School(ConventionSchool)),
		"POST /v1/conventions/{id}/signatures": Signer,

		// queries
		"GET /v1/offers":                      Users(),
		"GET /v1/offers/{id}":                 Users(),
		"GET /v1/stats/offers":                Users(auth.Statistician),
		"GET /v1/stats/stream":                Users(auth.Statistician),
		"GET /v1/stats/placements":            Roles(auth.Backoffice, auth.Statistician, auth.School),
		"GET /v1/applications/{id}":           AnyOf(bo, Pupil(ApplicationPupil), Guardian(ApplicationPupil), School(ApplicationSchool), Employer(ApplicationEmployer)),
		"GET /v1/conventions/{id}":            AnyOf(bo, Pupil(ConventionPupil), Guardian(ConventionPupil), School(ConventionSchool), Employer(ConventionEmployer)),
		"GET /v1/pupils/{id}/applications":    AnyOf(bo, Pupil(Param("id")), Guardian(Param("id")), School(PupilSchool)),
		"GET /v1/pupils/{id}":                 AnyOf(bo, Pupil(Param("id")), Guardian(Param("id")), School(PupilSchool)),
		"GET /v1/employers/{id}/applications": AnyOf(bo, Employer(Param("id"))),
		"GET /v1/schools/{uai}/dashboard":     AnyOf(bo, School(Param("uai"))),
		"GET /v1/schools/{uai}/pupils":        AnyOf(bo, School(Param("uai"))),
		"GET /v1/schools/{uai}/pupils/{id}":   AnyOf(bo, School(Param("uai"))),
		"GET /v1/pupils/{id}/follow-up":       AnyOf(bo, Pupil(Param("id")), Guardian(Param("id")), School(PupilSchool)),
		"POST /v1/targets":                    bo,
		"GET /v1/audit/applications/{id}":     Roles(auth.Auditor, auth.Backoffice),
	}
}
