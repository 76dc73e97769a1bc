package projections

import (
	"testing"
	"time"

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
