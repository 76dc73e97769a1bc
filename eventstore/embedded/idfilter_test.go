package embedded

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"passerelle/eventstore"
)

// TestIDFilterHoldsWhatItWasGiven: every ID added is held, through the
// levels added as it grows, and few IDs never added look held.
func TestIDFilterHoldsWhatItWasGiven(t *testing.T) {
	f := newIDFilter(0)
	given := make([]uuid.UUID, 600_000)
	for i := range given {
		given[i] = uuid.New()
		f.add(given[i])
	}
	if !f.mayHold(uuid.New()) {
		t.Fatal("before its scan ends, the filter must send every lookup to the bucket")
	}
	f.ready.Store(true)
	if len(f.levels) < 3 {
		t.Fatalf("%d levels for %d IDs from a first level of %d: it did not grow", len(f.levels), len(given), minFilterIDs)
	}
	for i, id := range given {
		if !f.mayHold(id) {
			t.Fatalf("ID %d of %d, %s, was added but is not held", i, len(given), id)
		}
	}
	const absent = 100_000
	held := 0
	for range absent {
		if f.mayHold(uuid.New()) {
			held++
		}
	}
	if rate := float64(held) / absent; rate > 0.02 {
		t.Fatalf("%.2f %% of IDs never added look held: the filter spares few lookups", 100*rate)
	}
}

// TestIDsStoredBeforeOpenStillDeduplicate: after a restart, once the scan
// of the stored IDs ended, a retry of an append made before it still finds
// its events, and their IDs are still refused elsewhere.
func TestIDsStoredBeforeOpenStillDeduplicate(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	type made struct {
		stream string
		evs    []eventstore.EventData
		res    eventstore.AppendResult
	}
	var all []made
	for i := range 300 {
		m := made{stream: fmt.Sprintf("s-%d", i), evs: events("Made", 1+i%3)}
		m.res = mustAppend(t, s, m.stream, eventstore.NoStream, m.evs...)
		all = append(all, m)
	}
	flushT(t, s) // into the ids bucket, which the scan reads
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openT(t, dir)
	defer s.Close()
	for deadline := time.Now().Add(10 * time.Second); !s.ids.ready.Load(); {
		if time.Now().After(deadline) {
			t.Fatal("the scan of the stored IDs did not end")
		}
		time.Sleep(time.Millisecond)
	}
	for _, m := range all {
		if !s.ids.mayHold(m.evs[0].ID) {
			t.Fatalf("%s: its event's ID, stored before the store opened, is not in the filter", m.stream)
		}
		if got := mustAppend(t, s, m.stream, eventstore.NoStream, m.evs...); got != m.res {
			t.Fatalf("%s: retry after a restart gave %+v, want the original %+v", m.stream, got, m.res)
		}
		if _, err := s.Append(t.Context(), "elsewhere-"+m.stream, eventstore.NoStream, m.evs...); !errors.Is(err, eventstore.ErrInvalidAppend) {
			t.Fatalf("%s: its IDs appended to another stream after a restart: %v, want ErrInvalidAppend", m.stream, err)
		}
	}

	// appended since the store opened, then merged into the bucket: the
	// filter has them from the committer
	since := events("Since", 2)
	res := mustAppend(t, s, "since", eventstore.NoStream, since...)
	flushT(t, s)
	if got := mustAppend(t, s, "since", eventstore.NoStream, since...); got != res {
		t.Fatalf("retry of an append merged since the store opened gave %+v, want the original %+v", got, res)
	}

	// a scan in chunks that end anywhere reads every key
	f := newIDFilter(0)
	s.scanIDs(f, 7)
	if !f.ready.Load() {
		t.Fatal("the scan in chunks of 7 did not end")
	}
	for _, m := range all {
		for _, e := range m.evs {
			if !f.mayHold(e.ID) {
				t.Fatalf("%s: ID %s missed by the scan in chunks of 7", m.stream, e.ID)
			}
		}
	}
}
