package projections_test

import (
	"context"
	"testing"

	"passerelle/internal/testsupport/eventgen"
	"passerelle/projections"
)

// A projector asked once for the documents of an event whose documents
// name none names them all: every document that names others says so
// (Ref.Names), over a log of every kind of event.
func TestTouchesSettleInTheRoundsAsked(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	if err := eventgen.New(eventgen.Options{Seed: 5}).Run(ctx, store, 30_000, 1); err != nil {
		t.Fatal(err)
	}
	key, types, err := projections.UnsettledTouches(ctx, store, projections.All())
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		t.Fatalf("named only once its naming document was loaded, which does not say it names others: %s", key)
	}
	// the events whose documents name others were among those folded
	for _, typ := range []string{"PupilForgotten", "ConventionSigned", "ConventionCancelled"} {
		if types[typ] == 0 {
			t.Errorf("no %s in the log: the test proves nothing of it (%v)", typ, types)
		}
	}
}
