package history

import (
	"context"
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"

	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/internal/api"
)

// PupilProfile is a pupil's registration with their personal data, for the
// pupil, their guardians, their school and the back office.
type PupilProfile struct {
	ID        string            `json:"id"`
	SchoolUAI string            `json:"school_uai"`
	Grade     domain.Grade      `json:"grade"`
	ClassName string            `json:"class_name"`
	FirstName string            `json:"first_name"`
	LastName  string            `json:"last_name"`
	BirthDate string            `json:"birth_date"`
	Guardians []domain.Guardian `json:"guardians"`
	Forgotten bool              `json:"forgotten"`
	Position  string            `json:"position"`
}

// pupilProfile serves GET /v1/pupils/{id}. Personal data is kept only in
// the log, sealed, so it is read from there like the audit; a forgotten
// pupil answers 410.
func (a *API) pupilProfile(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	if _, err := api.MinPosition(r); err != nil {
		api.WriteError(w, r, err)
		return
	}
	if a.store == nil || !domain.ValidID(id) {
		api.WriteError(w, r, notFound("pupil"))
		return
	}
	var p domain.Pupil
	evs, err := a.fold(r.Context(), domain.PupilStream(id), "pupil", &p)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if !p.Exists() {
		api.WriteError(w, r, notFound("pupil"))
		return
	}
	if p.Forgotten {
		api.WriteError(w, r, api.Errorf(http.StatusGone, "gone", "this pupil's personal data was erased at the family's request"))
		return
	}
	reg := p.Registered
	api.WriteJSON(w, http.StatusOK, PupilProfile{
		ID: reg.PupilID, SchoolUAI: reg.SchoolUAI, Grade: reg.Grade, ClassName: reg.ClassName, FirstName: reg.FirstName,
		LastName: reg.LastName, BirthDate: reg.BirthDate, Guardians: reg.Guardians, Position: evs[len(evs)-1].Position.String(),
	})
}

// fold applies a stream's events, their personal data opened, to agg and
// returns them; a stream with no event is a kind not found.
func (a *API) fold(ctx context.Context, stream, kind string, agg interface{ Apply(domain.Event) }) ([]eventstore.RecordedEvent, error) {
	evs, err := a.store.ReadStream(ctx, stream, eventstore.Forwards, 0, 0)
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return nil, notFound(kind)
	}
	if err != nil {
		return nil, err
	}
	for _, re := range evs {
		e, err := domain.Decode(re.Type, re.Data)
		if err != nil {
			return nil, err
		}
		if a.opener != nil {
			if err := a.opener.Open(e); err != nil {
				return nil, err
			}
		}
		agg.Apply(e)
	}
	return evs, nil
}
