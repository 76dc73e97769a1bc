package chain

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"passerelle/eventstore"
)

// prevHash picks the hash out of the metadata's bytes: it agrees with the
// full decode on what the encoder writes and on what it does not.
func TestPrevHashAsDecoded(t *testing.T) {
	h := strings.Repeat("ab12", 16)
	cases := [][]byte{
		eventstore.Metadata{CommandID: "c", PrevHash: h, OccurredAt: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}.Encode(),
		eventstore.Metadata{CommandID: "c", Reason: `"prev_hash":"` + h + `"`}.Encode(), // the key inside a value
		eventstore.Metadata{CommandID: "first event of its stream"}.Encode(),
		[]byte(`{"prev_hash":"` + strings.ToUpper(h) + `"}`),
		[]byte(`{"prev_hash":"` + h[:63] + `"}`),
		[]byte(`{"prev_hash":"` + h),
		[]byte(`not json "prev_hash":"` + h + `"`),
		[]byte(`{"prev_hash":"` + h + `","prev_hash":"` + strings.Repeat("0", 64) + `"}`),
		[]byte(`{"prev\u005fhash":"` + h + `"}`), // the key spelled with an escape
		[]byte(`{"command_id":"c", "prev_hash" : "` + h + `"}`),
		[]byte(`{"prev_hash":null}`),
		[]byte(`{"command_id":"c",}`), // no key, not JSON
		[]byte(`{"command_id":"c\"}`),
	}
	for _, md := range cases {
		got, ok := prevHash(md)
		var e envelope
		wantOK := json.Unmarshal(md, &e) == nil
		want := e.PrevHash
		if ok != wantOK || got != want {
			t.Errorf("prevHash(%s) = %q, %v; decoded: %q, %v", md, got, ok, want, wantOK)
		}
	}
}

// An edited metadata that is no longer JSON but holds the key once is read
// as the key says (its event's hash, over every byte, is what names the
// edit: TestVerifyNamesTamperedEvent).
func TestPrevHashOfAnEditedObject(t *testing.T) {
	h := strings.Repeat("ab12", 16)
	if got, ok := prevHash([]byte(`{edited "prev_hash":"` + h + `"}`)); !ok || got != h {
		t.Fatalf("prevHash of an edited object: %q, %v", got, ok)
	}
}

// BenchmarkPrevHashFirstEvent reads the metadata of a stream's first
// event, which holds no prev_hash: a sealer reads one for each stream
// written since the last seal.
func BenchmarkPrevHashFirstEvent(b *testing.B) {
	md := eventstore.Metadata{CommandID: "seed/application/0123456789", Actor: eventstore.Actor{Role: "pupil", Subject: "0123456789"},
		OccurredAt: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}.Encode()
	for b.Loop() {
		if _, ok := prevHash(md); !ok {
			b.Fatal("not read")
		}
	}
}
