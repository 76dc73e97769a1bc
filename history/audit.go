package history

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/eventstore/chain"
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
	// Reason says why a step of the placement process was taken, by the
	// command or by the reconciler repairing an interrupted one.
	Reason string          `json:"reason,omitempty"`
	Data   json.RawMessage `json:"data"`
	// Tampered says why the event is not as it was written: its hash no
	// longer matches what its successor or a seal recorded.
	Tampered string `json:"tampered,omitempty"`
}

// AuditTrail is a placement's history, up to AsOf when given.
type AuditTrail struct {
	ApplicationID string         `json:"application_id"`
	AsOf          string         `json:"as_of,omitempty"`
	State         PlacementState `json:"state"`
	Events        []AuditEvent   `json:"events"`
	// Intact is false when an event of the trail's streams was changed
	// after it was written (the events marked tampered).
	Intact bool `json:"intact"`
}

// PlacementState is what the placement was after the trail's last event.
type PlacementState struct {
	ApplicationStatus string        `json:"application_status"`
	SeatHeld          bool          `json:"seat_held"`
	WeeksReserved     bool          `json:"weeks_reserved"`
	ConventionID      string        `json:"convention_id,omitempty"`
	ConventionStatus  string        `json:"convention_status,omitempty"`
	SignedBy          []domain.Role `json:"signed_by,omitempty"`
}

// AsOf bounds a trail: a global position, or a time (RFC 3339) compared
// with the time each event was recorded.
type AsOf struct {
	Position eventstore.Position
	Time     time.Time
}

// ParseAsOf reads an as_of value: a position or an RFC 3339 time.
func ParseAsOf(s string) (*AsOf, error) {
	if s == "" {
		return nil, nil
	}
	if p, err := eventstore.ParsePosition(s); err == nil {
		return &AsOf{Position: p}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, api.Invalid("as_of", "must be a position or an RFC 3339 time")
	}
	return &AsOf{Time: t}, nil
}

func (a *AsOf) includes(e eventstore.RecordedEvent) bool {
	if a == nil {
		return true
	}
	if !a.Time.IsZero() {
		return !e.Created.After(a.Time)
	}
	return e.Position <= a.Position
}

// Application reads a placement's history from the event log itself:
// every event of the application and of its convention, and the events of
// the offer and of the pupil that concern this application, in log order.
// Personal data is shown opened with opener, or marked erased when the
// pupil was forgotten.
func Application(ctx context.Context, store eventstore.Store, opener Opener, id string, asOf *AsOf) (AuditTrail, error) {
	trail := AuditTrail{ApplicationID: id, Events: []AuditEvent{}, Intact: true}
	all, broken, err := placementEvents(ctx, store, id)
	if err != nil {
		return trail, err
	}
	trail.AsOf = asOf.label()
	var p placement
	for _, re := range all {
		if !asOf.includes(re) {
			break
		}
		p.replay(re)
		e := auditEvent(re, opener)
		e.Tampered = broken[link{re.Stream, re.Revision}]
		trail.Intact = trail.Intact && e.Tampered == ""
		trail.Events = append(trail.Events, e)
	}
	trail.State = p.state(id)
	return trail, nil
}

// label is the bound as the trail shows it: "" without one.
func (a *AsOf) label() string {
	switch {
	case a == nil:
		return ""
	case !a.Time.IsZero():
		return a.Time.UTC().Format(time.RFC3339Nano)
	}
	return a.Position.String()
}

// link names an event by its place in its stream.
type link struct {
	stream   string
	revision uint64
}

// placementEvents are the events of the application {id}, of its
// convention, and those of its offer and pupil that name it, in log order;
// and why those of them that were changed since written are broken (each
// stream's hash chain is checked whole).
func placementEvents(ctx context.Context, store eventstore.Store, id string) ([]eventstore.RecordedEvent, map[link]string, error) {
	broken := map[link]string{}
	check := func(evs []eventstore.RecordedEvent) error {
		found, err := chain.Links(ctx, store, evs)
		for rev, why := range found {
			broken[link{evs[0].Stream, rev}] = why
		}
		return err
	}
	appEvents, err := store.ReadStream(ctx, domain.ApplicationStream(id), eventstore.Forwards, 0, 0)
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return nil, nil, domain.NotFoundf("application")
	}
	if err == nil {
		err = check(appEvents)
	}
	if err != nil {
		return nil, nil, err
	}
	offerID, pupilID, conventionID := placementRefs(appEvents)
	all := appEvents
	for _, stream := range []string{domain.OfferStream(offerID), domain.PupilStream(pupilID)} {
		evs, err := readIfAny(ctx, store, stream)
		if err == nil {
			err = check(evs)
		}
		if err != nil {
			return nil, nil, err
		}
		all = append(all, naming(evs, id)...)
	}
	if conventionID != "" {
		evs, err := readIfAny(ctx, store, domain.ConventionStream(conventionID))
		if err == nil {
			err = check(evs)
		}
		if err != nil {
			return nil, nil, err
		}
		all = append(all, evs...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Position < all[j].Position })
	return all, broken, nil
}

