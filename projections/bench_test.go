package projections_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"passerelle/eventstore"
	"passerelle/internal/testsupport/eventgen"
	"passerelle/internal/testsupport/redistest"
	"passerelle/projections"
)

func benchRedis(b *testing.B) *redis.Client {
	if os.Getenv(redistest.RedisEnv) == "" {
		b.Skipf("%s is not set: this benchmark measures the real redis-server", redistest.RedisEnv)
	}
	opts, err := redis.ParseURL(os.Getenv(redistest.RedisEnv))
	if err != nil {
		b.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	b.Cleanup(func() { rdb.Close() })
	if err := rdb.FlushDB(context.Background()).Err(); err != nil {
		b.Fatal(err)
	}
	return rdb
}

// BenchmarkRebuild measures a rebuild of the placements read model against
// the real redis-server (events/s), and as a baseline the same Redis
// commands written raw through a pipeline, 512 events per round trip.
func BenchmarkRebuild(b *testing.B) {
	rdb := benchRedis(b)
	defer func(g time.Duration) { projections.SwapGrace = g }(projections.SwapGrace)
	projections.SwapGrace = 0 // measure the rebuild, not the readers' grace period
	s, err := openBenchStore(b)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	w := eventgen.New(eventgen.Options{Seed: 3})
	if err := w.Run(ctx, s, 20_000, 16); err != nil {
		b.Fatal(err)
	}
	n := w.Events()
	live, err := projections.LiveCommands(ctx, s, []projections.Projector{projections.Placements{}}, []string{"rm:raw:1:"})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("rebuild", func(b *testing.B) {
		for b.Loop() {
			if _, err := projections.Rebuild(ctx, s, rdb, nil, projections.Placements{}, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("raw-pipelined", func(b *testing.B) {
		for b.Loop() {
			pipe := rdb.Pipeline()
			for i, cmds := range live {
				for _, c := range cmds {
					pipe.Do(ctx, []any(c)...)
				}
				if i%512 == 511 {
					if _, err := pipe.Exec(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
			if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
	})
}

func openBenchStore(b *testing.B) (eventstore.Store, error) {
	s, err := openStoreAt(b.TempDir())
	if err == nil {
		b.Cleanup(func() { s.Close() })
	}
	return s, err
}
