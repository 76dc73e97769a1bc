package projections_test

import (
	"context"
	"testing"

	"passerelle/internal/testsupport/eventgen"
	"passerelle/projections"
)

// BenchmarkFold measures the rebuild's folding of every projection alone,
// without Redis: the part of a rebuild that runs in this process.
func BenchmarkFold(b *testing.B) {
	ctx := context.Background()
	store := newMemStore()
	if err := eventgen.New(eventgen.Options{Seed: 1}).Run(ctx, store, 50_000, 1); err != nil {
		b.Fatal(err)
	}
	n, _ := store.Head(ctx)
	b.ResetTimer()
	for b.Loop() {
		if _, err := projections.FoldAll(ctx, store, projections.All()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(int(n)*b.N)/b.Elapsed().Seconds(), "events/s")
}
