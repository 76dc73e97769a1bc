package readapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/go-chi/chi/v5"

	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/internal/api"
)

// AuditEvent is one event of a placement's history, as the log holds it.
type AuditEvent struct {
	Type          string           `json:"type"`
	Stream        string           `json:"stream"`
	Revision      uint64           `json:"revision"`
	Position      string           `json:"position"`
	OccurredAt    time.Time        `json:"occurred_at"`
	RecordedAt    time.Time        `json:"recorded_at"`
	Actor         eventstore.Actor `json:"actor"`
	CommandID     string           `json:"command_id"`
	CorrelationID string           `json:"correlation_id,omitempty"`
	Data          json.RawMessage  `json:"data"`
}

// AuditTrail is a placement's full history.
type AuditTrail struct {
	ApplicationID string       `json:"application_id"`
	Events        []AuditEvent `json:"events"`
}

// AuditApplication reads a placement's history from the event log itself:
// every event of the application and of its convention, and the events of
// the offer and of the pupil that concern this application, in log order.
func AuditApplication(ctx context.Context, store eventstore.Store, id string) (AuditTrail, error) {
	trail := AuditTrail{ApplicationID: id, Events: []AuditEvent{}}
	appEvents, err := store.ReadStream(ctx, domain.ApplicationStream(id), eventstore.Forwards, 0, 0)
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return trail, domain.NotFoundf("application")
	}
	if err != nil {
		return trail, err
	}
	var offerID, pupilID, conventionID string
	for _, re := range appEvents {
		switch e, _ := domain.Decode(re.Type, re.Data); e := e.(type) {
		case *domain.ApplicationSubmitted:
			offerID, pupilID = e.OfferID, e.PupilID
		case *domain.ApplicationConfirmed:
			conventionID = e.ConventionID
		}
	}
	all := appEvents
	for _, stream := range []string{domain.OfferStream(offerID), domain.PupilStream(pupilID)} {
		evs, err := store.ReadStream(ctx, stream, eventstore.Forwards, 0, 0)
		if err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
			return trail, err
		}
		for _, re := range evs {
			var ref struct {
				ApplicationID string `json:"application_id"`
			}
			if json.Unmarshal(re.Data, &ref) == nil && ref.ApplicationID == id {
				all = append(all, re)
			}
		}
	}
	if conventionID != "" {
		evs, err := store.ReadStream(ctx, domain.ConventionStream(conventionID), eventstore.Forwards, 0, 0)
		if err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
			return trail, err
		}
		all = append(all, evs...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Position < all[j].Position })
	for _, re := range all {
		md, _ := eventstore.DecodeMetadata(re.Metadata)
		data := json.RawMessage(re.Data)
		if !json.Valid(data) {
			data = json.RawMessage("null")
		}
		trail.Events = append(trail.Events, AuditEvent{
			Type: re.Type, Stream: re.Stream, Revision: re.Revision, Position: re.Position.String(),
			OccurredAt: md.OccurredAt, RecordedAt: re.Created, Actor: md.Actor, CommandID: md.CommandID,
			CorrelationID: md.CorrelationID, Data: data,
		})
	}
	return trail, nil
}

// WithAudit serves the audit routes from store: the only reads of the log.
func (a *API) WithAudit(store eventstore.Store) *API {
	a.store = store
	return a
}

func (a *API) auditApplication(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	if mp := r.URL.Query().Get("min_position"); mp != "" {
		if _, err := eventstore.ParsePosition(mp); err != nil {
			api.WriteError(w, r, api.Invalid("min_position", "must be a position returned by a command"))
			return
		}
	}
	if a.store == nil || !validID(id) {
		api.WriteError(w, r, notFound("application"))
		return
	}
	trail, err := AuditApplication(r.Context(), a.store, id)
	if errors.Is(err, domain.ErrNotFound) {
		api.WriteError(w, r, notFound("application"))
		return
	}
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, trail)
}
