package eventstore

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// Encode writes what json.Marshal writes, whatever the strings hold and
// whatever the time: the bytes are hashed into the chain of each stream.
func FuzzMetadataEncode(f *testing.F) {
	f.Add("cmd-1", "", "", "backoffice", "", "", "", int64(1_700_000_000), int64(123_456_789), 0)
	f.Add("c", "corr", "cause", "pupil", "pupil-7", "ab12", "seat released: acceptance interrupted", int64(0), int64(0), 3600)
	f.Add("a\"b\\c", "<&>", "\u2028\u2029", "é", "\x00\x1f", "\xff\xfe", "tab\tnew\nline", int64(-62135596800), int64(1), -5400)
	f.Add("x", "", "", "", "", "", "", int64(253402300800), int64(0), 0) // the year 10000: refused
	f.Add("y", "", "", "", "", "", "", int64(0), int64(0), 25*3600)      // an offset of 25 hours: refused
	f.Fuzz(func(t *testing.T, cmd, corr, cause, role, subject, prev, reason string, secs, nanos int64, offset int) {
		at := time.Unix(secs, nanos).In(time.FixedZone("", offset%(48*3600)))
		m := Metadata{CommandID: cmd, CorrelationID: corr, CausationID: cause, Actor: Actor{Role: role, Subject: subject},
			OccurredAt: at, PrevHash: prev, Reason: reason}
		want, _ := json.Marshal(m)
		if got := m.Encode(); !bytes.Equal(got, want) {
			t.Fatalf("Encode:\n%s\njson.Marshal:\n%s", got, want)
		}
	})
}

// BenchmarkMetadataEncode: Encode against json.Marshal of the same
// metadata, as commands write it.
func BenchmarkMetadataEncode(b *testing.B) {
	m := Metadata{CommandID: "0b5c1a8e-3f7d-4c2a-9e61-2d4f8a7c9b10", CorrelationID: "0b5c1a8e-3f7d-4c2a-9e61-2d4f8a7c9b10",
		Actor: Actor{Role: "backoffice", Subject: "agent-42"}, OccurredAt: time.Date(2026, 3, 2, 9, 30, 0, 123456789, time.UTC),
		PrevHash: "9f2c4e7a1b3d5f6e8a0c2e4f6a8b0d1c3e5f7a9b1d3f5e7a9c1e3f5a7b9d1f3e"}
	b.Run("encode", func(b *testing.B) {
		for b.Loop() {
			_ = m.Encode()
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		for b.Loop() {
			_, _ = json.Marshal(m)
		}
	})
}
