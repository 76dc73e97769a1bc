package projections_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"passerelle/eventstore"
	"passerelle/internal/testsupport/eventgen"
	"passerelle/internal/testsupport/redistest"
	"passerelle/projections"
)

// benchRedis is the real redis-server, flushed; with
// PASSERELLE_BENCH_MINIREDIS=1, an in-process miniredis instead (the read
// store of the embedded default), returned too.
func benchRedis(b *testing.B) (*redis.Client, *miniredis.Miniredis) {
	url := os.Getenv(redistest.RedisEnv)
	var m *miniredis.Miniredis
	if os.Getenv("PASSERELLE_BENCH_MINIREDIS") == "1" {
		m = miniredis.RunT(b)
		url = "redis://" + m.Addr()
	}
	if url == "" {
		b.Skipf("%s is not set: this benchmark measures the real redis-server (PASSERELLE_BENCH_MINIREDIS=1: miniredis)", redistest.RedisEnv)
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		b.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	b.Cleanup(func() { rdb.Close() })
	if err := rdb.FlushDB(context.Background()).Err(); err != nil {
		b.Fatal(err)
	}
	return rdb, m
}

// cpuTimes reads the CPU time used so far by this process and by the Redis
// server: on a shared machine they vary less than the elapsed time.
// miniredis reports none: its time is this process's.
func cpuTimes(b *testing.B, rdb *redis.Client) (self, server time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil && !strings.Contains(err.Error(), "not supported") {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		name, v, _ := strings.Cut(line, ":")
		if name == "used_cpu_sys" || name == "used_cpu_user" {
			f, _ := strconv.ParseFloat(v, 64)
			server += time.Duration(f * float64(time.Second))
		}
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), server
}

// measure runs f b.N times and reports events/s and the CPU milliseconds
// per op of this process and of the Redis server.
func measure(b *testing.B, rdb *redis.Client, events int, f func() error) {
	self, server := cpuTimes(b, rdb)
	for b.Loop() {
		if err := f(); err != nil {
			b.Fatal(err)
		}
	}
	self2, server2 := cpuTimes(b, rdb)
	b.ReportMetric(float64(events*b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64((self2-self).Milliseconds())/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64((server2-server).Milliseconds())/float64(b.N), "redis-cpu-ms/op")
}

// BenchmarkRebuild measures a rebuild of the placements read model against
// the real redis-server (events/s), and as a baseline the same Redis
// commands written raw through a pipeline, 512 events per round trip.
func BenchmarkRebuild(b *testing.B) {
	rdb, _ := benchRedis(b)
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
	// every measured rebuild replaces a served generation, as in production
	if _, err := projections.Rebuild(ctx, s, rdb, nil, projections.Placements{}, nil); err != nil {
		b.Fatal(err)
	}
	b.Run("rebuild", func(b *testing.B) {
		measure(b, rdb, n, func() error {
			_, err := projections.Rebuild(ctx, s, rdb, nil, projections.Placements{}, nil)
			return err
		})
	})
	b.Run("raw-pipelined", func(b *testing.B) {
		measure(b, rdb, n, func() error { return pipelined(ctx, rdb, live, 512) })
	})
}

// pipelined writes the commands of each event raw, per events a round trip.
func pipelined(ctx context.Context, rdb *redis.Client, live [][]projections.Cmd, per int) error {
	pipe := rdb.Pipeline()
	for i, cmds := range live {
		for _, c := range cmds {
			pipe.Do(ctx, []any(c)...)
		}
		if i%per == per-1 {
			if _, err := pipe.Exec(ctx); err != nil {
				return err
			}
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return err
	}
	return nil
}

func openBenchStore(b *testing.B) (eventstore.Store, error) {
	s, err := openStoreAt(b.TempDir())
	if err == nil {
		b.Cleanup(func() { s.Close() })
	}
	return s, err
}
