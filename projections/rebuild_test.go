package projections_test

import (
	"context"
	"os"
	"sort"
	"testing"
	"time"

	"passerelle/domain"
	"passerelle/internal/testsupport/eventgen"
	"passerelle/internal/testsupport/redistest"
	"passerelle/projections"
)

// The read models a live runner built event by event equal, key by key,
// those a rebuild makes from the log, after a long random campaign.
func TestRebuildEqualsLive(t *testing.T) {
	r := redistest.Mini(t)
	if os.Getenv(redistest.RedisEnv) != "" {
		r = redistest.RealDB(t, 9) // the real server, when there is one, is the one that matters
	}
	rdb := r.Client(t)
	s := openStore(t)
	ctx := context.Background()
	w := eventgen.New(eventgen.Options{Seed: 42})
	if err := w.Run(ctx, s, 100_000, 16); err != nil {
		t.Fatal(err)
	}
	n := w.Events()
	head, _ := s.Head(ctx)
	stop := run(t, s, rdb, projections.All()...)
	for _, p := range projections.All() {
		waitWithin(t, rdb, p.Name(), head, 5*time.Minute)
	}
	stop()
	for _, p := range projections.All() {
		live, _ := projections.ActivePrefix(ctx, rdb, p.Name())
		liveDump, err := projections.Dump(ctx, rdb, live)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		gen, err := projections.Rebuild(ctx, s, rdb, nil, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d events rebuilt in %v (%.0f events/s), %d keys", p.Name(), n, time.Since(start), float64(n)/time.Since(start).Seconds(), len(liveDump))
		rebuilt, err := projections.Dump(ctx, rdb, projections.GenPrefix(p.Name(), gen))
		if err != nil {
			t.Fatal(err)
		}
		if len(liveDump) < 1000 {
			t.Fatalf("%s: only %d keys: the scenario did not exercise the model", p.Name(), len(liveDump))
		}
		var diff []string
		for k, v := range liveDump {
			if rebuilt[k] != v {
				diff = append(diff, k)
			}
		}
		for k := range rebuilt {
			if _, ok := liveDump[k]; !ok {
				diff = append(diff, k)
			}
		}
		sort.Strings(diff)
		if len(diff) > 0 {
			t.Fatalf("%s: %d keys differ, first %q:\nlive    %.300s\nrebuilt %.300s", p.Name(), len(diff), diff[0], liveDump[diff[0]], rebuilt[diff[0]])
		}
		if left, _ := projections.Dump(ctx, rdb, live); len(left) != 0 {
			t.Fatalf("%s: the replaced generation still has %d keys", p.Name(), len(left))
		}
	}
}

// A live runner keeps applying new events after a rebuild swapped a new
// generation in under it.
func TestRunnerFollowsSwap(t *testing.T) {
	s := openStore(t)
	rdb := redistest.Mini(t).Client(t)
	generate(t, s, eventgen.New(eventgen.Options{Seed: 7}), 2_000)
	run(t, s, rdb, projections.Stats{})
	head, _ := s.Head(context.Background())
	waitFor(t, rdb, projections.StatsName, head)
	gen, err := projections.Rebuild(context.Background(), s, rdb, nil, projections.Stats{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pos := appendEvent(t, s, domain.OfferStream("late"), &domain.OfferPosted{OfferID: "late", Sector: "s9", Department: "94", Grades: []domain.Grade{domain.Grade3e}, Weeks: []string{"2027-W10"}, Seats: 1})
	waitFor(t, rdb, projections.StatsName, pos)
	if active, _ := projections.ActivePrefix(context.Background(), rdb, projections.StatsName); active != projections.GenPrefix(projections.StatsName, gen) {
		t.Fatalf("served %s, want generation %s", active, gen)
	}
	if v := counters(t, rdb)["sector:s9:offers_open"]; v == "" || v == "0" {
		t.Fatalf("the event after the swap was not applied to the new generation: %q", v)
	}
}
