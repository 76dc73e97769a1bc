package commands

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"time"

	"github.com/go-chi/chi/v5"

	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/internal/api"
	"passerelle/internal/auth"
	"passerelle/internal/authz"
	"passerelle/internal/route"
)

// API serves the command routes of the HTTP contract.
type API struct {
	svc   *Service
	idem  idempotency
	clock func() time.Time
}

// NewAPI wires the command routes over a service. clock is injected so
// tests control time.
func NewAPI(svc *Service, store eventstore.Store, clock func() time.Time) *API {
	if clock == nil {
		clock = time.Now
	}
	return &API{svc: svc, idem: idempotency{store: store}, clock: clock}
}

// Routes declares the command routes, by resource.
func (a *API) Routes() []route.Route {
	return slices.Concat(a.registrationRoutes(), a.offerRoutes(), a.applicationRoutes(), a.conventionRoutes(), a.targetRoutes(), a.wishRoutes(), a.groupRoutes(), a.roundRoutes())
}

// registrationRoutes register employers, schools and pupils, forget a
// pupil, and link operators to employers.
func (a *API) registrationRoutes() []route.Route {
	const post = http.MethodPost
	bo := authz.Backoffice
	return []route.Route{
		command(a, route.Route{Method: post, Pattern: "/v1/employers", Status: http.StatusCreated, Summary: "Register an employer",
			Allow: authz.Roles(auth.Backoffice, auth.Operator)},
			func(ctx context.Context, m Meta, _ string, in employerBody) (Result, error) {
				return a.svc.RegisterEmployer(ctx, m, domain.RegisterEmployerInput(in))
			}),
		command(a, route.Route{Method: post, Pattern: "/v1/schools", Status: http.StatusCreated, Summary: "Register a school",
			Allow: bo},
			func(ctx context.Context, m Meta, _ string, in schoolBody) (Result, error) {
				return a.svc.RegisterSchool(ctx, m, domain.RegisterSchoolInput(in))
			}),
		command(a, route.Route{Method: post, Pattern: "/v1/pupils", Status: http.StatusCreated, Summary: "Register a pupil",
			Allow: authz.AnyOf(bo, authz.School(authz.Field("school_uai")))},
			func(ctx context.Context, m Meta, _ string, in pupilBody) (Result, error) {
				return a.svc.RegisterPupil(ctx, m, domain.RegisterPupilInput(in))
			}),
		command(a, route.Route{Method: post, Pattern: "/v1/pupils/{id}/forget", Status: http.StatusOK, Summary: "Forget a pupil",
			OptionalBody: true, Allow: bo},
			noBody(a.svc.Forget)),
		command(a, route.Route{Method: post, Pattern: "/v1/operators/{id}/employers", Status: http.StatusOK, Summary: "Let an operator act for employers",
			Allow: bo},
			func(ctx context.Context, m Meta, id string, in linkEmployersBody) (Result, error) {
				return a.svc.LinkOperator(ctx, m, id, in.EmployerIDs)
			}),
		command(a, route.Route{Method: post, Pattern: "/v1/operators", Status: http.StatusCreated, Summary: "Register an operator account",
			Allow: bo},
			func(ctx context.Context, m Meta, _ string, in operatorBody) (Result, error) {
				return a.svc.RegisterOperator(ctx, m, RegisterOperatorInput(in))
			}),
	}
}

// offerRoutes post, amend, reopen and withdraw offers.
func (a *API) offerRoutes() []route.Route {
	const post = http.MethodPost
	bo := authz.Backoffice
	return []route.Route{
		command(a, route.Route{Method: post, Pattern: "/v1/offers", Status: http.StatusCreated, Summary: "Post an offer",
			Allow: authz.AnyOf(bo, authz.Employer(authz.Field("employer_id")), authz.Operator(authz.Field("employer_id")))},
			a.postOffer),
		command(a, route.Route{Method: post, Pattern: "/v1/offers/{id}/amend", Status: http.StatusOK, Summary: "Amend an offer",
			Allow: authz.AnyOf(bo, authz.OfferOwner)},
			func(ctx context.Context, m Meta, id string, in amendOfferBody) (Result, error) {
				return a.svc.AmendOffer(ctx, m, id, domain.AmendOfferInput(in))
			}),
		command(a, route.Route{Method: post, Pattern: "/v1/offers/{id}/reopen", Status: http.StatusOK, Summary: "Reopen an offer",
			OptionalBody: true, Allow: authz.AnyOf(bo, authz.OfferOwner)},
			noBody(a.svc.ReopenOffer)),
		command(a, route.Route{Method: post, Pattern: "/v1/offers/{id}/withdraw", Status: http.StatusOK, Summary: "Withdraw an offer",
			OptionalBody: true, Allow: authz.AnyOf(bo, authz.OfferOwner)},
			func(ctx context.Context, m Meta, id string, in optionalReasonBody) (Result, error) {
				return a.svc.WithdrawOffer(ctx, m, id, in.Reason)
			}),
	}
}

