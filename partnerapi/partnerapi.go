// Package partnerapi serves the national platform's partner API v2 under
// /api/v2, so that an operator points the client it uses for "1 élève,
// 1 stage" at Passerelle unchanged: the same paths, field names, values,
// answers and error codes. It is a translation layer: a push is an
// ordinary offer posted through commands.Service, listed and searched
// through readapi, with the operator, its remote_id and permalink kept.
package partnerapi

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"passerelle/commands"
	"passerelle/domain"
	"passerelle/domain/refdata"
	"passerelle/eventstore"
	"passerelle/internal/api"
	"passerelle/internal/auth"
	"passerelle/internal/authz"
	"passerelle/internal/ratelimit"
	"passerelle/internal/route"
	"passerelle/readapi"
)

// Prefix is the base path of the partner API v2.
const Prefix = "/api/v2/"

// TokenTTL is how long a token from POST /api/v2/auth/login is valid.
const TokenTTL = 24 * time.Hour

// PerPage is the size of a page of offers, as in the national API.
const PerPage = 30

// API serves the partner API v2.
type API struct {
	svc    *commands.Service
	reads  *readapi.API
	tokens *auth.HMAC // issues the login's tokens, and verifies them when the service runs without its guard
	places *refdata.Data
	limit  *ratelimit.Limiter // per operator
	clock  func() time.Time
}

// New builds the partner API over the command service and the read API;
// limit, when not nil, is each operator's allowance.
func New(svc *commands.Service, reads *readapi.API, tokens *auth.HMAC, places *refdata.Data, limit *ratelimit.Limiter, clock func() time.Time) *API {
	if clock == nil {
		clock = time.Now
	}
	return &API{svc: svc, reads: reads, tokens: tokens, places: places, limit: limit, clock: clock}
}

// CallsPerMinute is each operator's allowance in the national API.
const CallsPerMinute = 100

// RateLimit is each operator's allowance: n calls a minute, all of them
// at once if it likes.
func RateLimit(n int) *ratelimit.Limiter { return ratelimit.New(float64(n)/60, n, nil) }

// Routes declares the routes of the partner API v2.
func (a *API) Routes() []route.Route {
	op := authz.Roles(auth.Operator)
	offers := Prefix + "internship_offers"
	return []route.Route{
		{Method: http.MethodPost, Pattern: Prefix + "auth/login", Status: http.StatusOK, Summary: "Sign in as an operator (partner API v2)",
			Body: loginBodyType, Allow: authz.Public, Handler: http.HandlerFunc(a.login)},
		{Method: http.MethodPost, Pattern: offers, Status: http.StatusCreated, Summary: "Push an offer (partner API v2)",
			Body: pushBodyType, Allow: op, Handler: a.operator(a.push)},
		{Method: http.MethodPatch, Pattern: offers + "/{remote_id}", Status: http.StatusOK, Summary: "Update a pushed offer (partner API v2)",
			Body: patchBodyType, Allow: op, Handler: a.operator(a.patch)},
		{Method: http.MethodDelete, Pattern: offers + "/{remote_id}", Status: http.StatusOK, Summary: "Delete a pushed offer (partner API v2)",
			Allow: op, Handler: a.operator(a.delete)},
		{Method: http.MethodGet, Pattern: offers, Status: http.StatusOK, Summary: "The operator's offers (partner API v2)",
			Query: []string{"page", "min_position"}, Allow: op, Handler: a.operator(a.list)},
		{Method: http.MethodGet, Pattern: offers + "/search", Status: http.StatusOK, Summary: "Search offers (partner API v2)",
			Query: searchParams, Allow: op, Handler: a.operator(a.search)},
		{Method: http.MethodGet, Pattern: Prefix + "sectors", Status: http.StatusOK, Summary: "The sectors (partner API v2)",
			Allow: op, Handler: a.operator(a.sectors)},
	}
}

// operatorHandler serves a request of the operator named.
type operatorHandler func(w http.ResponseWriter, r *http.Request, operatorID string)

