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
//
// On a store that appends to several streams at once (the embedded one),
// a command's last step writes the record with its events: one durable
// write. When that step wrote nothing, the record is a second append
// after the command. The record's event ID derives from the request's
// fingerprint, so two requests with one key and different bodies never
// pass for a retry of each other: the second finds the stream taken and
// gets 409, and as the record and the events are written together, the
// events stored are the answered request's.
//
// EventStoreDB cannot write two streams at once, and two requests with one
// key derive the same event IDs, which it deduplicates: written after the
// events, the record could name the request whose events were dropped. So
// there a request first claims the key (a pending record, revision 0),
// then runs, then completes the record (revision 1): two appends besides
// the events. (Folding the record into the events' metadata would make a
// lookup a search of the log.)
type idempotency struct {
	store eventstore.Store
}

// record is the first response given to a key.
type record struct {
	Fingerprint string   `json:"fingerprint"` // method, path and body
	Status      int      `json:"status"`
	Response    response `json:"response"`          // without position when written with the events
	Pending     bool     `json:"pending,omitempty"` // a claim: the request has not completed
}

const idempotencyEvent = "CommandCompleted"

func idempotencyStream(commandID string) string { return "idempotency-" + commandID }

// errKeyTaken means another request stored its record under the key while
// this one ran: the answer is that record's.
var errKeyTaken = errors.New("idempotency key taken by another request")

// completion is the record a request with an Idempotency-Key leaves. A
// command's final step may write it with its events (then written is set,
// with the record's position, which is the response's).
type completion struct {
	fingerprint string
	status      int
	claimed     bool // the key is claimed (revision 0 is a pending record)
	written     bool
	position    eventstore.Position
}

// completes returns the record part of the command's last append, when the
// command carries one and this is its final step.
func (m Meta) completes() (eventstore.StreamAppend, bool) {
	if m.idem == nil || m.answers == "" || m.idem.written || m.idem.claimed {
		return eventstore.StreamAppend{}, false
	}
	rec := record{Fingerprint: m.idem.fingerprint, Status: m.idem.status, Response: response{ID: m.answers}}
	return recordAppend(m, rec), true
}

// recordAppend is the append that stores rec under the command's key: the
// first record, or the completion of a claim.
func recordAppend(m Meta, rec record) eventstore.StreamAppend {
	data, _ := json.Marshal(rec) // plain struct: cannot fail
	md := eventstore.Metadata{CommandID: m.CommandID, CorrelationID: m.CorrelationID, Actor: m.Actor, OccurredAt: m.Now}.Encode()
	stream := idempotencyStream(m.CommandID)
	expected, name := eventstore.NoStream, m.CommandID+"/"+stream+"/"+rec.Fingerprint
	if m.idem != nil && m.idem.claimed && !rec.Pending {
		expected, name = eventstore.Exact(0), name+"/completed"
	}
	return eventstore.StreamAppend{Stream: stream, Expected: expected, Events: []eventstore.EventData{{
		ID: eventstore.EventID(name, 0), Type: idempotencyEvent, Data: data, Metadata: md,
	}}}
}

// atomic reports whether the store writes a record with the events.
func (s idempotency) atomic() bool {
	_, ok := s.store.(eventstore.MultiAppender)
	return ok
}

// lookup returns the key's record: the response, or a pending claim.
func (s idempotency) lookup(ctx context.Context, commandID string) (record, bool, error) {
	evs, err := s.store.ReadStream(ctx, idempotencyStream(commandID), eventstore.Forwards, 0, 2)
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
	last := evs[0]
	if rec.Pending && len(evs) > 1 {
		last, rec = evs[1], record{}
		if err := json.Unmarshal(last.Data, &rec); err != nil {
			return record{}, false, fmt.Errorf("idempotency record %s: %w", commandID, err)
		}
	}
	if rec.Response.Position == "" {
		rec.Response.Position = last.Position.String()
	}
	return rec, true, nil
}

// claim reserves the key for this request before it runs (stores that
// cannot write the record with the events).
func (s idempotency) claim(ctx context.Context, m Meta) error {
	a := recordAppend(m, record{Fingerprint: m.idem.fingerprint, Status: m.idem.status, Pending: true})
	_, err := s.store.Append(ctx, a.Stream, a.Expected, a.Events...)
	if err == nil {
		m.idem.claimed = true
	}
	return err
}

// save stores rec, then returns the record stored: rec, or the one of a
// concurrent request with the same key that came first.
func (s idempotency) save(ctx context.Context, m Meta, rec record) (record, error) {
	a := recordAppend(m, rec)
	_, err := s.store.Append(ctx, a.Stream, a.Expected, a.Events...)
	if err != nil && !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		return record{}, err
	}
	won, ok, lerr := s.lookup(ctx, m.CommandID)
	if lerr != nil || !ok || won.Pending {
		return record{}, errors.Join(err, lerr, errors.New("idempotency record not found after saving it"))
	}
	return won, nil
}

// replay answers with a stored response, or 409 when the key was used for
// another request.
func (a *API) replay(w http.ResponseWriter, r *http.Request, rec record, fp string) {
	if rec.Fingerprint != fp {
		api.WriteError(w, r, api.Errorf(http.StatusConflict, "conflict", "this Idempotency-Key was already used for another request"))
		return
	}
	if isRoundComputation(r) && rec.Status < 300 {
		p, err := a.svc.RoundPreview(r.Context(), rec.Response.ID)
		if err != nil {
			api.WriteError(w, r, toAPIError(err))
			return
		}
		rec.Response.Preview = p
	}
	api.WriteJSON(w, rec.Status, rec.Response)
}
