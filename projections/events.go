package projections

import (
	"bytes"
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
	if t := occurredAt(re.Metadata); !t.IsZero() {
		ev.OccurredAt = t.UTC()
	}
	return ev, decodeData(&ev, re.Data)
}

// occurredAtKey is how eventstore.Metadata.Encode writes the field. In
// valid JSON these bytes can only be that key: a quote inside a string is
// escaped.
var occurredAtKey = []byte(`"occurred_at":"`)

// occurredAt is the metadata's occurred_at, zero when it has none. A
// rebuild reads it for every event: it is picked out of the JSON rather
// than decoding the whole metadata, which is a good part of a rebuild's
// cost; anything unexpected falls back to the full decode.
func occurredAt(metadata []byte) time.Time {
	if i := bytes.Index(metadata, occurredAtKey); i >= 0 {
		v := metadata[i+len(occurredAtKey):]
		if j := bytes.IndexByte(v, '"'); j > 0 {
			if t, err := time.Parse(time.RFC3339Nano, string(v[:j])); err == nil {
				return t
			}
		}
	}
	md, err := eventstore.DecodeMetadata(metadata)
	if err != nil {
		return time.Time{}
	}
	return md.OccurredAt
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
