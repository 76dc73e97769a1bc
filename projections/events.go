package projections

import (
	"errors"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"passerelle/domain"
	"passerelle/eventstore"
)

// Event is a decoded event handed to projectors.
type Event struct {
	Position   eventstore.Position
	Stream     string
	Type       string
	OccurredAt time.Time
	Data       domain.Event // nil for events that are not domain events
}

// subject names what a domain event is about: its aggregate's category
// (employer, school, pupil, offer, application, convention, target) and
// id.
func subject(e domain.Event) (category, id string) {
	switch e := e.(type) {
	case *domain.EmployerRegistered:
		return "employer", e.EmployerID
	case *domain.SchoolRegistered:
		return "school", e.UAI
	case *domain.PupilRegistered:
		return "pupil", e.PupilID
	case *domain.PupilApplied:
		return "pupil", e.PupilID
	case *domain.PupilWeeksReserved:
		return "pupil", e.PupilID
	case *domain.PupilWeeksReleased:
		return "pupil", e.PupilID
	case *domain.PupilForgotten:
		return "pupil", e.PupilID
	case *domain.OfferPosted:
		return "offer", e.OfferID
	case *domain.OfferAmended:
		return "offer", e.OfferID
	case *domain.OfferWithdrawn:
		return "offer", e.OfferID
	case *domain.OfferReopened:
		return "offer", e.OfferID
	case *domain.SeatHeld:
		return "offer", e.OfferID
	case *domain.SeatReleased:
		return "offer", e.OfferID
	case *domain.ApplicationSubmitted:
		return "application", e.ApplicationID
	case *domain.ApplicationRead:
		return "application", e.ApplicationID
	case *domain.ApplicationAccepted:
		return "application", e.ApplicationID
	case *domain.ApplicationRejected:
		return "application", e.ApplicationID
	case *domain.ApplicationWithdrawn:
		return "application", e.ApplicationID
	case *domain.ApplicationConfirmed:
		return "application", e.ApplicationID
	case *domain.ApplicationCancelled:
		return "application", e.ApplicationID
	case *domain.ApplicationExpired:
		return "application", e.ApplicationID
	case *domain.ConventionDrafted:
		return "convention", e.ConventionID
	case *domain.ConventionCompleted:
		return "convention", e.ConventionID
	case *domain.ConventionSignatureAdded:
		return "convention", e.ConventionID
	case *domain.ConventionSigned:
		return "convention", e.ConventionID
	case *domain.ConventionCancelled:
		return "convention", e.ConventionID
	case *domain.TargetSet:
		return "target", e.Scope + ":" + e.Code + ":" + e.Metric
	}
	return "", ""
}

func decodeMessage(msg *message.Message, pos eventstore.Position) (Event, error) {
	ev := Event{Position: pos, Stream: msg.Metadata.Get(MetaStream), Type: msg.Metadata.Get(MetaType)}
	if t, err := time.Parse(time.RFC3339Nano, msg.Metadata.Get(MetaOccurredAt)); err == nil {
		ev.OccurredAt = t
	} else if t, err := time.Parse(time.RFC3339Nano, msg.Metadata.Get(MetaCreated)); err == nil {
		ev.OccurredAt = t
	}
	return ev, decodeData(&ev, msg.Payload)
}

// decodeRecorded is decodeMessage straight from the log, for rebuilds: the
// same event, without a message in between.
func decodeRecorded(re eventstore.RecordedEvent) (Event, error) {
	ev := Event{Position: re.Position, Stream: re.Stream, Type: re.Type, OccurredAt: re.Created.UTC()}
	if md, err := eventstore.DecodeMetadata(re.Metadata); err == nil && !md.OccurredAt.IsZero() {
		ev.OccurredAt = md.OccurredAt.UTC()
	}
	return ev, decodeData(&ev, re.Data)
}

// decodeData decodes the event's payload; events that are not domain
// events (idempotency records, seals, …) only move the checkpoint.
func decodeData(ev *Event, payload []byte) error {
	data, err := domain.Decode(ev.Type, payload)
	if errors.Is(err, domain.ErrUnknownEvent) {
		return nil
	}
	if err != nil {
		return err
	}
	ev.Data = data
	return nil
}