// applicationRoutes take an application from its submission to its
// confirmation, rejection, cancellation or withdrawal.
func (a *API) applicationRoutes() []route.Route {
	const post = http.MethodPost
	bo := authz.Backoffice
	return []route.Route{
		command(a, route.Route{Method: post, Pattern: "/v1/offers/{id}/applications", Status: http.StatusCreated, Summary: "Apply to an offer",
			Allow: authz.AnyOf(bo, authz.Pupil(authz.Field("pupil_id")), authz.Guardian(authz.Field("pupil_id")))},
			a.apply),
		command(a, route.Route{Method: post, Pattern: "/v1/applications/{id}/read", Status: http.StatusOK, Summary: "Mark an application read",
			OptionalBody: true, Allow: authz.AnyOf(bo, authz.Employer(authz.ApplicationEmployer))},
			noBody(a.svc.MarkRead)),
		command(a, route.Route{Method: post, Pattern: "/v1/applications/{id}/cancel", Status: http.StatusOK, Summary: "Cancel a placement",
			Allow: authz.AnyOf(bo, authz.Employer(authz.ApplicationEmployer))},
			withReason(a.svc.Cancel)),
		command(a, route.Route{Method: post, Pattern: "/v1/applications/{id}/accept", Status: http.StatusOK, Summary: "Accept an application",
			OptionalBody: true, Allow: authz.AnyOf(bo, authz.Employer(authz.ApplicationEmployer))},
			noBody(a.svc.Accept)),
		command(a, route.Route{Method: post, Pattern: "/v1/applications/{id}/reject", Status: http.StatusOK, Summary: "Reject an application",
			Allow: authz.AnyOf(bo, authz.Employer(authz.ApplicationEmployer))},
			withReason(a.svc.Reject)),
		command(a, route.Route{Method: post, Pattern: "/v1/applications/{id}/withdraw", Status: http.StatusOK, Summary: "Withdraw an application",
			OptionalBody: true, Allow: authz.AnyOf(bo, authz.Pupil(authz.ApplicationPupil), authz.Guardian(authz.ApplicationPupil))},
			func(ctx context.Context, m Meta, id string, in optionalReasonBody) (Result, error) {
				if len(in.Reason) > 1000 {
					return Result{}, api.Invalid("reason", "must be at most 1000 bytes")
				}
				return a.svc.Withdraw(ctx, m, id, in.Reason)
			}),
		command(a, route.Route{Method: post, Pattern: "/v1/applications/{id}/confirm", Status: http.StatusOK, Summary: "Confirm an application",
			OptionalBody: true, Allow: authz.AnyOf(bo, authz.Pupil(authz.ApplicationPupil), authz.Guardian(authz.ApplicationPupil))},
			noBody(a.svc.Confirm)),
	}
}

// conventionRoutes complete, cancel and sign conventions.
func (a *API) conventionRoutes() []route.Route {
	const post = http.MethodPost
	bo := authz.Backoffice
	return []route.Route{
		command(a, route.Route{Method: post, Pattern: "/v1/conventions/{id}/complete", Status: http.StatusOK, Summary: "Complete a convention",
			Allow: authz.AnyOf(bo, authz.CompletingParty)},
			func(ctx context.Context, m Meta, id string, in completeBody) (Result, error) {
				return a.svc.CompleteConvention(ctx, m, id, domain.CompleteInput{Party: in.Party, Tutor: in.Tutor, Activities: in.Activities,
					ReferentTeacher: in.ReferentTeacher, BothGuardians: in.BothGuardians})
			}),
		command(a, route.Route{Method: post, Pattern: "/v1/conventions/{id}/cancel", Status: http.StatusOK, Summary: "Cancel a convention",
			Allow: authz.AnyOf(bo, authz.Employer(authz.ConventionEmployer), authz.School(authz.ConventionSchool))},
			withReason(a.svc.CancelConvention)),
		command(a, route.Route{Method: post, Pattern: "/v1/conventions/{id}/signatures", Status: http.StatusCreated, Summary: "Sign a convention",
			Allow: authz.Signer}, // the back office signs for nobody
			func(ctx context.Context, m Meta, id string, in signBody) (Result, error) {
				sign := domain.SignInput{Role: in.Role, SignerName: in.SignerName, DocumentHash: in.DocumentHash}
				if m.Actor.Role == auth.Guardian {
					// the guard let in a guardian of this pupil: which one signs
					_, sign.Guardian, _ = auth.ParseGuardian(m.Actor.Subject)
				}
				return a.svc.Sign(ctx, m, id, sign)
			}),
	}
}

