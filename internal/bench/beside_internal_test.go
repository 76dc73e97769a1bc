package bench

import (
	"runtime"
	"testing"
	"time"

	"passerelle/eventstore/embedded"
)

// syncCounts stands in for the embedded store's counts of its log syncs,
// which a test cannot make slow.
type syncCounts []uint64

func (c syncCounts) LogSyncs() ([]uint64, time.Duration) { return c, 0 }

// What ran beside a loop: the collections since the first reading, and
// the log syncs over 10 ms (the buckets above 0.01 s, and the last one,
// longer than every bound), not those of 10 ms or less.
func TestBesideCountsCollectionsAndSlowSyncs(t *testing.T) {
	counts := make(syncCounts, len(embedded.SyncBuckets)+1)
	tg := &target{syncs: counts}
	before := tg.beside()
	runtime.GC()
	runtime.GC()
	for i := range counts {
		counts[i] = uint64(i + 1) // a different count in each bucket
	}
	during := tg.beside().since(before)
	if during.gcCycles < 2 {
		t.Errorf("%d collections counted, want at least the 2 forced", during.gcCycles)
	}
	// bucket i holds the syncs longer than the bound before it
	var want uint64
	for i := 1; i < len(counts); i++ {
		if embedded.SyncBuckets[i-1] >= 0.01 {
			want += counts[i]
		}
	}
	if during.slowSyncs != want || want == 0 {
		t.Errorf("%d slow syncs counted, want %d", during.slowSyncs, want)
	}
}
