package projections_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"passerelle/internal/testsupport/eventgen"
	"passerelle/internal/testsupport/redistest"
	"passerelle/projections"
)

// A span holds about RebuildOptions.Span writes however they arise. On a
// log of new offers each document folded brings about two dozen index
// writes at the span's end; counting the documents alone, a span of
// about 34,000 new offers grew to about 816,000 writes at its end.
func TestRebuildSpansCountTheWritesOfNewDocuments(t *testing.T) {
	const span, page = 2000, 50
	units := map[string][]int{} // each unit's writes, by projection
	open := map[string]int{}
	rebuildOffers(t, span, page, func(cmds [][]any) {
		for _, c := range cmds {
			key := c[1].(string) // rm:NAME:GEN:…
			name := strings.Split(key, ":")[1]
			if strings.HasSuffix(key, ":checkpoint") {
				units[name] = append(units[name], open[name])
				open[name] = 0
				continue
			}
			open[name] += writesOf(c)
		}
	})
	offers := units[projections.OffersName]
	total := 0
	for _, n := range offers {
		total += n
	}
	if total < 20*3000 || len(offers) < total/(2*span) {
		t.Fatalf("offers: %d writes in %d spans, want about two dozen an offer in spans of about %d", total, len(offers), span)
	}
	// a span ends after the page that filled it: a page of offers adds
	// about 1,500 writes
	for name, ns := range units {
		for i, n := range ns {
			if n > 2*span {
				t.Errorf("%s: span %d of %d holds %d writes, want at most %d", name, i+1, len(ns), n, 2*span)
			}
		}
	}
}

// writesOf counts the members, fields, points or documents a command
// writes.
func writesOf(c []any) int {
	switch c[0] {
	case "SADD", "SREM", "ZREM", "HDEL":
		return len(c) - 2
	case "ZADD", "HSET":
		return (len(c) - 2) / 2
	case "GEOADD":
		return (len(c) - 2) / 3
	}
	return 1
}

// The entries a counting document keeps for its next change count in its
// span too: an offer's statistics keep about twenty counters until the
// span is written, and counting their documents alone, one span of the
// statistics held every offer of a log of offers (a quarter of the live heap
// at the embedded default's start).
func TestRebuildSpansCountTheEntriesOfCountingDocuments(t *testing.T) {
	const span, page = 2000, 50
	var (
		docs []int // the documents each span of the statistics wrote
		open int
	)
	rebuildOffers(t, span, page, func(cmds [][]any) {
		for _, c := range cmds {
			key := c[1].(string) // rm:NAME:GEN:…
			if strings.Split(key, ":")[1] != projections.StatsName {
				continue
			}
			switch {
			case strings.HasSuffix(key, ":checkpoint"):
				docs, open = append(docs, open), 0
			case c[0] == "SET":
				open++
			}
		}
	})
	total, most := 0, 0
	for _, n := range docs {
		total, most = total+n, max(most, n)
	}
	// about 2,300 offers have their document; a span ends after the
	// page that filled it, and an offer keeps more than ten counters
	if total < 2000 || most > span/10+page {
		t.Fatalf("statistics: %d documents in %d spans, the largest %d: want spans of at most %d", total, len(docs), most, span/10+page)
	}
}

// rebuildOffers rebuilds every projection from a log of 3,000 events of
// new offers in spans of span writes, page events folded at a time, and
// shows seen the commands of each round trip before they are sent, one
// round trip at a time.
func rebuildOffers(t *testing.T, span, page int, seen func(cmds [][]any)) {
	t.Helper()
	ctx := context.Background()
	rdb := redistest.Mini(t).Client(t)
	store := newMemStore()
	generate(t, store, eventgen.New(eventgen.Options{Seed: 7, Setup: eventgen.Population{Employers: 20, Schools: 2, Pupils: 2, Offers: 10},
		Weights: map[string]int{"post_offer": 1}}), 3000)
	var mu sync.Mutex // each projection's writer calls write
	write := func(ctx context.Context, cmds [][]any) error {
		mu.Lock()
		seen(cmds)
		mu.Unlock()
		pipe := rdb.Pipeline()
		for _, c := range cmds {
			pipe.Do(ctx, c...)
		}
		_, err := pipe.Exec(ctx)
		return err
	}
	if _, err := projections.RebuildAll(ctx, store, rdb, projections.All(),
		projections.RebuildOptions{Span: span, Batch: page, Write: write}); err != nil {
		t.Fatal(err)
	}
}
