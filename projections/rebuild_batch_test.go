package projections_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/internal/testsupport/eventgen"
	"passerelle/internal/testsupport/redistest"
	"passerelle/projections"
)

// everyTypeEvents is the size of the every-event-type scenario (the
// 100,000-event campaign of TestRebuildEqualsLive covers fewer types).
const everyTypeEvents = 15_000

// The read models a rebuild writes, batching hundreds of events per Redis
// round trip over every projection at once, are identical key by key to
// those the live runner wrote one event at a time, after a random scenario
// with every kind of event, amendments, reopenings, cancellations, expiries
// and campaign targets included. It runs against the real redis-server
// when one is configured, else against miniredis.
func TestRebuildEqualsLiveEveryEventType(t *testing.T) {
	r := redistest.Mini(t)
	if os.Getenv(redistest.RedisEnv) != "" {
		r = redistest.Real(t)
	}
	rdb := r.Client(t)
	ctx := context.Background()
	store := newMemStore()

	stop := run(t, store, rdb, projections.All()...)
	start := time.Now()
	generate(t, store, eventgen.New(eventgen.Options{Seed: 20260623}), everyTypeEvents)
	head, _ := store.Head(ctx)
	checkCoverage(t, store)
	for _, p := range projections.All() {
		waitLong(t, rdb, p.Name(), head)
	}
	stop()
	t.Logf("%s: %d events projected live in %v", r.Name, head, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	out, err := projections.RebuildAll(ctx, store, rdb, projections.All(), projections.RebuildOptions{KeepOld: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: rebuilt in %v", r.Name, time.Since(start).Round(time.Millisecond))
	for _, b := range out {
		if b.Previous == "" || b.Position != head {
			t.Fatalf("%s: rebuilt %+v, want a previous generation and position %d", b.Name, b, head)
		}
		if active, _ := projections.ActivePrefix(ctx, rdb, b.Name); active != projections.GenPrefix(b.Name, b.Generation) {
			t.Fatalf("%s: served %q after the rebuild, want generation %s", b.Name, active, b.Generation)
		}
		live := dump(t, rdb, projections.GenPrefix(b.Name, b.Previous))
		rebuilt := dump(t, rdb, projections.GenPrefix(b.Name, b.Generation))
		t.Logf("%s: %d keys", b.Name, len(live))
		sameDump(t, b.Name, live, rebuilt)
	}

	// again with a document cache far too small for the log: the rebuild
	// reads back from Redis what it forgot
	again, err := projections.RebuildAll(ctx, store, rdb, projections.All(), projections.RebuildOptions{KeepOld: true, CacheBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range again {
		sameDump(t, b.Name, dump(t, rdb, projections.GenPrefix(b.Name, out[i].Previous)), dump(t, rdb, projections.GenPrefix(b.Name, b.Generation)))
	}
}

// checkCoverage fails unless the scenario wrote every kind of event.
func checkCoverage(t *testing.T, s *memStore) {
	t.Helper()
	seen := map[string]int{}
	s.mu.Lock()
	for _, e := range s.log {
		seen[e.Type]++
	}
	s.mu.Unlock()
	want := []string{"TargetSet", "CommandCompleted"}
	for _, e := range []domain.Event{&domain.EmployerRegistered{}, &domain.SchoolRegistered{}, &domain.PupilRegistered{}, &domain.PupilForgotten{},
		&domain.OfferPosted{}, &domain.OfferAmended{}, &domain.OfferWithdrawn{}, &domain.OfferReopened{}, &domain.SeatHeld{},
		&domain.SeatReleased{}, &domain.ApplicationSubmitted{}, &domain.ApplicationRead{}, &domain.ApplicationAccepted{},
		&domain.ApplicationRejected{}, &domain.ApplicationWithdrawn{}, &domain.ApplicationCancelled{}, &domain.ApplicationExpired{},
		&domain.ApplicationConfirmed{}, &domain.PupilApplied{}, &domain.PupilWeeksReserved{}, &domain.PupilWeeksReleased{},
		&domain.ConventionDrafted{}, &domain.ConventionCompleted{}, &domain.ConventionSignatureAdded{}, &domain.ConventionSigned{},
		&domain.ConventionCancelled{}} {
		want = append(want, e.EventType())
	}
	for _, typ := range want {
		if seen[typ] == 0 {
			t.Errorf("the scenario has no %s", typ)
		}
	}
	t.Logf("event types: %v", seen)
}

// waitLong waits for a projection to reach pos, however long a big
// scenario takes, as long as it moves.
func waitLong(t *testing.T, rdb redis.UniversalClient, name string, pos eventstore.Position) {
	t.Helper()
	ctx := context.Background()
	var last eventstore.Position
	lastMove := time.Now()
	for {
		prefix, err := projections.ActivePrefix(ctx, rdb, name)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := projections.Checkpoint(ctx, rdb, prefix)
		if err != nil {
			t.Fatal(err)
		}
		if cp >= pos {
			return
		}
		if cp != last {
			last, lastMove = cp, time.Now()
		}
		if time.Since(lastMove) > 30*time.Second {
			t.Fatalf("%s stuck at %d, want %d", name, cp, pos)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func dump(t *testing.T, rdb redis.UniversalClient, prefix string) map[string]string {
	t.Helper()
	d, err := projections.Dump(context.Background(), rdb, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func sameDump(t *testing.T, name string, live, rebuilt map[string]string) {
	t.Helper()
	var diffs []string
	for k, v := range live {
		if w, ok := rebuilt[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: only in the live model", k))
		} else if v != w {
			diffs = append(diffs, fmt.Sprintf("%s differs:\n  live    %q\n  rebuilt %q", k, trunc(v), trunc(w)))
		}
	}
	for k := range rebuilt {
		if _, ok := live[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: only in the rebuilt model", k))
		}
	}
	if len(diffs) > 0 {
		slices.Sort(diffs)
		t.Errorf("%s: %d keys differ between the live and the rebuilt read model; the first:\n%s", name, len(diffs), strings.Join(diffs[:min(len(diffs), 15)], "\n"))
	}
	if len(live) == 0 {
		t.Errorf("%s: empty read model", name)
	}
}

func trunc(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// A rebuild while the live runner keeps projecting new events: the runner
// moves to the rebuilt generation at the swap, nothing is lost or applied
// twice, and the old generation is deleted.
func TestRebuildSwapsUnderLiveRunner(t *testing.T) {
	redistest.EachRedis(t, func(t *testing.T, r redistest.Redis) {
		rdb := r.Client(t)
		ctx := context.Background()
		store := newMemStore()
		w := eventgen.New(eventgen.Options{Seed: 7})
		generate(t, store, w, 1500)
		run(t, store, rdb, projections.All()...)

		var wg sync.WaitGroup
		writing := make(chan struct{})
		wg.Go(func() {
			for {
				select {
				case <-writing:
					return
				default:
				}
				if err := w.Run(ctx, store, w.Events()+10, 1); err != nil {
					t.Error(err)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
		before := map[string]string{}
		for _, p := range projections.All() {
			before[p.Name()], _ = projections.ActivePrefix(ctx, rdb, p.Name())
		}
		out, err := projections.RebuildAll(ctx, store, rdb, projections.All(), projections.RebuildOptions{Batch: 64, Grace: time.Millisecond})
		close(writing)
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		generate(t, store, w, w.Events()+200) // after the swap
		head, _ := store.Head(ctx)
		for _, b := range out {
			waitFor(t, rdb, b.Name, head)
			prefix, _ := projections.ActivePrefix(ctx, rdb, b.Name)
			if prefix != projections.GenPrefix(b.Name, b.Generation) || prefix == before[b.Name] {
				t.Fatalf("%s: served %s, want the rebuilt generation %s", b.Name, prefix, b.Generation)
			}
			if n, _ := rdb.Keys(ctx, before[b.Name]+"*").Result(); len(n) != 0 {
				t.Fatalf("%s: %d keys of the old generation left", b.Name, len(n))
			}
			if b.Deleted == 0 {
				t.Fatalf("%s: no old key deleted", b.Name)
			}
		}
		// the generation the live runner carried on is what a rebuild
		// from scratch makes of the same log
		again, err := projections.RebuildAll(ctx, store, rdb, projections.All(), projections.RebuildOptions{KeepOld: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range again {
			sameDump(t, b.Name, dump(t, rdb, projections.GenPrefix(b.Name, b.Previous)), dump(t, rdb, projections.GenPrefix(b.Name, b.Generation)))
		}
	})
}

// Only one rebuild of a projection runs at a time, and an abandoned one is
// cleaned up by the next.
func TestRebuildLockAndLeftovers(t *testing.T) {
	rdb := redistest.Mini(t).Client(t)
	ctx := context.Background()
	store := newMemStore()
	generate(t, store, eventgen.New(eventgen.Options{Seed: 9}), 500)
	if err := rdb.Set(ctx, "rm:stats:rebuild-lock", "someone", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := projections.RebuildAll(ctx, store, rdb, []projections.Projector{projections.Stats{}}, projections.RebuildOptions{}); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("a second rebuild started: %v", err)
	}
	rdb.Del(ctx, "rm:stats:rebuild-lock")
	// an abandoned rebuild left generation 5 behind
	rdb.Set(ctx, "rm:stats:building", "5", 0)
	rdb.Set(ctx, "rm:stats:5:counters", "x", 0)
	out, err := projections.RebuildAll(ctx, store, rdb, []projections.Projector{projections.Stats{}}, projections.RebuildOptions{Grace: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Generation != "6" || out[0].Previous != "" {
		t.Fatalf("rebuilt %+v, want generation 6 served first", out[0])
	}
	if n, _ := rdb.Exists(ctx, "rm:stats:5:counters", "rm:stats:building", "rm:stats:rebuild-lock").Result(); n != 0 {
		t.Fatalf("%d leftover keys", n)
	}
	if h, _ := rdb.HGetAll(ctx, "rm:stats:6:counters").Result(); len(h) == 0 {
		t.Fatal("the rebuilt generation has no counters")
	}
}

// A rebuild whose document cache is far too small for the log, as a
// national log's pupils and applications outgrow any, reads back what it
// forgot a page of events at a time, not event by event: the round trips
// that read documents are bounded by the pages, and the read models are
// the same as with a cache that holds everything.
func TestRebuildReadsBackAPageAtOnce(t *testing.T) {
	rdb := redistest.Mini(t).Client(t)
	ctx := context.Background()
	store := newMemStore()
	generate(t, store, eventgen.New(eventgen.Options{Seed: 20261205}), 6_000)
	head, _ := store.Head(ctx)

	whole, err := projections.RebuildAll(ctx, store, rdb, projections.All(), projections.RebuildOptions{KeepOld: true, Grace: -1})
	if err != nil {
		t.Fatal(err)
	}
	reads := &countReads{}
	rdb.AddHook(reads)
	const batch = 500
	small, err := projections.RebuildAll(ctx, store, rdb, projections.All(),
		projections.RebuildOptions{KeepOld: true, Grace: -1, Batch: batch, CacheBytes: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range small {
		sameDump(t, b.Name, dump(t, rdb, projections.GenPrefix(b.Name, whole[i].Generation)), dump(t, rdb, projections.GenPrefix(b.Name, b.Generation)))
	}
	pages := (int(head) + batch - 1) / batch
	// a page's first reads, and those of the few documents another names
	// (a convention its pupil)
	bound := 2 * pages * len(small)
	t.Logf("%d events, %d pages: %d document reads (MGET), %d keys", head, pages, reads.calls.Load(), reads.keys.Load())
	if n := reads.calls.Load(); n > int64(bound) || n == 0 {
		t.Errorf("%d document reads for %d pages of %d projections, want between 1 and %d", n, pages, len(small), bound)
	}
}

// countReads counts the MGET commands sent through a client, and their keys.
type countReads struct{ calls, keys atomic.Int64 }

func (c *countReads) count(cmd redis.Cmder) {
	if cmd.Name() == "mget" {
		c.calls.Add(1)
		c.keys.Add(int64(len(cmd.Args()) - 1))
	}
}

func (c *countReads) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *countReads) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.count(cmd)
		return next(ctx, cmd)
	}
}

func (c *countReads) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			c.count(cmd)
		}
		return next(ctx, cmds)
	}
}
