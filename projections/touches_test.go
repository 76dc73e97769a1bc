package projections_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"passerelle/domain"
	"passerelle/eventstore"
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

// Each member, field or point of a read model has one contributor: no
// two writes of a finished batch are about the same one, over a log of
// every kind of event folded in batches of one event up to the whole log.
func TestFinishedBatchesShareNoTarget(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	if err := eventgen.New(eventgen.Options{Seed: 11}).Run(ctx, store, 20_000, 1); err != nil {
		t.Fatal(err)
	}
	for _, span := range []int{1, 7, 500, 1 << 30} {
		shared, err := projections.SharedTarget(ctx, store, projections.All(), span)
		if err != nil {
			t.Fatal(err)
		}
		if shared != "" {
			t.Errorf("batches of %d events: two writes of one batch about %s", span, shared)
		}
	}
}

// A projector folds every event Touches names a document for (events it
// does not fold reach it undecoded), over a log of every kind of event;
// each projector folds some of its events and is spared others.
func TestFoldsWhatTouchesNames(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	if err := eventgen.New(eventgen.Options{Seed: 7}).Run(ctx, store, 20_000, 1); err != nil {
		t.Fatal(err)
	}
	folded, spared := map[string]int{}, map[string]int{}
	for from := eventstore.Start; ; {
		recs, err := store.ReadAll(ctx, from, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		from = recs[len(recs)-1].Position
		for _, re := range recs {
			data, err := domain.Decode(re.Type, re.Data)
			if errors.Is(err, domain.ErrUnknownEvent) {
				continue // a record of the store's own (a command's outcome): never folded
			}
			if err != nil {
				t.Fatalf("at %d: %v", re.Position, err)
			}
			ev := projections.Event{Position: re.Position, Stream: re.Stream, Type: re.Type, Data: data}
			category, _, _ := strings.Cut(re.Stream, "-")
			for _, p := range projections.All() {
				touches := len(p.Touches(ev, projections.Docs{})) > 0
				switch folds := p.Folds(category, re.Type); {
				case touches && !folds:
					t.Fatalf("%s names documents for %s in %s, which it says it does not fold", p.Name(), re.Type, re.Stream)
				case folds:
					folded[p.Name()]++
				default:
					spared[p.Name()]++
				}
			}
		}
	}
	for _, p := range projections.All() {
		if folded[p.Name()] == 0 || spared[p.Name()] == 0 {
			t.Errorf("%s folds %d events and is spared %d: the test proves nothing of it", p.Name(), folded[p.Name()], spared[p.Name()])
		}
	}
}
