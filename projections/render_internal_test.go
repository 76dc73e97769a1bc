package projections

import (
	"fmt"
	"testing"
)

// The members a batch writes to one key go in one command, up to
// maxGroupArgs arguments; documents and counters keep a command each.
func TestRenderGroupsMembersByKey(t *testing.T) {
	w := newBatch(16, 16)
	w.diff(nil, []Entry{member("idx:open", "o1"), member("idx:word:pain", "o1"), point("geo", "o1", 2.35, 48.85), counter("stats", "all", 1)})
	w.diff(nil, []Entry{member("idx:open", "o2"), point("geo", "o2", 2.36, 48.86), counter("stats", "all", 1)})
	w.diff([]Entry{member("idx:word:pain", "o0"), scored("ids", "o0", 0)}, nil)
	w.diff([]Entry{member("idx:word:pain", "o9")}, nil)
	o1 := &OfferDoc{ID: "o1"}
	w.doc("offer:o1", o1, "", o1.Entries(nil), false) // its entries unchanged over the batch
	if err := w.finish(memDocs{}); err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(w.render("p:", nil))
	want := fmt.Sprint([]any{
		4, "HINCRBY", "p:stats", "all", int64(2),
		3, "SET", "p:offer:o1", renderedJSON(w, "offer:o1"),
		4, "SADD", "p:idx:open", "o1", "o2",
		3, "SADD", "p:idx:word:pain", "o1",
		8, "GEOADD", "p:geo", 2.35, 48.85, "o1", 2.36, 48.86, "o2",
		4, "SREM", "p:idx:word:pain", "o0", "o9",
		3, "ZREM", "p:ids", "o0",
	})
	if got != want {
		t.Errorf("rendered\n%s\nwant\n%s", got, want)
	}

	w.reset()
	var many []Entry
	for i := range maxGroupArgs + 10 {
		many = append(many, member("idx:open", fmt.Sprint("o", i)))
	}
	w.diff(nil, many)
	args, members := w.render("", nil), 0
	for len(args) > 0 {
		n := args[0].(int)
		if n > maxGroupArgs || args[1] != "SADD" {
			t.Fatalf("a command of %d arguments: %v…", n, args[1:3])
		}
		members, args = members+n-2, args[1+n:]
	}
	if members != len(many) {
		t.Errorf("%d members written of %d", members, len(many))
	}
}

// A batch renders from scratch it keeps between batches: a batch rendered
// after another one, larger and about other keys, renders as a new one.
func TestRenderReusesScratch(t *testing.T) {
	fill := func(w *batch, n int, key string) {
		var es []Entry
		for i := range n {
			es = append(es, member(key, fmt.Sprint("o", i)), scored(key+":z", fmt.Sprint("o", i), float64(i)))
		}
		w.diff(nil, es)
		w.diff([]Entry{member(key+":old", "x")}, nil)
	}
	reused := newBatch(16, 16)
	fill(reused, 50, "idx:a")
	first := fmt.Sprint(reused.render("p:", nil))
	reused.reset()
	fill(reused, 3, "idx:b")
	got := fmt.Sprint(reused.render("p:", nil))

	fresh := newBatch(16, 16)
	fill(fresh, 3, "idx:b")
	if want := fmt.Sprint(fresh.render("p:", nil)); got != want {
		t.Errorf("rendered after another batch\n%s\nwant\n%s", got, want)
	}
	again := newBatch(16, 16)
	fill(again, 50, "idx:a")
	if want := fmt.Sprint(again.render("p:", nil)); first != want {
		t.Errorf("first batch rendered\n%s\nwant\n%s", first, want)
	}
	if got == first {
		t.Error("two batches about other keys rendered alike")
	}
}

// Once a batch has held as many writes, the entries of the next one cost
// no allocation: its map holds each write in place (a map allocates an
// element of more than 128 bytes on its own at every insert).
func TestBatchEntriesAllocateNothing(t *testing.T) {
	var es []Entry
	for i := range 40 {
		m := fmt.Sprint("o", i)
		es = append(es, member("idx:open", m), scored("ids", m, float64(i)), point("geo", m, 2.35, 48.85), counter("stats", m, 1))
	}
	w := newBatch(16, 16)
	w.diff(nil, es)
	if n := testing.AllocsPerRun(20, func() {
		w.reset()
		w.diff(nil, es)
	}); n != 0 {
		t.Errorf("%.0f allocations for a batch of %d entries", n, len(es))
	}
	if len(w.order) != len(es) {
		t.Errorf("%d writes, want %d", len(w.order), len(es))
	}
}

func renderedJSON(w *batch, key string) string {
	v, _ := w.last(target{kind: docKind, key: key})
	return v.json
}
