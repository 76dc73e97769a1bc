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

	"passerelle/domain"
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
	query  func(string) string
	owners *owners
}

func (r *request) param(k string) string { return r.params[k] }

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

// rule allows (true) or refuses a request.
type rule func(r *request) (bool, error)

// Guard checks every request against the table before the router runs it.
type Guard struct {
	verifier auth.Verifier
	mux      *chi.Mux
	owners   *owners
	rules    map[string]rule
}

// New guards mux: tokens are checked by verifier, ownership read from store.
func New(mux *chi.Mux, verifier auth.Verifier, store eventstore.Store) *Guard {
	return &Guard{verifier: verifier, mux: mux, owners: &owners{store: store}, rules: table()}
}

// Allow adds or replaces the rule of one route, e.g. for routes added by
// other packages: Allow("POST /v1/targets", auth.Backoffice).
func (g *Guard) Allow(route string, roles ...string) { g.rules[route] = hasRole(roles...) }

func (g *Guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rctx := chi.NewRouteContext()
	if !g.mux.Match(rctx, r.Method, r.URL.Path) {
		g.mux.ServeHTTP(w, r) // 404 or 405, as the router answers
		return
	}
	route := r.Method + " " + rctx.RoutePattern()
	if open[route] {
		g.mux.ServeHTTP(w, r)
		return
	}
	p, err := g.authenticate(r)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="passerelle"`)
		api.WriteError(w, r, api.Errorf(http.StatusUnauthorized, "unauthenticated", "%s", err.Error()))
		return
	}
	rl, ok := g.rules[route]
	if !ok {
		api.WriteError(w, r, forbidden())
		return
	}
	req := &request{ctx: r.Context(), p: p, params: map[string]string{}, query: r.URL.Query().Get, owners: g.owners}
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
	allowed, err := rl(req)
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

// open routes need no token.
var open = map[string]bool{
	"GET /healthz": true, "GET /readyz": true, "GET /metrics": true, "GET /openapi.json": true,
}

// readers are the roles that use the platform (everyone but the auditor,
// who reads only history, and the statistician, who reads only aggregates).
var users = []string{auth.Pupil, auth.Guardian, auth.School, auth.Employer, auth.Operator, auth.Backoffice}

// table is the authorization matrix: one rule per route.
func table() map[string]rule {
	bo := hasRole(auth.Backoffice)
	return map[string]rule{
		// registrations
		"POST /v1/employers":          hasRole(auth.Backoffice, auth.Operator),
		"POST /v1/schools":            bo,
		"POST /v1/pupils":             anyOf(bo, schoolIs(func(r *request) (string, error) { return r.field("school_uai"), nil })),
		"POST /v1/pupils/{id}/forget": bo,

		// offers
		"POST /v1/offers":               anyOf(bo, employerIs(func(r *request) (string, error) { return r.field("employer_id"), nil }), hasRole(auth.Operator)),
		"POST /v1/offers/{id}/withdraw": anyOf(bo, offerOwner),
		"POST /v1/offers/{id}/amend":    anyOf(bo, offerOwner),
		"POST /v1/offers/{id}/reopen":   anyOf(bo, offerOwner),

		// applications
		"POST /v1/offers/{id}/applications":   anyOf(bo, pupilIs(func(r *request) (string, error) { return r.field("pupil_id"), nil })),
		"POST /v1/applications/{id}/read":     anyOf(bo, employerIs(applicationEmployer)),
		"POST /v1/applications/{id}/accept":   anyOf(bo, employerIs(applicationEmployer)),
		"POST /v1/applications/{id}/reject":   anyOf(bo, employerIs(applicationEmployer)),
		"POST /v1/applications/{id}/cancel":   anyOf(bo, employerIs(applicationEmployer)),
		"POST /v1/applications/{id}/withdraw": anyOf(bo, pupilIs(applicationPupil)),
		"POST /v1/applications/{id}/confirm":  anyOf(bo, pupilIs(applicationPupil)),

		// conventions
		"POST /v1/conventions/{id}/complete":   anyOf(bo, completingParty),
		"POST /v1/conventions/{id}/cancel":     anyOf(bo, employerIs(conventionEmployer), schoolIs(conventionSchool)),
		"POST /v1/conventions/{id}/signatures": signer, // back office signs for nobody

		// queries
		"GET /v1/offers":                      hasRole(users...),
		"GET /v1/offers/{id}":                 hasRole(users...),
		"GET /v1/stats/offers":                hasRole(append(users, auth.Statistician)...),
		"GET /v1/stats/stream":                hasRole(append(users, auth.Statistician)...),
		"GET /v1/stats/placements":            hasRole(auth.Backoffice, auth.Statistician, auth.School),
		"GET /v1/applications/{id}":           anyOf(bo, pupilIs(applicationPupil), guardianOf(applicationPupil), schoolIs(applicationSchool), employerIs(applicationEmployer)),
		"GET /v1/conventions/{id}":            anyOf(bo, pupilIs(conventionPupil), guardianOf(conventionPupil), schoolIs(conventionSchool), employerIs(conventionEmployer)),
		"GET /v1/pupils/{id}/applications":    anyOf(bo, pupilIs(paramID), guardianOf(paramID), schoolIs(pupilSchool)),
		"GET /v1/pupils/{id}":                 anyOf(bo, pupilIs(paramID), guardianOf(paramID), schoolIs(pupilSchool)),
		"GET /v1/employers/{id}/applications": anyOf(bo, employerIs(paramID)),
		"GET /v1/schools/{uai}/dashboard":     anyOf(bo, schoolIs(func(r *request) (string, error) { return r.param("uai"), nil })),
		"GET /v1/schools/{uai}/pupils":        anyOf(bo, schoolIs(func(r *request) (string, error) { return r.param("uai"), nil })),
		"GET /v1/schools/{uai}/pupils/{id}":   anyOf(bo, schoolIs(func(r *request) (string, error) { return r.param("uai"), nil })),
		"GET /v1/pupils/{id}/follow-up":       anyOf(bo, pupilIs(paramID), guardianOf(paramID), schoolIs(pupilSchool)),
		"POST /v1/targets":                    bo,
		"GET /v1/audit/applications/{id}":     hasRole(auth.Auditor, auth.Backoffice),
	}
}

func hasRole(roles ...string) rule {
	return func(r *request) (bool, error) {
		for _, x := range roles {
			if r.p.Role == x {
				return true, nil
			}
		}
		return false, nil
	}
}

func anyOf(rules ...rule) rule {
	return func(r *request) (bool, error) {
		for _, rl := range rules {
			ok, err := rl(r)
			if err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	}
}

// resolver finds the id a principal must own; "" means nobody owns it
// (unknown resource).
type resolver func(r *request) (string, error)

func owns(role string, who resolver) rule {
	return func(r *request) (bool, error) {
		if r.p.Role != role || r.p.Subject == "" {
			return false, nil
		}
		id, err := who(r)
		return err == nil && id != "" && id == r.p.Subject, err
	}
}

func pupilIs(who resolver) rule    { return owns(auth.Pupil, who) }
func schoolIs(who resolver) rule   { return owns(auth.School, who) }
func employerIs(who resolver) rule { return owns(auth.Employer, who) }

// guardianOf: a guardian's subject is their child's pupil id.
func guardianOf(who resolver) rule { return owns(auth.Guardian, who) }

func paramID(r *request) (string, error) { return r.param("id"), nil }

func applicationEmployer(r *request) (string, error) {
	a, err := r.owners.application(r.ctx, r.param("id"))
	return a.EmployerID, err
}

func applicationPupil(r *request) (string, error) {
	a, err := r.owners.application(r.ctx, r.param("id"))
	return a.PupilID, err
}

func applicationSchool(r *request) (string, error) {
	a, err := r.owners.application(r.ctx, r.param("id"))
	return a.SchoolUAI, err
}

func conventionEmployer(r *request) (string, error) {
	c, err := r.owners.convention(r.ctx, r.param("id"))
	return c.EmployerID, err
}

func conventionSchool(r *request) (string, error) {
	c, err := r.owners.convention(r.ctx, r.param("id"))
	return c.SchoolUAI, err
}

func conventionPupil(r *request) (string, error) {
	c, err := r.owners.convention(r.ctx, r.param("id"))
	return c.PupilID, err
}

func pupilSchool(r *request) (string, error) {
	p, err := r.owners.pupil(r.ctx, r.param("id"))
	return p.SchoolUAI, err
}

// offerOwner: the employer of the offer, or the operator who posted it.
func offerOwner(r *request) (bool, error) {
	o, actor, err := r.owners.offer(r.ctx, r.param("id"))
	if err != nil || o.OfferID == "" || r.p.Subject == "" {
		return false, err
	}
	switch r.p.Role {
	case auth.Employer:
		return o.EmployerID == r.p.Subject, nil
	case auth.Operator:
		return actor.Role == auth.Operator && actor.Subject == r.p.Subject, nil
	}
	return false, nil
}

// completingParty: the employer completes the employer's part, the school
// the school's.
func completingParty(r *request) (bool, error) {
	switch r.field("party") {
	case "employer":
		return employerIs(conventionEmployer)(r)
	case "school":
		return schoolIs(conventionSchool)(r)
	}
	// an unknown party is refused by validation for whoever may complete
	if ok, err := employerIs(conventionEmployer)(r); ok || err != nil {
		return ok, err
	}
	return schoolIs(conventionSchool)(r)
}

// signer: each signature is given by the party it names: the employer for
// its conventions, the school (head) for its pupils, the pupil for
// themself, a guardian for their child.
func signer(r *request) (bool, error) {
	switch domain.Role(r.field("role")) {
	case domain.RoleEmployer:
		return employerIs(conventionEmployer)(r)
	case domain.RoleSchoolHead:
		return schoolIs(conventionSchool)(r)
	case domain.RolePupil:
		return pupilIs(conventionPupil)(r)
	case domain.RoleGuardian, domain.RoleSecondGuardian:
		return guardianOf(conventionPupil)(r)
	}
	// an unknown role: any party of the convention gets the validation error
	return anyOf(employerIs(conventionEmployer), schoolIs(conventionSchool), pupilIs(conventionPupil), guardianOf(conventionPupil))(r)
}