// targetRoutes set the campaign targets.
func (a *API) targetRoutes() []route.Route {
	const post = http.MethodPost
	bo := authz.Backoffice
	return []route.Route{
		command(a, route.Route{Method: post, Pattern: "/v1/targets", Status: http.StatusOK, Summary: "Set a campaign target",
			Allow: bo},
			func(ctx context.Context, m Meta, _ string, in targetBody) (Result, error) {
				return a.svc.SetTarget(ctx, m, domain.TargetInput(in))
			}),
	}
}

// command builds a command route: the body is decoded strictly into In
// (api.Unmarshal; an empty body is {} when rt.OptionalBody) and handed to
// run with the path's {id}, under the contract's idempotency (handle). An
// In without fields declares no body.
func command[In any](a *API, rt route.Route, run func(ctx context.Context, m Meta, id string, in In) (Result, error)) route.Route {
	if t := reflect.TypeFor[In](); t.NumField() > 0 {
		rt.Body = t
	}
	rt.Handler = a.handle(rt.Status, func(ctx context.Context, r *http.Request, m Meta, body []byte) (Result, error) {
		var in In
		if err := api.Unmarshal(body, &in, rt.OptionalBody); err != nil {
			return Result{}, err
		}
		return run(ctx, m, chi.URLParam(r, "id"), in)
	})
	return rt
}

// noBody adapts a command on the resource {id} that takes no input.
func noBody(do func(ctx context.Context, m Meta, id string) (Result, error)) func(context.Context, Meta, string, struct{}) (Result, error) {
	return func(ctx context.Context, m Meta, id string, _ struct{}) (Result, error) { return do(ctx, m, id) }
}

// withReason adapts a command on the resource {id} that takes a reason.
func withReason(do func(ctx context.Context, m Meta, id, reason string) (Result, error)) func(context.Context, Meta, string, reasonBody) (Result, error) {
	return func(ctx context.Context, m Meta, id string, in reasonBody) (Result, error) {
		return do(ctx, m, id, in.Reason)
	}
}

// The command bodies. A field is required unless tagged omitempty (the
// OpenAPI test holds /openapi.json to that); `required:"true"` makes
// api.Unmarshal insist on a field whose zero value would be valid.
type (
	employerBody struct {
		Name        string `json:"name"`
		SIRET       string `json:"siret"`
		Kind        string `json:"kind"`
		CommuneCode string `json:"commune_code"`
		Address     string `json:"address"`
	}
	schoolBody struct {
		UAI               string `json:"uai"`
		Name              string `json:"name"`
		Kind              string `json:"kind"`
		CommuneCode       string `json:"commune_code"`
		EducationPriority string `json:"education_priority"`
		QPV               bool   `json:"qpv" required:"true"`
	}
	pupilBody struct {
		SchoolUAI string            `json:"school_uai"`
		Grade     string            `json:"grade"`
		ClassName string            `json:"class_name"`
		FirstName string            `json:"first_name"`
		LastName  string            `json:"last_name"`
		BirthDate string            `json:"birth_date"`
		Guardians []domain.Guardian `json:"guardians"`
	}
	postOfferBody struct {
		EmployerID     string             `json:"employer_id"`
		Title          string             `json:"title"`
		Description    string             `json:"description"`
		Sector         string             `json:"sector"`
		Grades         []string           `json:"grades"`
		Weeks          []string           `json:"weeks"`
		Seats          int                `json:"seats"`
		CommuneCode    string             `json:"commune_code"`
		Address        string             `json:"address"`
		Lat            float64            `json:"lat" required:"true"`
		Lon            float64            `json:"lon" required:"true"`
		Reserved       domain.Reservation `json:"reserved,omitempty"`
		DailyHours     *domain.DailyHours `json:"daily_hours,omitempty"`
		GroupSize      int                `json:"group_size,omitempty"`
		FamilyBusiness bool               `json:"family_business,omitempty"`
		Collective     bool               `json:"collective,omitempty"`
		MinGroupSize   int                `json:"min_group_size,omitempty"`
		CoHosts        []string           `json:"co_hosts,omitempty"`
	}
	amendOfferBody struct {
		Title          *string             `json:"title,omitempty"`
		Description    *string             `json:"description,omitempty"`
		Weeks          []string            `json:"weeks,omitempty"`
		Seats          *int                `json:"seats,omitempty"`
		Reserved       *domain.Reservation `json:"reserved,omitempty"`
		DailyHours     *domain.DailyHours  `json:"daily_hours,omitempty"`
		GroupSize      *int                `json:"group_size,omitempty"`
		FamilyBusiness *bool               `json:"family_business,omitempty"`
		MinGroupSize   *int                `json:"min_group_size,omitempty"`
	}
	applyBody struct {
		PupilID    string   `json:"pupil_id"`
		Weeks      []string `json:"weeks"`
		Motivation string   `json:"motivation"`
	}
	reasonBody struct {
		Reason string `json:"reason"`
	}
	optionalReasonBody struct {
		Reason string `json:"reason,omitempty"`
	}
	completeBody struct {
		Party           string         `json:"party"`
		Tutor           *domain.Person `json:"tutor,omitempty"`
		Activities      string         `json:"activities,omitempty"`
		ReferentTeacher *domain.Person `json:"referent_teacher,omitempty"`
		BothGuardians   bool           `json:"both_guardians,omitempty"`
	}
	signBody struct {
		Role         string `json:"role"`
		SignerName   string `json:"signer_name"`
		DocumentHash string `json:"document_hash"`
	}
	linkEmployersBody struct {
		EmployerIDs []string `json:"employer_ids"`
	}
	operatorBody struct {
		Name        string   `json:"name"`
		Email       string   `json:"email"`
		Password    string   `json:"password"`
		Departments []string `json:"departments" required:"true"` // empty: every département
		EmployerIDs []string `json:"employer_ids,omitempty"`
	}
	targetBody struct {
		Scope  string `json:"scope"`
		Code   string `json:"code,omitempty"`
		Metric string `json:"metric"`
		Target int64  `json:"target"`
	}
)

