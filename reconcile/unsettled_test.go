package reconcile_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"passerelle/commands"
	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/internal/testsupport/eventgen"
	"passerelle/reconcile"
)

// The count of unsettled placements the reconciler keeps as it folds
// (the metric's) is, after each event of the logs every interrupted
// command leaves, and of the reconciler's repairs after them, the count
// the whole view lists.
func TestUnsettledCountFollowsTheView(t *testing.T) {
	ctx := context.Background()
	checked := 0
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			for n := 0; ; n++ {
				w := newWorld(t, 2)
				app := sc.prepare(w)
				cs := &crashing{Store: w.store}
				cs.left.Store(int64(n))
				err := sc.run(ctx, w, w.service(cs), app)
				if err != nil && !errors.Is(err, errCrash) {
					t.Fatalf("after %d appends: %v", n, err)
				}
				w.settle()
				evs, rerr := w.store.ReadAll(ctx, eventstore.Start, 0)
				if rerr != nil {
					t.Fatal(rerr)
				}
				r := reconcile.New(w.store, w.service(w.store), "", nil)
				v := reconcile.NewView()
				for _, re := range evs {
					v.Apply(re)
					if got, want := r.Step(ctx, re), len(v.Unsettled()); got != want {
						t.Fatalf("after %d appends, at %s (%d): %d counted unsettled, the view lists %d: %v",
							n, re.Type, re.Position, got, want, v.Unsettled())
					}
					if len(v.Unsettled()) > 0 {
						checked++
					}
				}
				if err == nil {
					return
				}
			}
		})
	}
	if checked == 0 {
		t.Fatal("no log held an unsettled placement: nothing was compared")
	}
}

// noRepairs is a Settler for folding only: the count is compared before
// any repair, and a forget's key is not there to destroy.
type noRepairs struct{}

func (noRepairs) Settle(context.Context, commands.Meta, string) (commands.Result, error) {
	return commands.Result{}, errors.New("no repairs here")
}

func (noRepairs) SettleBooking(context.Context, commands.Meta, string, string) (commands.Result, error) {
	return commands.Result{}, errors.New("no repairs here")
}

func (noRepairs) DestroyKey(string) error { return nil }

// The same over a random season of every command, where one command in
// six that appends to several streams stops after a random number of its
// appends: pupils with several applications, rivals, withdrawn offers
// and forgotten pupils.
func TestUnsettledCountFollowsARandomLog(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 7))
	r := reconcile.New(nil, noRepairs{}, "", nil)
	v := reconcile.NewView()
	var pos eventstore.Position
	most := 0
	for _, c := range eventgen.New(eventgen.Options{Seed: 7}).Generate(6_000) {
		appends := c.Appends
		if len(appends) > 1 && rng.IntN(6) == 0 {
			appends = appends[:rng.IntN(len(appends))]
		}
		for _, a := range appends {
			for _, e := range a.Events {
				data, err := domain.Encode(e)
				if err != nil {
					t.Fatal(err)
				}
				pos++
				re := eventstore.RecordedEvent{Stream: a.Stream, Type: e.EventType(), Data: data, Position: pos}
				touched, _ := v.Apply(re)
				want := len(v.Unsettled())
				if got := r.Step(ctx, re); got != want {
					t.Fatalf("at %s (%d, naming %v): %d counted unsettled, the view lists %d", re.Type, pos, touched, got, want)
				}
				most = max(most, want)
			}
		}
	}
	if most < 2 {
		t.Fatalf("at most %d placements unsettled at once: too few to compare", most)
	}
	t.Logf("%d events, at most %d placements unsettled at once", pos, most)
}
