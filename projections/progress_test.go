package projections_test

import (
	"context"
	"testing"
	"time"

	"passerelle/eventstore"
	"passerelle/internal/testsupport/eventgen"
	"passerelle/internal/testsupport/redistest"
	"passerelle/projections"
)

// TestProgressTellsWhatRedisHolds: each of two runners on the same Redis
// (two service instances) wakes the readers waiting on its Progress as it
// applies the log, whichever of them wrote an event, and never reports a
// position before the served generation in Redis holds it.
func TestProgressTellsWhatRedisHolds(t *testing.T) {
	redistest.EachRedis(t, func(t *testing.T, r redistest.Redis) {
		s := openStore(t)
		rdb := r.Client(t)
		ctx := context.Background()
		w := eventgen.New(eventgen.Options{Seed: 11, Setup: eventgen.Population{Employers: 5, Schools: 5, Pupils: 40, Offers: 20}})
		generate(t, s, w, 50)
		var runners []*projections.Runner
		for range 2 {
			runWith(t, s, rdb, func(r *projections.Runner) { runners = append(runners, r) }, projections.Stats{})
		}
		generate(t, s, w, 300)
		head, _ := s.Head(ctx)
		for i, run := range runners {
			deadline := time.After(20 * time.Second)
			wakes := 0
			for {
				applied, moved := run.Progress(projections.StatsName)
				prefix, err := projections.ActivePrefix(ctx, rdb, projections.StatsName)
				if err != nil {
					t.Fatal(err)
				}
				held, err := projections.Checkpoint(ctx, rdb, prefix)
				if err != nil {
					t.Fatal(err)
				}
				if applied > held {
					t.Fatalf("runner %d reports %d applied while Redis holds %d", i, applied, held)
				}
				if applied >= head {
					break
				}
				select {
				case <-moved:
					wakes++
				case <-deadline:
					t.Fatalf("runner %d stuck at %d, want %d (%d wakes)", i, applied, head, wakes)
				}
			}
			if applied, _ := run.Progress(projections.StatsName); applied < head || applied == eventstore.Start {
				t.Fatalf("runner %d at %d, want %d", i, applied, head)
			}
		}
		checkStats(t, rdb, w)
	})
}
