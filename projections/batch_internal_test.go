package projections

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"passerelle/domain"
)

// tagDoc is a test document: a set member per tag, its reason's words;
// listed counts the calls to Entries.
type tagDoc struct {
	Tags []string `json:"tags"`
}

var listed int

func (d *tagDoc) Entries(out []Entry) []Entry {
	listed++
	for _, t := range d.Tags {
		out = append(out, member("tag:"+t, "doc"))
	}
	return out
}

// tallyDoc counts its tags: a counting document.
type tallyDoc struct{ tagDoc }

func (*tallyDoc) counts() {}

func (d *tallyDoc) Entries(out []Entry) []Entry {
	for _, t := range d.Tags {
		out = append(out, counter("tally", t, 1))
	}
	return out
}

// tagProjector folds each OfferWithdrawn into the document its stream
// names: its reason's words are the tags ("-": deleted).
type tagProjector struct{ tally bool }

func (tagProjector) Name() string                  { return "tags" }
func (tagProjector) Layout() int                   { return 1 }
func (tagProjector) Folds(category, _ string) bool { return category == "offer" }
func (p tagProjector) Touches(ev Event, _ Docs) []Ref {
	if p.tally {
		return []Ref{ref[tallyDoc](ev.Stream)}
	}
	return []Ref{ref[tagDoc](ev.Stream)}
}
func (p tagProjector) Apply(ev Event, docs Docs) {
	reason := ev.Data.(*domain.OfferWithdrawn).Reason
	switch {
	case reason == "-":
		docs[ev.Stream] = nil
	case p.tally:
		create[tallyDoc](docs, ev.Stream).Tags = strings.Fields(reason)
	default:
		create[tagDoc](docs, ev.Stream).Tags = strings.Fields(reason)
	}
}

// fold projects events through p in batches of size, each batch
// finished and its writes applied to a model of Redis: the documents in
// src, the members, and the counters' fields.
func fold(t *testing.T, p Projector, reasons []string, size int) (model map[string]string, w *batch) {
	t.Helper()
	src, model := &docCache{docs: map[string]cached{}, fresh: true, limit: math.MaxInt}, map[string]string{}
	for at := 0; at < len(reasons); {
		w = newBatch(16, 16)
		n := min(size, len(reasons)-at)
		for i, r := range reasons[at : at+n] {
			ev := Event{Position: 1, Stream: fmt.Sprint("doc-", (at+i)%2), Data: &domain.OfferWithdrawn{Reason: r}}
			if err := project(p, ev, src, w); err != nil {
				t.Fatal(err)
			}
		}
		at += n
		if err := w.finish(src); err != nil {
			t.Fatal(err)
		}
		for i, tg := range w.order {
			v := w.vals[i]
			switch {
			case tg.kind == docKind:
				continue
			case tg.kind == Counter:
				was, _ := strconv.ParseInt(model[tg.key+" "+tg.member], 10, 64) // absent: 0
				model[tg.key+" "+tg.member] = strconv.FormatInt(was+v.entry.N, 10)
			case v.removed:
				delete(model, tg.key+" "+tg.member)
			default:
				model[tg.key+" "+tg.member] = "member"
			}
		}
	}
	for k, c := range src.docs {
		if c.json != "" {
			model[k] = c.json
		}
	}
	return model, w
}

// A batch lists a document's entries once before its first event and once
// at its end, however many of its events touch it, and leaves Redis as
// one event at a time does; a counting document is compared after each
// event, so that a counter a passing state moved keeps its field.
func TestBatchComparesEntriesOncePerDocument(t *testing.T) {
	reasons := []string{"a b", "c d", "b c", "a", "-", "d", "a b c", "x", "b", "y", "b c", "-", "z", "b c"}
	one, _ := fold(t, tagProjector{}, reasons, 1)

	listed = 0
	all, w := fold(t, tagProjector{}, reasons, len(reasons))
	if !maps.Equal(all, one) {
		t.Errorf("one batch left\n%v\none event at a time\n%v", all, one)
	}
	// two documents, each created, deleted and created again, each
	// listed at the end only (one the batch has not touched yet and that
	// exists is listed before its first event too)
	if listed != 2 {
		t.Errorf("entries listed %d times for two documents in one batch of %d events", listed, len(reasons))
	}
	var touched []string
	for i, tg := range w.order {
		if tg.kind != docKind && !w.vals[i].removed {
			touched = append(touched, tg.key)
		}
	}
	slices.Sort(touched)
	if want := []string{"tag:b", "tag:c", "tag:z"}; !slices.Equal(touched, want) {
		t.Errorf("the batch added %v, want the net %v", touched, want)
	}

	oneTally, _ := fold(t, tagProjector{tally: true}, reasons, 1)
	allTally, _ := fold(t, tagProjector{tally: true}, reasons, len(reasons))
	if !maps.Equal(allTally, oneTally) {
		t.Errorf("one batch of a counting document left\n%v\none event at a time\n%v", allTally, oneTally)
	}
	if oneTally["tally x"] != "0" {
		t.Errorf("the counter a passing state moved: %q, want its field at 0", oneTally["tally x"])
	}
}

// TestBatchListsEntriesThatStayAsListed lists documents' entries into
// one batch's chunks, filling several and one listing longer than a chunk,
// and wants each listing as it was: a later listing, or an append to an
// earlier one, writes past it. Reset keeps the chunks, holding nothing.
func TestBatchListsEntriesThatStayAsListed(t *testing.T) {
	w := newBatch(16, 16)
	for round := range 2 {
		var lists [][]Entry
		for i := range 2000 {
			d := &tagDoc{}
			n := i % 7
			if i == 700 {
				n = entryChunk + 10 // longer than any chunk
			}
			for j := range n {
				d.Tags = append(d.Tags, fmt.Sprint(i, "-", j))
			}
			l := w.list(d)
			if len(l) != len(d.Tags) {
				t.Fatalf("document %d: %d entries listed, want %d", i, len(l), len(d.Tags))
			}
			lists = append(lists, l)
			if i%3 == 0 && len(lists) > 1 {
				_ = append(lists[len(lists)-2], member("tag:extra", "doc"))
			}
		}
		for i, l := range lists {
			for j, e := range l {
				if want := member("tag:"+fmt.Sprint(i, "-", j), "doc"); e != want {
					t.Fatalf("round %d, document %d, entry %d: %+v, want %+v", round, i, j, e, want)
				}
			}
		}
		if w.list(nil) != nil {
			t.Fatal("a document absent lists entries")
		}
		chunks := len(w.chunks)
		if chunks < 3 || chunks > 12 {
			t.Fatalf("%d chunks for about 10,000 entries: want a few, each filled", chunks)
		}
		w.reset()
		if len(w.entries) != 0 || w.chunk != 0 {
			t.Fatalf("%d entries in chunk %d after reset", len(w.entries), w.chunk)
		}
		for i, c := range w.chunks {
			for j, e := range c[:cap(c)] {
				if e != (Entry{}) {
					t.Fatalf("chunk %d keeps entry %d after reset: %+v", i, j, e)
				}
			}
		}
		if round == 1 && len(w.chunks) != chunks {
			t.Fatalf("%d chunks for the same listings again, were %d: reset should keep them", len(w.chunks), chunks)
		}
	}
}
