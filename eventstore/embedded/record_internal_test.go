package embedded

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/google/uuid"
)

// An event read shares one allocation for its data and metadata: growing
// one must not overwrite the other.
func TestEventDataAndMetadataStayApart(t *testing.T) {
	rec, err := decodeRecord(encodeRecord(uuid.New(), "offer-1", 3, "OfferPosted", 42, []byte(`{"a":1}`), []byte(`{"m":2}`)))
	if err != nil {
		t.Fatal(err)
	}
	ev := rec.event(7)
	grown := append(ev.Data, "XXXXXXXX"...)
	if !bytes.Equal(ev.Metadata, []byte(`{"m":2}`)) || !bytes.Equal(grown[:len(ev.Data)], []byte(`{"a":1}`)) {
		t.Fatalf("data %q, metadata %q", grown, ev.Metadata)
	}
	if ev.Stream != "offer-1" || ev.Type != "OfferPosted" || ev.Revision != 3 || ev.Position != 7 {
		t.Fatalf("event %+v", ev)
	}
	empty, err := decodeRecord(encodeRecord(uuid.New(), "s", 0, "T", 0, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if ev := empty.event(1); ev.Data != nil || ev.Metadata != nil {
		t.Fatalf("empty payloads read as %q and %q", ev.Data, ev.Metadata)
	}
}

// The set of event types stops growing at internedMax: a log of
// arbitrary types costs a copy each, not an ever larger map.
func TestInternedStopsGrowing(t *testing.T) {
	var set interned
	first := set.intern([]byte("OfferPosted"))
	if again := set.intern([]byte("OfferPosted")); again != first || len(*set.m.Load()) != 1 {
		t.Fatalf("interned %q then %q, %d held", first, again, len(*set.m.Load()))
	}
	for i := range 2 * internedMax {
		if s := set.intern([]byte("T" + strconv.Itoa(i))); s != "T"+strconv.Itoa(i) {
			t.Fatalf("interned %q as %q", "T"+strconv.Itoa(i), s)
		}
	}
	if n := len(*set.m.Load()); n != internedMax {
		t.Fatalf("%d strings held, want %d", n, internedMax)
	}
}
