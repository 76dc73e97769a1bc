package projections_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"passerelle/domain"
	"passerelle/internal/testsupport/eventgen"
	"passerelle/internal/testsupport/redistest"
	"passerelle/projections"
)

// countPipelines counts the round trips of a client.
type countPipelines struct{ n atomic.Int64 }

func (h *countPipelines) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countPipelines) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *countPipelines) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// TestWatchFollowsTheCheckpoints: a watch in a process without a runner
// wakes the readers waiting on its Progress as a runner elsewhere applies
// the log, never reports more than Redis holds, and stops asking Redis
// once no reader asks nor holds a channel.
func TestWatchFollowsTheCheckpoints(t *testing.T) {
	redistest.EachRedis(t, func(t *testing.T, r redistest.Redis) {
		s := openStore(t)
		rdb := r.Client(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		w := eventgen.New(eventgen.Options{Seed: 13, Setup: eventgen.Population{Employers: 5, Schools: 5, Pupils: 40, Offers: 20}})
		generate(t, s, w, 50)
		run(t, s, rdb, projections.Stats{})

		opts, _ := redis.ParseURL(r.URL)
		own := redis.NewClient(opts)
		defer own.Close()
		trips := &countPipelines{}
		own.AddHook(trips)
		watch := projections.NewWatch(own, nil, projections.StatsName, projections.OffersName)
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			watch.Run(ctx)
		}()
		defer func() { cancel(); <-stopped }()

		generate(t, s, w, 300)
		head, _ := s.Head(ctx)
		deadline := time.After(20 * time.Second)
		for {
			applied, moved := watch.Progress(projections.StatsName)
			prefix, _ := projections.ActivePrefix(ctx, rdb, projections.StatsName)
			held, err := projections.Checkpoint(ctx, rdb, prefix)
			if err != nil {
				t.Fatal(err)
			}
			if applied > held {
				t.Fatalf("the watch reports %d applied while Redis holds %d", applied, held)
			}
			if applied >= head {
				break
			}
			select {
			case <-moved:
			case <-deadline:
				t.Fatalf("the watch stuck at %d, want %d", applied, head)
			}
		}
		// a reader still holds a channel but none asks: a look every Idle
		_, moved := watch.Progress(projections.StatsName)
		time.Sleep(2 * watch.Idle)
		before := trips.n.Load()
		time.Sleep(3 * watch.Idle)
		if n := trips.n.Load() - before; n < 1 || n > 5 {
			t.Fatalf("the watch asked Redis %d times in 3 Idle while a channel was held, want about 3", n)
		}
		appendEvent(t, s, domain.OfferStream("w"), &domain.OfferPosted{OfferID: "w", Sector: "s3", Department: "75", CommuneCode: "75101",
			Grades: []domain.Grade{domain.Grade3e}, Weeks: []string{"2026-W10"}, Seats: 1, Lat: 48.86, Lon: 2.34, Title: "t"})
		select {
		case <-moved:
		case <-time.After(20 * time.Second):
			t.Fatal("the held channel was not closed when the checkpoint moved")
		}
		// no reader asks nor holds a channel (the offers were never asked for)
		time.Sleep(watch.Idle)
		before = trips.n.Load()
		time.Sleep(3 * watch.Idle)
		if n := trips.n.Load() - before; n != 0 {
			t.Fatalf("the watch asked Redis %d times while no reader waited", n)
		}
	})
}
