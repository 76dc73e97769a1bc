package projections

import (
	"errors"
	"strings"
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

// subject names the aggregate an event is about, from its stream
// "<category>-<id>": the category is employer, school, pupil, offer,
// application, convention or target.
func subject(ev Event) (category, id string) {
	category, id, _ = strings.Cut(ev.Stream, "-")
	return category, id
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