func (a *API) postOffer(ctx context.Context, m Meta, _ string, in postOfferBody) (Result, error) {
	if !domain.ValidID(in.EmployerID) {
		return Result{}, api.Invalid("employer_id", "no employer is registered with this id")
	}
	return a.svc.PostOffer(ctx, m, PostOfferInput{EmployerID: in.EmployerID, CoHostIDs: in.CoHosts, PostOfferInput: domain.PostOfferInput{
		Title: in.Title, Description: in.Description, Sector: in.Sector, Grades: in.Grades, Weeks: in.Weeks,
		Seats: in.Seats, CommuneCode: in.CommuneCode, Address: in.Address, Lat: in.Lat, Lon: in.Lon,
		Reserved: in.Reserved, DailyHours: in.DailyHours, GroupSize: in.GroupSize, FamilyBusiness: in.FamilyBusiness,
		Collective: in.Collective, MinGroupSize: in.MinGroupSize,
	}})
}

func (a *API) apply(ctx context.Context, m Meta, offerID string, in applyBody) (Result, error) {
	if !domain.ValidID(in.PupilID) {
		return Result{}, api.Invalid("pupil_id", "no pupil is registered with this id")
	}
	return a.svc.Apply(ctx, m, ApplyInput{OfferID: offerID, PupilID: in.PupilID,
		SubmitInput: domain.SubmitInput{Weeks: in.Weeks, Motivation: in.Motivation}})
}

type runFunc func(ctx context.Context, r *http.Request, m Meta, body []byte) (Result, error)

// response is the body of a successful command.
type response struct {
	ID           string `json:"id"`
	Position     string `json:"position"`
	ConventionID string `json:"convention_id,omitempty"`
	// PlacementsToCancel, ApplicationIDs, ConventionIDs: see Result.
	PlacementsToCancel []string `json:"placements_to_cancel,omitempty"`
	ApplicationIDs     []string `json:"application_ids,omitempty"`
	ConventionIDs      []string `json:"convention_ids,omitempty"`
	// Preview: see Result. An idempotency record leaves it out (it can be
	// megabytes): a replay reads it from the round's stream.
	Preview   *domain.RoundPreview `json:"preview,omitempty"`
	Proposals *Proposals           `json:"proposals,omitempty"`
}

