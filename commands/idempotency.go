package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"passerelle/eventstore"
	"passerelle/internal/api"
)

// idempotency remembers the response to each Idempotency-Key in the event
// store itself (stream "idempotency-<command id>"), so every instance of the
// service shares it and it is as durable as the events it protects.
type idempotency struct {
	store eventstore.Store
}

// record is the first response given to a key.
type record struct {
	Fingerprint string   `json:"fingerprint"` // method, path and body
	Status      int      `json:"status"`
	Response    response `json:"response"`
}

const idempotencyEvent = "CommandCompleted"

func idempotencyStream(commandID string) string { return "idempotency-" + commandID }

func (s idempotency) lookup(ctx context.Context, commandID string) (record, bool, error) {
	evs, err := s.store.ReadStream(ctx, idempotencyStream(commandID), eventstore.Forwards, 0, 1)
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return record{}, false, nil
	}
	if err != nil {
		return record{}, false, err
	}
	var rec record
	if err := json.Unmarshal(evs[0].Data, &rec); err != nil {
		return record{}, false, fmt.Errorf("idempotency record %s: %w", commandID, err)
	}
	return rec, true, nil
}

// save stores rec unless a concurrent request with the same key stored its
// own first; the record that won is returned.
func (s idempotency) save(ctx context.Context, m Meta, rec record) (record, error) {
	data, _ := json.Marshal(rec) // plain struct: cannot fail
	md := eventstore.Metadata{CommandID: m.CommandID, CorrelationID: m.CorrelationID, Actor: m.Actor, OccurredAt: m.Now}.Encode()
	stream := idempotencyStream(m.CommandID)
	_, err := s.store.Append(ctx, stream, eventstore.NoStream, eventstore.EventData{
		ID: eventstore.EventID(m.CommandID+"/"+stream, 0), Type: idempotencyEvent, Data: data, Metadata: md,
	})
	if errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		won, ok, lerr := s.lookup(ctx, m.CommandID)
		if lerr != nil || !ok {
			return record{}, errors.Join(err, lerr)
		}
		return won, nil
	}
	return rec, err
}

// replay answers with a stored response, or 409 when the key was used for
// another request.
func replay(w http.ResponseWriter, r *http.Request, rec record, fp string) {
	if rec.Fingerprint != fp {
		api.WriteError(w, r, api.Errorf(http.StatusConflict, "conflict", "this Idempotency-Key was already used for another request"))
		return
	}
	api.WriteJSON(w, rec.Status, rec.Response)
}
