package bench

import (
	"math"
	"runtime"
	"testing"
	"time"

	"passerelle/eventstore/embedded"
)

// syncCounts stands in for the embedded store's counts of its log syncs,
// which a test cannot make slow.
type syncCounts []uint64

func (c syncCounts) LogSyncs() ([]uint64, time.Duration) { return append([]uint64(nil), c...), 0 }

// What ran beside a loop: the collections since the first reading, and
// the log syncs since then over 10 and over 100 ms, by the buckets
// embedded.Store.LogSyncs counts them in (the last: longer than every
// bound), not those within them.
func TestBesideCountsCollectionsAndSlowSyncs(t *testing.T) {
	counts := make(syncCounts, len(embedded.SyncBuckets)+1)
	for i := range counts {
		counts[i] = 1000 // before: not counted
	}
	tg := &target{syncs: counts}
	before := tg.beside()
	runtime.GC()
	runtime.GC()
	for i := range counts {
		counts[i] += uint64(1) << i // a different count in each bucket
	}
	during := tg.beside().since(before)
	if during.gcCycles < 2 {
		t.Errorf("%d collections counted, want at least the 2 forced", during.gcCycles)
	}
	for _, c := range []struct {
		bound float64
		want  uint64
	}{
		// SyncBuckets 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1:
		// over 10 ms, buckets 5 to 10; over 100 ms, 8 to 10
		{0.01, 1<<5 + 1<<6 + 1<<7 + 1<<8 + 1<<9 + 1<<10},
		{0.1, 1<<8 + 1<<9 + 1<<10},
	} {
		if got := during.syncsOver(c.bound); got != c.want {
			t.Errorf("over %g s: %d syncs counted, want %d", c.bound, got, c.want)
		}
	}
	if (&target{}).beside().syncs != nil {
		t.Error("log syncs counted without a store that counts them")
	}
	if len(during.bounds) < 2 || len(during.waits) != len(during.bounds)-1 {
		t.Errorf("the runtime's waits for a processor not read: %d counts, %d bounds", len(during.waits), len(during.bounds))
	}
}

// The waits for a processor longer than a bound are those of the buckets
// that start at or above it, counted since the first reading.
func TestBesideCountsLongWaitsForAProcessor(t *testing.T) {
	bounds := []float64{0, 0.0001, 0.001, 0.01, 0.1, math.Inf(1)}
	before := beside{waits: []uint64{5, 5, 5, 5, 5}, bounds: bounds}
	after := beside{waits: []uint64{105, 25, 9, 7, 6}, bounds: bounds}
	during := after.since(before)
	for _, c := range []struct {
		bound float64
		want  uint64
	}{{0.001, 4 + 2 + 1}, {0.01, 2 + 1}, {0.1, 1}, {1, 0}} {
		if got := during.waitsOver(c.bound); got != c.want {
			t.Errorf("over %g s: %d waits, want %d", c.bound, got, c.want)
		}
	}
}