// handle runs a command with the contract's idempotency: the same
// Idempotency-Key and body replay the first response; another body is a 409.
func (a *API) handle(status int, run runFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := api.ReadBody(w, r)
		if err != nil {
			api.WriteError(w, r, err)
			return
		}
		m := Meta{Actor: eventstore.Actor{Role: "anonymous"}, Now: a.clock().UTC()}
		if p, ok := auth.From(r.Context()); ok {
			m.Actor = eventstore.Actor{Role: p.Role, Subject: p.Subject}
		}
		key := r.Header.Get("Idempotency-Key")
		var fp string
		if key != "" {
			if len(key) > 255 {
				api.WriteError(w, r, api.Invalid("Idempotency-Key", "must be at most 255 characters"))
				return
			}
			m.CommandID = commandIDFor(m.Actor, key)
			fp = fingerprint(r, body)
			m.idem = &completion{fingerprint: fp, status: status}
			if !a.begin(w, r, m) {
				return
			}
		} else {
			m.CommandID = randomID()
		}
		m.CorrelationID = r.Header.Get("X-Correlation-ID")
		if m.CorrelationID == "" || len(m.CorrelationID) > 128 {
			m.CorrelationID = m.CommandID
		}
		res, err := run(r.Context(), r, m, body)
		if err != nil {
			a.fail(w, r, m, fp, err)
			return
		}
		resp := response{ID: res.ID, Position: res.Position.String(), ConventionID: res.ConventionID, PlacementsToCancel: res.PlacementsToCancel,
			ApplicationIDs: res.ApplicationIDs, ConventionIDs: res.ConventionIDs,
			Preview: res.Preview, Proposals: res.Proposals}
		if key != "" && m.idem.written {
			resp.Position = m.idem.position.String() // the record's: the last event written
			api.WriteJSON(w, status, resp)
			return
		}
		if key != "" {
			rec := record{Fingerprint: fp, Status: status, Response: resp}
			rec.Response.Preview = nil
			stored, err := a.idem.save(r.Context(), m, rec)
			if err != nil {
				api.WriteError(w, r, err)
				return
			}
			a.replay(w, r, stored, fp)
			return
		}
		api.WriteJSON(w, status, resp)
	}
}

// begin looks the key up before a request runs: a response stored is
// replayed (or 409 for another body). On a store that cannot write the
// record with the events, the request claims the key first. False: the
// request has been answered.
func (a *API) begin(w http.ResponseWriter, r *http.Request, m Meta) bool {
	rec, ok, err := a.idem.lookup(r.Context(), m.CommandID)
	switch {
	case err != nil:
		api.WriteError(w, r, err)
		return false
	case ok && (!rec.Pending || rec.Fingerprint != m.idem.fingerprint):
		a.replay(w, r, rec, m.idem.fingerprint)
		return false
	case ok: // our own claim, left by an attempt cut short
		m.idem.claimed = true
	case !a.idem.atomic():
		if err := a.idem.claim(r.Context(), m); err != nil {
			a.fail(w, r, m, m.idem.fingerprint, err)
			return false
		}
	}
	return true
}

// fail answers a command that failed. With an Idempotency-Key, a record
// stored meanwhile by a concurrent request with the same key is the
// answer: its response, or 409 for another body.
func (a *API) fail(w http.ResponseWriter, r *http.Request, m Meta, fp string, err error) {
	if m.idem != nil {
		rec, ok, lerr := a.idem.lookup(r.Context(), m.CommandID)
		if lerr == nil && ok && (!rec.Pending || rec.Fingerprint != fp) {
			a.replay(w, r, rec, fp)
			return
		}
	}
	api.WriteError(w, r, toAPIError(err))
}

// toAPIError maps domain and store errors onto the contract.
func toAPIError(err error) error {
	var apiErr *api.Error
	var verr *domain.ValidationError
	var rule *domain.RuleError
	switch {
	case errors.As(err, &apiErr):
		return apiErr
	case errors.As(err, &verr):
		return &api.Error{Status: http.StatusUnprocessableEntity, Code: "validation_failed", Message: verr.Error(), Fields: verr.Fields}
	case errors.Is(err, domain.ErrNotFound):
		return api.Errorf(http.StatusNotFound, "not_found", "%s", err.Error())
	case errors.As(err, &rule):
		return &api.Error{Status: http.StatusConflict, Code: "conflict", Message: rule.Message, Rule: rule.Rule, Fields: rule.Fields}
	case errors.Is(err, domain.ErrConflict):
		return api.Errorf(http.StatusConflict, "conflict", "%s", err.Error())
	case errors.Is(err, eventstore.ErrWrongExpectedVersion):
		return api.Errorf(http.StatusConflict, "conflict", "concurrent change, retry the command")
	}
	return err
}

func commandIDFor(actor eventstore.Actor, key string) string {
	sum := sha256.Sum256([]byte(actor.Role + "\x00" + actor.Subject + "\x00" + key))
	return hex.EncodeToString(sum[:16])
}

func fingerprint(r *http.Request, body []byte) string {
	h := sha256.New()
	h.Write([]byte(r.Method + " " + r.URL.Path + "\n"))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on Linux
	return hex.EncodeToString(b[:])
}
