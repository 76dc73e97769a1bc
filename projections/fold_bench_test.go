package projections_test

import (
	"context"
	"testing"

	"passerelle/projections"
)

// BenchmarkFold measures the rebuild's folding of every projection alone,
// without Redis: the part of a rebuild that runs in this process.
func BenchmarkFold(b *testing.B) {
	ctx := context.Background()
	store := newMemStore()
	newWorld(store, 1).run(b, 50_000)
	n, _ := store.Head(ctx)
	b.ResetTimer()
	for b.Loop() {
		if _, err := projections.FoldAll(ctx, store, projections.All()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(int(n)*b.N)/b.Elapsed().Seconds(), "events/s")
}