// placementRefs are the offer, the pupil and the convention an
// application's events name.
func placementRefs(appEvents []eventstore.RecordedEvent) (offerID, pupilID, conventionID string) {
	for _, re := range appEvents {
		switch e, _ := domain.Decode(re.Type, re.Data); e := e.(type) {
		case *domain.ApplicationSubmitted:
			offerID, pupilID = e.OfferID, e.PupilID
		case *domain.ApplicationConfirmed:
			conventionID = e.ConventionID
		}
	}
	return offerID, pupilID, conventionID
}

// readIfAny reads a whole stream; one that does not exist has no events.
func readIfAny(ctx context.Context, store eventstore.Store, stream string) ([]eventstore.RecordedEvent, error) {
	evs, err := store.ReadStream(ctx, stream, eventstore.Forwards, 0, 0)
	if err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
		return nil, err
	}
	return evs, nil
}

// naming are the events whose data names the application id, itself or
// among the seats of a group booking.
func naming(evs []eventstore.RecordedEvent, id string) []eventstore.RecordedEvent {
	var out []eventstore.RecordedEvent
	for _, re := range evs {
		var ref struct {
			ApplicationID string `json:"application_id"`
			Seats         []struct {
				ApplicationID string `json:"application_id"`
			} `json:"seats"`
		}
		if json.Unmarshal(re.Data, &ref) != nil {
			continue
		}
		named := ref.ApplicationID == id
		for _, s := range ref.Seats {
			named = named || s.ApplicationID == id
		}
		if named {
			out = append(out, re)
		}
	}
	return out
}

// placement is the state replayed from a placement's events: the
// aggregates see only this placement's events.
type placement struct {
	app   domain.Application
	offer domain.Offer
	pupil domain.Pupil
	conv  domain.Convention
}

func (p *placement) replay(re eventstore.RecordedEvent) {
	e, err := domain.Decode(re.Type, re.Data)
	if err != nil {
		return
	}
	switch eventstore.Category(re.Stream) {
	case "application":
		p.app.Apply(e)
	case "offer":
		ensureOffer(&p.offer)
		p.offer.Apply(e)
	case "pupil":
		ensurePupil(&p.pupil)
		p.pupil.Apply(e)
	case "convention":
		p.conv.Apply(e)
	}
}

// state is what the placement of the application id is after the events
// replayed.
func (p *placement) state(id string) PlacementState {
	st := PlacementState{ApplicationStatus: p.app.Status, SeatHeld: p.offer.Holds(id), WeeksReserved: p.pupil.Reserved[id] != nil}
	if p.conv.Exists() {
		st.ConventionID, st.ConventionStatus = p.conv.Drafted().ConventionID, p.conv.Status()
		for _, r := range p.conv.Roles {
			if _, ok := p.conv.Signatures[r]; ok {
				st.SignedBy = append(st.SignedBy, r)
			}
		}
	}
	return st
}

// auditEvent is one event as the trail shows it.
func auditEvent(re eventstore.RecordedEvent, opener Opener) AuditEvent {
	md, _ := eventstore.DecodeMetadata(re.Metadata)
	return AuditEvent{
		Type: re.Type, Stream: re.Stream, Revision: re.Revision, Position: re.Position.String(),
		OccurredAt: md.OccurredAt, RecordedAt: re.Created, Actor: md.Actor, CommandID: md.CommandID,
		CorrelationID: md.CorrelationID, Reason: md.Reason, Data: auditData(re, opener),
	}
}

// ensureOffer and ensurePupil prepare aggregates that are replayed from a
// part of their stream (only this placement's events).
func ensureOffer(o *domain.Offer) {
	if !o.Exists() {
		o.Apply(&domain.OfferPosted{})
	}
}

func ensurePupil(p *domain.Pupil) {
	if !p.Exists() {
		p.Apply(&domain.PupilRegistered{})
	}
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

func (a *API) auditApplication(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	if _, err := api.MinPosition(r); err != nil {
		api.WriteError(w, r, err)
		return
	}
	if a.store == nil || !domain.ValidID(id) {
		api.WriteError(w, r, notFound("application"))
		return
	}
	asOf, err := ParseAsOf(r.URL.Query().Get("as_of"))
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	format := r.URL.Query().Get("format")
	if format != "" && format != "json" && format != "csv" {
		api.WriteError(w, r, api.Invalid("format", "must be json or csv"))
		return
	}
	trail, err := Application(r.Context(), a.store, a.opener, id, asOf)
	if errors.Is(err, domain.ErrNotFound) {
		api.WriteError(w, r, notFound("application"))
		return
	}
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="audit-`+id+`.csv"`)
		_ = trail.WriteCSV(w) // the client went away: nothing left to do
		return
	}
	api.WriteJSON(w, http.StatusOK, trail)
}

// WriteCSV writes the trail's events, one a line.
func (t AuditTrail) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"position", "recorded_at", "occurred_at", "type", "stream", "revision", "actor_role", "actor_subject", "command_id", "reason", "data", "tampered"})
	for _, e := range t.Events {
		_ = cw.Write([]string{e.Position, e.RecordedAt.Format(time.RFC3339Nano), e.OccurredAt.Format(time.RFC3339Nano), e.Type, e.Stream,
			strconv.FormatUint(e.Revision, 10), e.Actor.Role, e.Actor.Subject, e.CommandID, e.Reason, string(e.Data), e.Tampered})
	}
	cw.Flush()
	return cw.Error()
}