// operator resolves the operator making the request, from the principal
// the guard verified or, when the service runs without its guard, from
// the request's token (the v2 routes always need one), then spends one
// call of its allowance.
func (a *API) operator(next operatorHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := auth.From(r.Context())
		if !ok {
			token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			var err error
			if p, err = a.tokens.Verify(token); err != nil {
				writeError(w, r, http.StatusUnauthorized, "UNAUTHORIZED", "a valid token from POST /api/v2/auth/login is required (Authorization: Bearer <token>)")
				return
			}
		}
		if p.Role != auth.Operator || !domain.ValidOperatorID(p.Subject) {
			writeError(w, r, http.StatusForbidden, "FORBIDDEN", "only an operator's token may call the partner API")
			return
		}
		if a.limit != nil {
			if ok, wait := a.limit.Allow(r.Context(), "operator/"+p.Subject); !ok {
				e := api.Errorf(http.StatusTooManyRequests, "TOO_MANY_REQUESTS", "at most 100 calls a minute per operator: retry later")
				e.RetryAfter = max(wait, time.Second)
				api.WriteError(w, r, e)
				return
			}
		}
		next(w, r.WithContext(auth.With(r.Context(), p)), p.Subject)
	})
}

// meta is what a command of the operator carries.
func (a *API) meta(r *http.Request, operatorID string) commands.Meta {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on Linux
	id := hex.EncodeToString(b[:])
	corr := r.Header.Get("X-Correlation-ID")
	if corr == "" || len(corr) > 128 {
		corr = id
	}
	return commands.Meta{CommandID: id, CorrelationID: corr, Actor: eventstore.Actor{Role: auth.Operator, Subject: operatorID}, Now: a.clock().UTC()}
}

// login answers a token for an operator's e-mail and password.
func (a *API) login(w http.ResponseWriter, r *http.Request) {
	body, err := api.ReadBody(w, r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	var in loginBody
	if err := api.Unmarshal(body, &in, false); err != nil {
		api.WriteError(w, r, err)
		return
	}
	id, ok, err := a.svc.SignIn(r.Context(), in.Email, in.Password)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if !ok {
		api.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "Invalid email or password"})
		return
	}
	token, err := a.tokens.Issue(auth.Principal{Role: auth.Operator, Subject: id}, TokenTTL)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, map[string]string{"token": token})
}

// writeError answers an error of the partner API: {"code", "error"}.
func writeError(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	api.WriteError(w, r, api.Errorf(status, code, "%s", message))
}

// commandError answers a failed command in the partner API's words.
func commandError(w http.ResponseWriter, r *http.Request, err error) {
	var verr *domain.ValidationError
	var rule *domain.RuleError
	switch {
	case errors.As(err, &verr):
		fields := map[string]string{}
		for k, v := range verr.Fields {
			fields[v2Field(k)] = v
		}
		api.WriteError(w, r, &api.Error{Status: http.StatusBadRequest, Code: "VALIDATION_ERROR", Message: verr.Error(), Fields: fields})
	case errors.As(err, &rule) && rule.Rule == "duplicate_remote_id":
		writeError(w, r, http.StatusConflict, "DUPLICATE_API", rule.Message)
	case errors.As(err, &rule) && rule.Rule == "offer_deleted":
		writeError(w, r, http.StatusConflict, "API_ALREADY_DESTROYED", "this offer was deleted")
	case errors.As(err, &rule):
		writeError(w, r, http.StatusConflict, "CONFLICT", rule.Message)
	case errors.Is(err, domain.ErrNotFound):
		writeError(w, r, http.StatusNotFound, "NOT_FOUND", "no offer of this operator has this remote_id")
	case errors.Is(err, commands.ErrOutOfScope):
		writeError(w, r, http.StatusForbidden, "FORBIDDEN", err.Error())
	case errors.Is(err, eventstore.ErrWrongExpectedVersion):
		writeError(w, r, http.StatusConflict, "CONFLICT", "concurrent change, retry")
	default:
		api.WriteError(w, r, err)
	}
}

// v2Field names a field of our commands as the partner API does.
func v2Field(f string) string {
	switch f {
	case "sector":
		return "sector_uuid"
	case "seats":
		return "max_candidates"
	case "commune_code":
		return "zipcode"
	case "address":
		return "street"
	case "lat", "lon":
		return "coordinates"
	case "name":
		return "employer_name"
	case "reserved", "reserved.schools":
		return "rep"
	}
	return f
}
