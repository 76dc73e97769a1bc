package readapi

import (
	"bytes"
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

// Opener restores sealed personal data in an event (package personal).
type Opener interface{ Open(domain.Event) error }

// AuditApplication reads a placement's history from the event log itself:
// every event of the application and of its convention, and the events of
// the offer and of the pupil that concern this application, in log order.
// Personal data is shown opened with opener, or marked erased when the
// pupil was forgotten.
func AuditApplication(ctx context.Context, store eventstore.Store, opener Opener, id string) (AuditTrail, error) {
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
		data := auditData(re, opener)
		trail.Events = append(trail.Events, AuditEvent{
			Type: re.Type, Stream: re.Stream, Revision: re.Revision, Position: re.Position.String(),
			OccurredAt: md.OccurredAt, RecordedAt: re.Created, Actor: md.Actor, CommandID: md.CommandID,
			CorrelationID: md.CorrelationID, Data: data,
		})
	}
	return trail, nil
}

// auditData is the event's data with its personal fields opened (or
// marked erased) rather than the sealed blob.
func auditData(re eventstore.RecordedEvent, opener Opener) json.RawMessage {
	if !json.Valid(re.Data) {
		return json.RawMessage("null")
	}
	if opener == nil || !bytes.Contains(re.Data, []byte(`"sealed"`)) {
		return re.Data
	}
	e, err := domain.Decode(re.Type, re.Data)
	if err != nil || opener.Open(e) != nil {
		return re.Data
	}
	b, err := json.Marshal(e)
	if err != nil {
		return re.Data
	}
	return b
}

// WithAudit serves the audit routes from store: the only reads of the log.
func (a *API) WithAudit(store eventstore.Store, opener Opener) *API {
	a.store, a.opener = store, opener
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
	trail, err := AuditApplication(r.Context(), a.store, a.opener, id)
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
