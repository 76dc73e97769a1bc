package embedded

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"passerelle/eventstore"
)

// TestKeyFilterHoldsWhatItWasGiven: every key added is held, through the
// levels added as it grows, and few keys never added look held.
func TestKeyFilterHoldsWhatItWasGiven(t *testing.T) {
	f := newKeyFilter(0)
	mayHold := func(id uuid.UUID) bool { return f.mayHold(f.hash(id[:])) }
	given := make([]uuid.UUID, 600_000)
	for i := range given {
		given[i] = uuid.New()
		f.add(f.hash(given[i][:]))
	}
	if !mayHold(uuid.New()) {
		t.Fatal("before its scan ends, the filter must send every lookup to the bucket")
	}
	f.ready.Store(true)
	if n := len(*f.levels.Load()); n < 3 {
		t.Fatalf("%d levels for %d IDs from a first level of %d: it did not grow", n, len(given), minFilterKeys)
	}
	if f.hashString(given[0].String()) != f.hash([]byte(given[0].String())) {
		t.Fatal("a key hashes differently as a string and as bytes")
	}
	for i, id := range given {
		if !mayHold(id) {
			t.Fatalf("ID %d of %d, %s, was added but is not held", i, len(given), id)
		}
	}
	const absent = 100_000
	held := 0
	for range absent {
		if mayHold(uuid.New()) {
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
	s = reopenScanned(t, s, dir, func(s *Store) *keyFilter { return s.ids })
	for _, m := range all {
		if !s.ids.mayHold(s.ids.hash(m.evs[0].ID[:])) {
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
	f := newKeyFilter(0)
	s.scan(f, bucketIDs, 7)
	if !f.ready.Load() {
		t.Fatal("the scan in chunks of 7 did not end")
	}
	for _, m := range all {
		for _, e := range m.evs {
			if !f.mayHold(f.hash(e.ID[:])) {
				t.Fatalf("%s: ID %s missed by the scan in chunks of 7", m.stream, e.ID)
			}
		}
	}
}

// TestStreamsStoredBeforeOpenStillRead: once the scan of the stored
// streams ended, a stream absent from the store is read as not found
// without a transaction, and none that exists is taken for absent:
// stored before the store opened, created since and merged into the
// bucket, or created since and not merged yet. Appends find them too.
func TestStreamsStoredBeforeOpenStillRead(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	var before []string
	for i := range 300 {
		before = append(before, fmt.Sprintf("before-%d", i))
		mustAppend(t, s, before[i], eventstore.NoStream, events("Made", 1+i%2)...)
	}
	s = reopenScanned(t, s, dir, func(s *Store) *keyFilter { return s.names })
	mustAppend(t, s, "merged", eventstore.NoStream, events("Made", 1)...)
	flushT(t, s)
	mustAppend(t, s, "recent", eventstore.NoStream, events("Made", 2)...)

	txs := s.db.Stats().TxN
	for i := range 1000 {
		if _, err := s.ReadStream(t.Context(), fmt.Sprintf("never-%d", i), eventstore.Forwards, 0, 0); !errors.Is(err, eventstore.ErrStreamNotFound) {
			t.Fatalf("absent stream: %v, want ErrStreamNotFound", err)
		}
	}
	// a few absent names look present and are read in a transaction
	if n := s.db.Stats().TxN - txs; n > 20 {
		t.Fatalf("%d reads of 1,000 absent streams opened a transaction", n)
	}

	for i, name := range append(before, "merged", "recent") {
		evs, err := s.ReadStream(t.Context(), name, eventstore.Forwards, 0, 0)
		if err != nil || len(evs) == 0 {
			t.Fatalf("%s: read %d events, %v: a stored stream was taken for absent", name, len(evs), err)
		}
		if i < len(before) {
			// the committer finds its revision too
			mustAppend(t, s, name, eventstore.Exact(uint64(len(evs)-1)), events("More", 1)...)
		}
	}
	if _, err := s.Append(t.Context(), before[0], eventstore.NoStream, events("Again", 1)...); !errors.As(err, new(*eventstore.WrongExpectedVersionError)) {
		t.Fatalf("creating a stream stored before the store opened: %v, want WrongExpectedVersionError", err)
	}

	// a scan in chunks that end anywhere reads every name
	f := newKeyFilter(0)
	s.scan(f, bucketStreams, 7)
	if !f.ready.Load() {
		t.Fatal("the scan in chunks of 7 did not end")
	}
	for _, name := range append(before, "merged") {
		if !f.mayHold(f.hashString(name)) {
			t.Fatalf("%s missed by the scan in chunks of 7", name)
		}
	}
}

// TestNilKeyFilterMayHoldAnything: the buckets' view outside the committer
// has no filters, and every key must then be looked up.
func TestNilKeyFilterMayHoldAnything(t *testing.T) {
	var f *keyFilter
	if !f.mayHold(f.hash([]byte("x"))) || !f.mayHold(f.hashString("x")) {
		t.Fatal("a nil filter must send every lookup to the bucket")
	}
}

// reopenScanned flushes s into its buckets, which the scans read, closes
// it, opens it again, and waits for the scan that fills the filter picked.
func reopenScanned(t *testing.T, s *Store, dir string, filter func(*Store) *keyFilter) *Store {
	t.Helper()
	flushT(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir)
	t.Cleanup(func() { _ = s.Close() })
	for deadline := time.Now().Add(10 * time.Second); !filter(s).ready.Load(); {
		if time.Now().After(deadline) {
			t.Fatal("the scan of the stored keys did not end")
		}
		time.Sleep(time.Millisecond)
	}
	return s
}
