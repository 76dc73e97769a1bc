package projections_test

import (
	"context"
	"log/slog"
	"testing"

	"passerelle/internal/testsupport/eventgen"
	"passerelle/projections"
)

// BenchmarkRebuildAll measures a rebuild of every projection in one pass
// over a log of every kind of event, against the real redis-server, in
// events of the log per second; the baseline, in the same run, writes the
// very same Redis commands raw through a pipeline, 500 events' worth per
// round trip. On miniredis, "rebuild-inprocess" hands the commands straight
// to the server (projections.InProcess), as the embedded default does.
func BenchmarkRebuildAll(b *testing.B) {
	rdb, mini := benchRedis(b)
	ctx := context.Background()
	store := newMemStore()
	if err := eventgen.New(eventgen.Options{Seed: 1}).Run(ctx, store, 50_000, 1); err != nil {
		b.Fatal(err)
	}
	n, _ := store.Head(ctx)
	quiet := slog.New(slog.DiscardHandler)
	var prefixes []string
	for _, p := range projections.All() {
		prefixes = append(prefixes, "rm:raw-"+p.Name()+":1:")
	}
	live, err := projections.LiveCommands(ctx, store, projections.All(), prefixes)
	if err != nil {
		b.Fatal(err)
	}
	opts := projections.RebuildOptions{Batch: 500, Grace: -1, Log: quiet}
	// every measured rebuild replaces a served generation, as in production
	if _, err := projections.RebuildAll(ctx, store, rdb, projections.All(), opts); err != nil {
		b.Fatal(err)
	}
	b.Run("rebuild", func(b *testing.B) {
		measure(b, rdb, int(n), func() error {
			_, err := projections.RebuildAll(ctx, store, rdb, projections.All(), opts)
			return err
		})
	})
	if mini != nil {
		direct := opts
		direct.Write = projections.InProcess(mini)
		b.Run("rebuild-inprocess", func(b *testing.B) {
			measure(b, rdb, int(n), func() error {
				_, err := projections.RebuildAll(ctx, store, rdb, projections.All(), direct)
				return err
			})
		})
	}
	b.Run("raw-pipelined", func(b *testing.B) {
		measure(b, rdb, int(n), func() error { return pipelined(ctx, rdb, live, 500) })
	})
}
