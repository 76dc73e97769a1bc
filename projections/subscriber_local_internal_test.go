package projections

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"passerelle/domain"
	"passerelle/eventstore"
)

// A local message of several events carries no payload; its handler reads
// the same events from its records as from a message with the payload,
// and a copy of it, without the records, is refused rather than read as
// no events.
func TestLocalBatchWithoutPayload(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	var recs []eventstore.RecordedEvent
	for i, name := range []string{"Collège A", "Collège B", "Collège C"} {
		data, err := domain.Encode(&domain.SchoolRegistered{UAI: "0941234A", Name: name, Kind: "college", CommuneCode: "94028"})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, eventstore.RecordedEvent{Stream: "school-0941234A", Revision: uint64(i), Position: eventstore.Position(3 + 2*i),
			ID: uuid.New(), Type: "SchoolRegistered", Data: data, Metadata: eventstore.Metadata{CommandID: "c", OccurredAt: at}.Encode(), Created: at})
	}
	local, full := toMessage(context.Background(), recs, true), toMessage(context.Background(), recs, false)
	if len(local.Payload) != 0 || len(full.Payload) == 0 {
		t.Fatalf("payload of %d bytes locally, %d otherwise", len(local.Payload), len(full.Payload))
	}
	if !reflect.DeepEqual(local.Metadata, full.Metadata) {
		t.Errorf("metadata %v locally, %v otherwise", local.Metadata, full.Metadata)
	}
	got, err := messageEvents(local, Placements{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := messageEvents(full.Copy(), Placements{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) || !reflect.DeepEqual(got, want) {
		t.Errorf("local events %+v, from the payload %+v", got, want)
	}
	if evs, err := messageEvents(local.Copy(), Placements{}); err == nil || evs != nil {
		t.Errorf("a local batch without its records: %d events, error %v", len(evs), err)
	}
	// one event is its own payload, local or not
	if one := toMessage(context.Background(), recs[:1], true); string(one.Payload) != string(recs[0].Data) {
		t.Errorf("one event's payload %q", one.Payload)
	}
}
