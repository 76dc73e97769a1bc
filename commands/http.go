package commands

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/internal/api"
	"passerelle/internal/auth"
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

// Routes mounts the command routes on r.
func (a *API) Routes(r chi.Router) {
	r.Post("/v1/employers", a.handle(http.StatusCreated, func(ctx context.Context, r *http.Request, m Meta, body []byte) (Result, error) {
		var in struct {
			Name        string `json:"name"`
			SIRET       string `json:"siret"`
			Kind        string `json:"kind"`
			CommuneCode string `json:"commune_code"`
			Address     string `json:"address"`
		}
		if err := api.Unmarshal(body, &in, false); err != nil {
			return Result{}, err
		}
		return a.svc.RegisterEmployer(ctx, m, domain.RegisterEmployerInput(in))
	}))
	r.Post("/v1/schools", a.handle(http.StatusCreated, func(ctx context.Context, r *http.Request, m Meta, body []byte) (Result, error) {
		var in struct {
			UAI               string `json:"uai"`
			Name              string `json:"name"`
			Kind              string `json:"kind"`
			CommuneCode       string `json:"commune_code"`
			EducationPriority string `json:"education_priority"`
			QPV               bool   `json:"qpv" required:"true"`
		}
		if err := api.Unmarshal(body, &in, false); err != nil {
			return Result{}, err
		}
		return a.svc.RegisterSchool(ctx, m, domain.RegisterSchoolInput(in))
	}))
	r.Post("/v1/pupils", a.handle(http.StatusCreated, func(ctx context.Context, r *http.Request, m Meta, body []byte) (Result, error) {
		var in struct {
			SchoolUAI string            `json:"school_uai"`
			Grade     string            `json:"grade"`
			ClassName string            `json:"class_name"`
			FirstName string            `json:"first_name"`
			LastName  string            `json:"last_name"`
			BirthDate string            `json:"birth_date"`
			Guardians []domain.Guardian `json:"guardians"`
		}
		if err := api.Unmarshal(body, &in, false); err != nil {
			return Result{}, err
		}
		return a.svc.RegisterPupil(ctx, m, domain.RegisterPupilInput(in))
	}))
	r.Post("/v1/pupils/{id}/forget", a.handle(http.StatusOK, func(ctx context.Context, r *http.Request, m Meta, body []byte) (Result, error) {
		if err := api.Unmarshal(body, &struct{}{}, true); err != nil {
			return Result{}, err
		}
		return a.svc.Forget(ctx, m, chi.URLParam(r, "id"))
	}))
	r.Post("/v1/offers", a.handle(http.StatusCreated, func(ctx context.Context, r *http.Request, m Meta, body []byte) (Result, error) {
		var in struct {
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
			Reserved       domain.Reservation `json:"reserved"`
			DailyHours     *domain.DailyHours `json:"daily_hours"`
			GroupSize      int                `json:"group_size"`
			FamilyBusiness bool               `json:"family_business"`
		}
		if err := api.Unmarshal(body, &in, false); err != nil {
			return Result{}, err
		}
		if !domain.ValidID(in.EmployerID) {
			return Result{}, api.Invalid("employer_id", "no employer is registered with this id")
		}
		return a.svc.PostOffer(ctx, m, PostOfferInput{EmployerID: in.EmployerID, PostOfferInput: domain.PostOfferInput{
			Title: in.Title, Description: in.Description, Sector: in.Sector, Grades: in.Grades, Weeks: in.Weeks,
			Seats: in.Seats, CommuneCode: in.CommuneCode, Address: in.Address, Lat: in.Lat, Lon: in.Lon,
			Reserved: in.Reserved, DailyHours: in.DailyHours, GroupSize: in.GroupSize, FamilyBusiness: in.FamilyBusiness,
		}})
	}))
	r.Post("/v1/offers/{id}/amend", a.handle(http.StatusOK, func(ctx context.Context, r *http.Request, m Meta, body []byte) (Result, error) {
		var in struct {
			Title          *string             `json:"title"`
			Description    *string             `json:"description"`
			Weeks          []string            `json:"weeks"`
			Seats          *int                `json:"seats"`
			Reserved       *domain.Reservation `json:"reserved"`
			DailyHours     *domain.DailyHours  `json:"daily_hours"`
			GroupSize      *int                `json:"group_size"`
			FamilyBusiness *bool               `json:"family_business"`
		}
		if err := api.Unmarshal(body, &in, false); err != nil {
			return Result{}, err
		}
		return a.svc.AmendOffer(ctx, m, chi.URLParam(r, "id"), domain.AmendOfferInput(in))
	}))
	r.Post("/v1/offers/{id}/reopen", a.handle(http.StatusOK, func(ctx context.Context, r *http.Request, m Meta, body []byte) (Result, error) {
		if err := api.Unmarshal(body, &struct{}{}, true); err != nil {
			return Result{}, err
		}
		return a.svc.ReopenOffer(ctx, m, chi.URLParam(r, "id"))
	}))
	r.Post("/v1/offers/{id}/withdraw", a.handle(http.StatusOK, func(ctx context.Context, r *http.Request, m Meta, body []byte) (Result, error) {
		var in struct {
			Reason string `json:"reason"`
		}
		if err := api.Unmarshal(body, &in, true); err != nil {
			return Result{}, err
		}
		return a.svc.WithdrawOffer(ctx, m, chi.URLParam(r, "id"), in.Reason)
	}))
	r.Post("/v1/offers/{id}/applications", a.handle(http.StatusCreated, func(ctx context.Context, r *http.Request, m Meta, body []byte) (Result, error) {
		var in struct {
			PupilID    string   `json:"pupil_id"`
			Weeks      []string `json:"weeks"`
			Motivation string   `json:"motivation"`
		}
		if err := api.Unmarshal(body, &in, false); err != nil {
			return Result{}, err
		}
		if !domain.ValidID(in.PupilID) {
			return Result{}, api.Invalid("pupil_id", "no pupil is registered with this id")
		}
		return a.svc.Apply(ctx, m, ApplyInput{OfferID: chi.URLParam(r, "id"), PupilID: in.PupilID,
			SubmitInput: domain.SubmitInput{Weeks: in.Weeks, Motivation: in.Motivation}})
	}))
	r.Post("/v1/applications/{id}/read", a.handle(http.StatusOK, func(ctx context.Context, r *http.Request, m Meta, body []byte) (Result, error) {
		if err := api.Unmarshal(body, &struct{}{}, true); err != nil {
			return Result{}, err
		}
		return a.svc.MarkRead(ctx, m, chi.URLParam(r, "id"))
	}))
	r.Post("/v1/applications/{id}/cancel", a.handle(http.StatusOK, func(ctx context.Context, r *http.Request, m Meta, body []byte) (Result, error) {
		var in struct {
			Reason string `json:"reason"`
		}
		if err := api.Unmarshal(body, &in, false); err != nil {
			return Result{}, err
		}
		return a.svc.Cancel(ctx, m, chi.URLParam(r, "id"), in.Reason)
	}))
	r.Post("/v1/applications/{id}/accept", a.handle(http.StatusOK, func(ctx context.Context, r *http.Request, m Meta, body []byte) (Result, error) {
		if err := api.Unmarshal(body, &struct{}{}, true); err != nil {
			return Result{}, err
		}
		return a.svc.Accept(ctx, m, chi.URLParam(r, "id"))
	}))
	r.Post("/v1/applications/{id}/reject", a.handle(http.StatusOK, func(ctx context.Context, r *http.Request, m Meta, body []byte) (Result, error) {
		var in struct {
			Reason string `json:"reason"`
		}
		if err := api.Unmarshal(body, &in, false); err != nil {
			return Result{}, err
		}
		return a.svc.Reject(ctx, m, chi.URLParam(r, "id"), in.Reason)
	}))
	r.Post("/v1/applications/{id}/withdraw", a.handle(http.StatusOK, func(ctx context.Context, r *http.Request, m Meta, body []byte) (Result, error) {
		var in struct {
			Reason string `json:"reason"`
		}
		if err := api.Unmarshal(body, &in, true); err != nil {
			return Result{}, err
		}
		if len(in.Reason) > 1000 {
			return Result{}, api.Invalid("reason", "must be at most 1000 bytes")
		}
		return a.svc.Withdraw(ctx, m, chi.URLParam(r, "id"), in.Reason)
	}))
	r.Post("/v1/applications/{id}/confirm", a.handle(http.StatusOK, func(ctx context.Context, r *http.Request, m Meta, body []byte) (Result, error) {
		if err := api.Unmarshal(body, &struct{}{}, true); err != nil {
			return Result{}, err
		}
		return a.svc.Confirm(ctx, m, chi.URLParam(r, "id"))
	}))
	r.Post("/v1/conventions/{id}/complete", a.handle(http.StatusOK, func(ctx context.Context, r *http.Request, m Meta, body []byte) (Result, error) {
		var in struct {
			Party           string         `json:"party"`
			Tutor           *domain.Person `json:"tutor"`
			Activities      string         `json:"activities"`
			ReferentTeacher *domain.Person `json:"referent_teacher"`
			BothGuardians   bool           `json:"both_guardians"`
		}
		if err := api.Unmarshal(body, &in, false); err != nil {
			return Result{}, err
		}
		return a.svc.CompleteConvention(ctx, m, chi.URLParam(r, "id"), domain.CompleteInput(in))
	}))
	r.Post("/v1/conventions/{id}/cancel", a.handle(http.StatusOK, func(ctx context.Context, r *http.Request, m Meta, body []byte) (Result, error) {
		var in struct {
			Reason string `json:"reason"`
		}
		if err := api.Unmarshal(body, &in, false); err != nil {
			return Result{}, err
		}
		return a.svc.CancelConvention(ctx, m, chi.URLParam(r, "id"), in.Reason)
	}))
	r.Post("/v1/conventions/{id}/signatures", a.handle(http.StatusCreated, func(ctx context.Context, r *http.Request, m Meta, body []byte) (Result, error) {
		var in struct {
			Role         string `json:"role"`
			SignerName   string `json:"signer_name"`
			DocumentHash string `json:"document_hash"`
		}
		if err := api.Unmarshal(body, &in, false); err != nil {
			return Result{}, err
		}
		return a.svc.Sign(ctx, m, chi.URLParam(r, "id"), domain.SignInput(in))
	}))
}

type runFunc func(ctx context.Context, r *http.Request, m Meta, body []byte) (Result, error)

// response is the body of a successful command.
type response struct {
	ID           string `json:"id"`
	Position     string `json:"position"`
	ConventionID string `json:"convention_id,omitempty"`
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
			if rec, ok, err := a.idem.lookup(r.Context(), m.CommandID); err != nil {
				api.WriteError(w, r, err)
				return
			} else if ok {
				replay(w, r, rec, fp)
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
			api.WriteError(w, r, toAPIError(err))
			return
		}
		resp := response{ID: res.ID, Position: res.Position.String(), ConventionID: res.ConventionID}
		if key != "" {
			rec := record{Fingerprint: fp, Status: status, Response: resp}
			stored, err := a.idem.save(r.Context(), m, rec)
			if err != nil {
				api.WriteError(w, r, err)
				return
			}
			replay(w, r, stored, fp)
			return
		}
		api.WriteJSON(w, status, resp)
	}
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
		return &api.Error{Status: http.StatusConflict, Code: "conflict", Message: rule.Message, Rule: rule.Rule}
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
