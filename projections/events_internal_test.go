package projections

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"passerelle/domain"
	"passerelle/eventstore"
)

// occurredAt picks the time out of the metadata as the full decode reads
// it, whatever else the metadata holds.
func TestOccurredAtAsDecoded(t *testing.T) {
	at := time.Date(2026, 3, 9, 14, 5, 7, 123456789, time.FixedZone("CET", 3600))
	cases := map[string][]byte{
		"encoded":         eventstore.Metadata{CommandID: "c", Actor: eventstore.Actor{Role: "pupil", Subject: `a "quoted" \ name`}, OccurredAt: at, Reason: `"occurred_at":"2001-01-01T00:00:00Z"`}.Encode(),
		"whole seconds":   eventstore.Metadata{OccurredAt: at.Truncate(time.Second).UTC()}.Encode(),
		"without it":      []byte(`{"command_id":"c"}`),
		"spaced":          []byte(`{"occurred_at" : "2026-03-09T14:05:07Z"}`),
		"not a time":      []byte(`{"occurred_at":"yesterday"}`),
		"escaped in text": []byte(`{"reason":"\"occurred_at\":\"2001-01-01T00:00:00Z\"","occurred_at":"2026-03-09T14:05:07Z"}`),
		"empty":           nil,
	}
	for name, md := range cases {
		want, _ := eventstore.DecodeMetadata(md)
		if got := occurredAt(md); !got.Equal(want.OccurredAt) {
			t.Errorf("%s: occurredAt = %v, the decoded metadata says %v", name, got, want.OccurredAt)
		}
	}
}

// A message's handler reads the records the message was made of; the
// same message without them (a copy, or one from elsewhere) decodes its
// payload into the same events, alone or in a batch.
func TestMessageEventsAsFromPayload(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	data, err := domain.Encode(&domain.SchoolRegistered{UAI: "0941234A", Name: "Collège", Kind: "college", CommuneCode: "94028"})
	if err != nil {
		t.Fatal(err)
	}
	recs := []eventstore.RecordedEvent{
		{Stream: "school-0941234A", Revision: 0, Position: 7, ID: uuid.New(), Type: "SchoolRegistered", Data: data,
			Metadata: eventstore.Metadata{CommandID: "c", OccurredAt: at}.Encode(), Created: at.Add(time.Second)},
		{Stream: "school-0941234A", Revision: 1, Position: 9, ID: uuid.New(), Type: "NotAnEvent", Data: []byte(`{}`),
			Metadata: []byte(`{}`), Created: at.Add(2 * time.Second)},
	}
	for _, batch := range [][]eventstore.RecordedEvent{recs[:1], recs} {
		msg := toMessage(context.Background(), batch, false)
		got, gerr := messageEvents(msg, foldsAll{})
		want, werr := messageEvents(msg.Copy(), foldsAll{}) // a copy carries no records: its payload is decoded
		if (gerr == nil) != (werr == nil) || len(got) != len(want) || len(got) != len(batch) {
			t.Fatalf("%d events: from the records %d, %v; from the payload %d, %v", len(batch), len(got), gerr, len(want), werr)
		}
		for i := range got {
			g, w := got[i], want[i]
			if g.Position != w.Position || g.Stream != w.Stream || g.Type != w.Type || !g.OccurredAt.Equal(w.OccurredAt) || !reflect.DeepEqual(g.Data, w.Data) {
				t.Errorf("event %d of %d: from the records %+v, from the payload %+v", i, len(batch), g, w)
			}
		}
	}
}

// foldsAll is Placements folding every event, as a projector of every
// kind would.
type foldsAll struct{ Placements }

func (foldsAll) Folds(string, string) bool { return true }

// The events a projector does not fold reach it undecoded, in their
// place, without data and without error, even one that would not decode;
// those it folds are decoded.
func TestEventsNotFoldedAreNotDecoded(t *testing.T) {
	school, err := domain.Encode(&domain.SchoolRegistered{UAI: "0941234A", Name: "Collège", Kind: "college", CommuneCode: "94028"})
	if err != nil {
		t.Fatal(err)
	}
	offer, err := domain.Encode(&domain.OfferWithdrawn{OfferID: "o1", Reason: "complet"})
	if err != nil {
		t.Fatal(err)
	}
	recs := []eventstore.RecordedEvent{
		{Stream: "school-0941234A", Position: 3, ID: uuid.New(), Type: "SchoolRegistered", Data: school, Metadata: []byte(`{}`)},
		{Stream: "offer-o1", Position: 5, ID: uuid.New(), Type: "OfferWithdrawn", Data: offer, Metadata: []byte(`{}`)},
		{Stream: "pupil-p1", Position: 8, ID: uuid.New(), Type: "PupilApplied", Data: []byte(`{"not json`), Metadata: []byte(`{}`)},
	}
	for _, batch := range [][]eventstore.RecordedEvent{recs, recs[:1], recs[2:]} {
		for _, msg := range []*message.Message{toMessage(context.Background(), batch, false), toMessage(context.Background(), batch, false).Copy()} {
			evs, err := messageEvents(msg, Offers{})
			if err != nil || len(evs) != len(batch) {
				t.Fatalf("%d records: %d events, %v", len(batch), len(evs), err)
			}
			for i, ev := range evs {
				re := batch[i]
				if ev.Position != re.Position || ev.Stream != re.Stream || ev.Type != re.Type {
					t.Errorf("event %d: %+v, want the record's position, stream and type", i, ev)
				}
				if folded := re.Stream == "offer-o1"; (ev.Data != nil) != folded {
					t.Errorf("%s: data %v; the offers fold it: %v", re.Type, ev.Data, folded)
				}
			}
		}
	}
}
