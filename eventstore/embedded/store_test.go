package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"passerelle/eventstore"
	"passerelle/eventstore/conformance"
)

func openT(t testing.TB, dir string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(dir, opts...)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

// TestConformanceAcrossRestart: the engine closed and opened again on the
// same directory, as a process restart does.
func TestConformanceAcrossRestart(t *testing.T) {
	conformance.RunAcrossRestart(t, func(t *testing.T) (eventstore.Store, conformance.Restart) {
		dir := t.TempDir()
		s := openT(t, dir)
		t.Cleanup(func() { _ = s.Close() })
		return s, func(t *testing.T) eventstore.Store {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			again := openT(t, dir)
			t.Cleanup(func() { _ = again.Close() })
			return again
		}
	})
}

func TestConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T) eventstore.Store {
		dir := t.TempDir()
		s := openT(t, dir)
		// Runs after the suite closed the store: what it left on disk
		// must reopen and be consistent.
		t.Cleanup(func() {
			s := openT(t, dir)
			defer s.Close()
			if err := s.Check(); err != nil {
				t.Errorf("check after the test: %v", err)
			}
		})
		return s
	})
}

// flushT merges the recent index entries into bbolt's buckets.
func flushT(t testing.TB, s *Store) {
	t.Helper()
	if err := s.flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

func events(typ string, n int) []eventstore.EventData {
	evs := make([]eventstore.EventData, n)
	for i := range evs {
		evs[i] = eventstore.EventData{ID: uuid.New(), Type: typ, Data: fmt.Appendf(nil, `{"i":%d}`, i), Metadata: []byte(`{"command_id":"c"}`)}
	}
	return evs
}

func mustAppend(t *testing.T, s *Store, stream string, exp eventstore.ExpectedRevision, evs ...eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(t.Context(), stream, exp, evs...)
	if err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
	return res
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	s := openT(t, dir)
	mustAppend(t, s, "order-1", eventstore.NoStream, events("Placed", 2)...)
	r := mustAppend(t, s, "order-2", eventstore.NoStream, events("Placed", 1)...)
	before, err := s.ReadAll(ctx, eventstore.Start, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openT(t, dir)
	defer s.Close()
	after, err := s.ReadAll(ctx, eventstore.Start, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("%d events after reopening, want %d", len(after), len(before))
	}
	for i := range after {
		a, b := after[i], before[i]
		if a.ID != b.ID || a.Stream != b.Stream || a.Revision != b.Revision || a.Position != b.Position ||
			a.Type != b.Type || string(a.Data) != string(b.Data) || string(a.Metadata) != string(b.Metadata) || !a.Created.Equal(b.Created) {
			t.Fatalf("event %d changed across reopen:\n%+v\n%+v", i, a, b)
		}
	}
	if h, _ := s.Head(ctx); h != r.Position {
		t.Fatalf("head %d after reopening, want %d", h, r.Position)
	}
	next := mustAppend(t, s, "order-1", eventstore.Exact(1), events("Shipped", 1)...)
	if next.LastRevision != 2 || next.Position <= r.Position {
		t.Fatalf("append after reopening: %+v, want revision 2 after position %d", next, r.Position)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestIdempotencyAny(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	ctx := t.Context()

	mustAppend(t, s, "cart-1", eventstore.NoStream, events("Opened", 1)...)
	evs := events("Added", 3)
	r := mustAppend(t, s, "cart-1", eventstore.Any, evs...)
	for _, exp := range []eventstore.ExpectedRevision{eventstore.Any, eventstore.StreamExists, eventstore.Exact(0)} {
		if again := mustAppend(t, s, "cart-1", exp, evs...); again != r {
			t.Fatalf("retry expecting %s: %+v, want %+v", exp, again, r)
		}
	}
	// A tail of an earlier append is a retry too when placed right.
	if again := mustAppend(t, s, "cart-1", eventstore.Exact(1), evs[1:]...); again != r {
		t.Fatalf("retry of the tail: %+v, want %+v", again, r)
	}

	cases := []struct {
		name   string
		stream string
		exp    eventstore.ExpectedRevision
		evs    []eventstore.EventData
		want   error
	}{
		{"ID in another stream", "cart-2", eventstore.Any, evs[:1], eventstore.ErrInvalidAppend},
		{"ID in another stream, no-stream", "cart-2", eventstore.NoStream, evs[:1], eventstore.ErrInvalidAppend},
		{"known and new IDs, any", "cart-1", eventstore.Any, append(evs[2:], events("Added", 1)...), eventstore.ErrInvalidAppend},
		{"out of order, any", "cart-1", eventstore.Any, []eventstore.EventData{evs[1], evs[0]}, eventstore.ErrInvalidAppend},
		{"known IDs at the current revision", "cart-1", eventstore.Exact(3), evs[:1], eventstore.ErrInvalidAppend},
		{"known IDs elsewhere, exact", "cart-1", eventstore.Exact(2), evs[:2], eventstore.ErrWrongExpectedVersion},
		{"known and new IDs, exact", "cart-1", eventstore.Exact(0), append(evs[:3:3], events("Added", 1)...), eventstore.ErrWrongExpectedVersion},
	}
	for _, c := range cases {
		if _, err := s.Append(ctx, c.stream, c.exp, c.evs...); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	all, _ := s.ReadAll(ctx, eventstore.Start, 0)
	if len(all) != 4 {
		t.Fatalf("log holds %d events, want 4", len(all))
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}

// Appends that share one transaction must not affect each other: a failed
// condition in one leaves the others committed and correct.
func TestBatchIsolation(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	const n = 32
	errs := make([]error, n)
	results := make([]eventstore.AppendResult, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			exp := eventstore.NoStream
			if i%2 == 1 {
				exp = eventstore.StreamExists // fails: the stream is new
			}
			results[i], errs[i] = s.Append(t.Context(), fmt.Sprintf("batch-%d", i), exp, events("Batched", 2)...)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if i%2 == 1 {
			var we *eventstore.WrongExpectedVersionError
			if !errors.As(err, &we) || we.Actual != -1 {
				t.Fatalf("append %d: %v, want wrong expected version with actual -1", i, err)
			}
			continue
		}
		if err != nil || results[i].LastRevision != 1 {
			t.Fatalf("append %d: %+v, %v", i, results[i], err)
		}
	}
	all, _ := s.ReadAll(t.Context(), eventstore.Start, 0)
	if len(all) != n {
		t.Fatalf("log holds %d events, want %d", len(all), n)
	}
	if c := s.commits.Load(); c >= n {
		t.Fatalf("%d appends took %d transactions: none shared one", n, c)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestSubscriptionBacklog(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	ctx := t.Context()
	const n = 3*subscriptionScan + 7
	var want []uuid.UUID
	for i := 0; i < n; i += 50 {
		evs := events("Bulk", min(50, n-i))
		mustAppend(t, s, "bulk-1", eventstore.Any, evs...)
		for _, e := range evs {
			want = append(want, e.ID)
		}
	}
	sparse := events("Rare", 1)
	mustAppend(t, s, "rare-1", eventstore.NoStream, sparse...)

	sub, err := s.SubscribeAll(ctx, eventstore.Start, eventstore.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for i, id := range want {
		e, err := sub.Recv(ctx)
		if err != nil || e.ID != id || e.Position != eventstore.Position(i+1) {
			t.Fatalf("event %d: %+v, %v; want %s at %d", i, e, err, id, i+1)
		}
	}

	// A filter matching only past the backlog skips it in scans.
	rare, err := s.SubscribeAll(ctx, eventstore.Start, eventstore.Filter{Categories: []string{"rare"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rare.Close()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if e, err := rare.Recv(rctx); err != nil || e.ID != sparse[0].ID {
		t.Fatalf("filtered recv: %+v, %v", e, err)
	}
}

func TestSubscriptionEnds(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := t.Context()
	recvErr := func(sub eventstore.Subscription) chan error {
		ch := make(chan error, 1)
		go func() {
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_, err := sub.Recv(rctx)
			ch <- err
		}()
		return ch
	}
	wantClosed := func(name string, ch chan error) {
		t.Helper()
		select {
		case err := <-ch:
			if !errors.Is(err, eventstore.ErrSubscriptionClosed) {
				t.Fatalf("%s: recv gave %v, want ErrSubscriptionClosed", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: recv still blocked", name)
		}
	}

	subCtx, cancel := context.WithCancel(ctx)
	sub, err := s.SubscribeAll(subCtx, eventstore.Start, eventstore.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	ch := recvErr(sub)
	cancel()
	wantClosed("subscription context canceled", ch)

	sub, err = s.SubscribeAll(ctx, eventstore.Start, eventstore.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	ch = recvErr(sub)
	time.Sleep(20 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wantClosed("store closed", ch)
	if _, err := sub.Recv(ctx); !errors.Is(err, eventstore.ErrSubscriptionClosed) {
		t.Fatalf("recv after store close: %v", err)
	}
}

func TestClosedStore(t *testing.T) {
	s := openT(t, t.TempDir())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	ctx := t.Context()
	if _, err := s.Append(ctx, "x-1", eventstore.Any, events("E", 1)...); !errors.Is(err, ErrClosed) {
		t.Errorf("append: %v", err)
	}
	if _, err := s.ReadStream(ctx, "x-1", eventstore.Forwards, 0, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("read stream: %v", err)
	}
	if _, err := s.ReadAll(ctx, 0, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("read all: %v", err)
	}
	if _, err := s.Head(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("head: %v", err)
	}
	if _, err := s.SubscribeAll(ctx, 0, eventstore.Filter{}); !errors.Is(err, ErrClosed) {
		t.Errorf("subscribe: %v", err)
	}
}

func TestSecondOpenIsLockedOut(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	defer s.Close()
	s2, err := Open(dir, WithLockTimeout(50*time.Millisecond))
	if err == nil {
		s2.Close()
		t.Fatal("a second Open of the same directory succeeded")
	}
	if !errors.Is(err, bolterrors.ErrTimeout) { // what callers test to explain the wait
		t.Fatalf("second open: %v, want a lock timeout", err)
	}
}

func TestCheckDetectsDamage(t *testing.T) {
	damage := []struct {
		name string
		fn   func(tx *bolt.Tx) error
		want string
	}{
		{"missing id", func(tx *bolt.Tx) error {
			k, _ := tx.Bucket(bucketIDs).Cursor().First()
			return tx.Bucket(bucketIDs).Delete(k)
		}, "ids holds 2 entries for 3 log records"},
		{"wrong id", func(tx *bolt.Tx) error {
			k, _ := tx.Bucket(bucketIDs).Cursor().First()
			return tx.Bucket(bucketIDs).Put(k, u64(9))
		}, "want position"},
		{"stray rev", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketRevs).Put(revKey("ghost-1", 0), u64(1))
		}, "revs holds 4 entries for 3 log records"},
		{"stray stream", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketStreams).Put([]byte("ghost-1"), u64(0))
		}, "streams holds 2 entries for 1 streams in the log"},
		{"wrong stream head", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketStreams).Put([]byte("a-1"), u64(7))
		}, "streams: a-1 → 0000000000000007, want revision 2"},
		{"revision gap", func(tx *bolt.Tx) error {
			logB := tx.Bucket(bucketLog)
			r, err := decodeRecord(logB.Get(u64(2)))
			if err != nil {
				return err
			}
			return logB.Put(u64(2), encodeRecord(r.id, string(r.stream), 5, string(r.typ), r.created, r.data, r.metadata))
		}, "position 2: a-1 revision 5, want 1"},
		{"corrupt record", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketLog).Put(u64(1), []byte{recordVersion, 1, 2})
		}, "log position 1: "},
		{"bad log key", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketLog).Put([]byte{1}, []byte{recordVersion})
		}, "log key 01: "},
		{"missing bucket", func(tx *bolt.Tx) error {
			return tx.DeleteBucket(bucketRevs)
		}, "missing bucket"},
	}
	for _, d := range damage {
		t.Run(d.name, func(t *testing.T) {
			s := openT(t, t.TempDir())
			defer s.Close()
			mustAppend(t, s, "a-1", eventstore.NoStream, events("E", 3)...)
			if err := s.Check(); err != nil {
				t.Fatalf("check before damage: %v", err)
			}
			flushT(t, s) // the damage is done to bbolt's buckets
			if err := s.db.Update(d.fn); err != nil {
				t.Fatal(err)
			}
			if err := s.Check(); err == nil || !strings.Contains(err.Error(), d.want) {
				t.Fatalf("check: %v; want a finding saying %q", err, d.want)
			}
		})
	}
}

// A badly damaged store's report stops at maxCheckErrors findings.
func TestCheckReportIsBounded(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	mustAppend(t, s, "a-1", eventstore.NoStream, events("E", 2*maxCheckErrors)...)
	flushT(t, s) // the damage is done to bbolt's buckets
	if err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketIDs); err != nil {
			return err
		}
		_, err := tx.CreateBucket(bucketIDs)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	err := s.Check()
	if err == nil {
		t.Fatal("check found nothing")
	}
	if n := len(strings.Split(err.Error(), "\n")); n != maxCheckErrors {
		t.Fatalf("%d findings, want %d:\n%v", n, maxCheckErrors, err)
	}
}

func TestRecordEncoding(t *testing.T) {
	id := uuid.New()
	b := encodeRecord(id, "s-1", 42, "T", -5, []byte(`{"a":1}`), nil)
	r, err := decodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	e := r.event(9)
	if e.ID != id || e.Stream != "s-1" || e.Revision != 42 || e.Type != "T" || e.Created.UnixNano() != -5 ||
		string(e.Data) != `{"a":1}` || e.Metadata != nil || e.Position != 9 {
		t.Fatalf("round trip: %+v", e)
	}
	for i := range len(b) {
		if _, err := decodeRecord(b[:i]); err == nil {
			t.Fatalf("truncated to %d bytes: no error", i)
		}
	}
	if _, err := decodeRecord(append(b, 0)); err == nil {
		t.Fatal("trailing byte: no error")
	}
}

func TestMaxAppendSizeConfigured(t *testing.T) {
	s := openT(t, t.TempDir(), WithMaxAppendSize(100))
	defer s.Close()
	ctx := t.Context()
	e := eventstore.EventData{ID: uuid.New(), Type: "Sized", Data: []byte(`"` + strings.Repeat("x", 100-2-2*len("Sized")) + `"`)}
	if _, err := s.Append(ctx, "sized-1", eventstore.NoStream, e); err != nil {
		t.Fatalf("append of exactly 100 bytes: %v", err)
	}
	e.ID, e.Data = uuid.New(), append(e.Data, ' ')
	if _, err := s.Append(ctx, "sized-1", eventstore.Any, e); !errors.Is(err, eventstore.ErrAppendTooLarge) {
		t.Fatalf("append of 101 bytes: %v, want ErrAppendTooLarge", err)
	}
}

// gather waits for the group to grow back to the previous group's size,
// and not when the previous group was no larger than what is waiting.
func TestGatherWaitsForThePreviousGroupSize(t *testing.T) {
	s := &Store{maxBatchSize: 8, linger: time.Hour, queue: make(chan *appendReq, 8)}
	req := func() *appendReq { return &appendReq{} }

	got := make(chan int, 1)
	go func() { got <- len(s.gather([]*appendReq{req()}, 3)) }()
	s.queue <- req()
	select {
	case n := <-got:
		t.Fatalf("gather returned a group of %d before the previous size, 3, was reached", n)
	case <-time.After(50 * time.Millisecond):
	}
	s.queue <- req()
	if n := <-got; n != 3 {
		t.Fatalf("group of %d, want 3", n)
	}

	// A lone append after a lone append commits at once, whatever the
	// linger: were it to wait, this would time out.
	if n := len(s.gather([]*appendReq{req()}, 1)); n != 1 {
		t.Fatalf("group of %d, want 1", n)
	}
	// What is waiting joins the group even beyond the previous size.
	s.queue <- req()
	s.queue <- req()
	if n := len(s.gather([]*appendReq{req()}, 1)); n != 3 {
		t.Fatalf("group of %d, want 3", n)
	}
}

// A read past the end of a stream written lately is answered from the
// streams' last revisions, without a transaction, and agrees with one:
// nothing past the end, the new events once an append returned, a stream
// never written still not found, and a closed store still closed.
func TestReadPastTheEndOfARecentStream(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := t.Context()
	mustAppend(t, s, "order-1", eventstore.NoStream, events("Placed", 2)...)
	if last, ok := s.tails.last("order-1"); !ok || last != 1 {
		t.Fatalf("last revision of order-1 remembered as %d, %v; want 1", last, ok)
	}
	for from := uint64(2); from < 4; from++ {
		evs, err := s.ReadStream(ctx, "order-1", eventstore.Forwards, from, 0)
		if err != nil || len(evs) != 0 {
			t.Fatalf("read from %d: %d events, %v", from, len(evs), err)
		}
	}
	mustAppend(t, s, "order-1", eventstore.Exact(1), events("Shipped", 1)...)
	evs, err := s.ReadStream(ctx, "order-1", eventstore.Forwards, 2, 0)
	if err != nil || len(evs) != 1 || evs[0].Revision != 2 || evs[0].Type != "Shipped" {
		t.Fatalf("read from 2 after the next append: %+v, %v", evs, err)
	}
	if _, err := s.ReadStream(ctx, "order-2", eventstore.Forwards, 5, 0); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatalf("a stream never written: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadStream(ctx, "order-1", eventstore.Forwards, 3, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
}

// The streams' last revisions are kept in two generations: a stream
// written again keeps its later revision, and the oldest generation is
// forgotten once the newer one is full.
func TestTailsForgetTheOlderGeneration(t *testing.T) {
	tl := newTails(2)
	tl.record([]streamRev{{"a", 0}, {"b", 0}, {"a", 3}})
	tl.record([]streamRev{{"c", 1}}) // a and b move to the older generation
	tl.record([]streamRev{{"b", 4}})
	tl.record([]streamRev{{"d", 2}}) // a is forgotten
	want := map[string]int64{"a": -1, "b": 4, "c": 1, "d": 2}
	for stream, rev := range want {
		got, ok := tl.last(stream)
		if rev < 0 && ok || rev >= 0 && (!ok || got != uint64(rev)) {
			t.Errorf("%s: %d, %v; want %d", stream, got, ok, rev)
		}
	}
}

// The committer's busy time grows with the groups it commits, and never
// past the time the store has been open: one goroutine.
func TestCommitterBusy(t *testing.T) {
	opened := time.Now()
	s := openT(t, t.TempDir())
	defer s.Close()
	if b := s.CommitterBusy(); b != 0 {
		t.Fatalf("busy %v before any append", b)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 20 {
				if _, err := s.Append(t.Context(), fmt.Sprintf("busy-%d-%d", w, i), eventstore.NoStream, events("Busy", 1)...); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	busy, open := s.CommitterBusy(), time.Since(opened)
	if busy <= 0 || busy > open {
		t.Fatalf("busy %v after 160 appends, open for %v", busy, open)
	}
	// a sync a group: at least one, at most one an append
	counts, total := s.LogSyncs()
	n := uint64(0)
	for _, c := range counts {
		n += c
	}
	if len(counts) != len(SyncBuckets)+1 || n < 1 || n > 160 || total <= 0 || total > busy {
		t.Fatalf("log syncs %v (%d) in %v, the committer busy %v", counts, n, total, busy)
	}
}

// Appends acknowledged before their sync leave the syncs uncounted.
func TestLogSyncsUnsynced(t *testing.T) {
	s, err := Open(t.TempDir(), WithUnsyncedAppends())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustAppend(t, s, "unsynced-1", eventstore.NoStream, events("Placed", 2)...)
	if counts, total := s.LogSyncs(); slices.ContainsFunc(counts, func(c uint64) bool { return c > 0 }) || total != 0 {
		t.Fatalf("log syncs %v in %v without syncing", counts, total)
	}
}

// ViewAll lends the events ReadAll copies, page by page, each slice
// without room to grow into the store's bytes, and returns fn's error.
func TestViewAllLendsWhatReadAllCopies(t *testing.T) {
	s := openT(t, t.TempDir())
	defer func() { _ = s.Close() }()
	ctx := t.Context()
	for i := range 7 {
		mustAppend(t, s, fmt.Sprint("order-", i), eventstore.NoStream, events("Placed", 3)...)
	}
	mustAppend(t, s, "empty-1", eventstore.NoStream, eventstore.EventData{ID: uuid.New(), Type: "Nothing"})
	for _, n := range []int{1, 5, 100} {
		var from eventstore.Position
		for pages := 0; ; pages++ {
			want, err := s.ReadAll(ctx, from, n)
			if err != nil {
				t.Fatal(err)
			}
			var got []eventstore.RecordedEvent
			err = s.ViewAll(ctx, from, n, func(evs []eventstore.RecordedEvent) error {
				for _, e := range evs {
					if cap(e.Data) != len(e.Data) || cap(e.Metadata) != len(e.Metadata) {
						t.Fatalf("at %d: room after the lent bytes (%d, %d)", e.Position, cap(e.Data)-len(e.Data), cap(e.Metadata)-len(e.Metadata))
					}
					e.Data, e.Metadata = bytes.Clone(e.Data), bytes.Clone(e.Metadata)
					got = append(got, e)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("pages of %d, from %d: lent\n%+v\ncopied\n%+v", n, from, got, want)
			}
			if len(want) == 0 {
				if pages < 22/n {
					t.Fatalf("pages of %d: the log ended after %d", n, pages)
				}
				break
			}
			from = want[len(want)-1].Position
		}
	}
	stop := errors.New("stop")
	if err := s.ViewAll(ctx, 0, 10, func([]eventstore.RecordedEvent) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("fn's error: %v", err)
	}
}

// A read teaches the tails the last revision it found: the next read past
// the end of that stream opens no transaction. A read whose transaction
// may have missed a commit recorded since teaches nothing, even once the
// tails have forgotten that commit: the event appended meanwhile is read.
func TestReadsTeachTheTails(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	mustAppend(t, s, "order-1", eventstore.NoStream, events("Placed", 3)...)
	s = reopenScanned(t, s, dir, func(s *Store) *keyFilter { return s.names })
	ctx := t.Context()
	read := func(from uint64) []eventstore.RecordedEvent {
		t.Helper()
		evs, err := s.ReadStream(ctx, "order-1", eventstore.Forwards, from, 0)
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	txs := s.db.Stats().TxN
	if evs := read(3); len(evs) != 0 {
		t.Fatalf("read past the end: %d events", len(evs))
	}
	if n := s.db.Stats().TxN - txs; n != 1 {
		t.Fatalf("a stream not written since the store opened: %d transactions, want 1", n)
	}
	for range 10 {
		read(3)
	}
	if n := s.db.Stats().TxN - txs; n != 1 {
		t.Fatalf("reads past the end after one that found it: %d transactions, want 1", n)
	}

	// a read's lesson comes after a commit of the stream that its
	// transaction missed, and after the tails forgot that commit
	s.tails.mu.Lock()
	s.tails.cur, s.tails.prev, s.tails.max = nil, nil, 1
	s.tails.mu.Unlock()
	t.Cleanup(func() { testHookLearn = nil })
	testHookLearn = func() {
		testHookLearn = nil
		mustAppend(t, s, "order-1", eventstore.Exact(2), events("Shipped", 1)...)
		mustAppend(t, s, "other-1", eventstore.NoStream, events("Placed", 1)...)
		mustAppend(t, s, "other-2", eventstore.NoStream, events("Placed", 1)...)
		if _, ok := s.tails.last("order-1"); ok {
			t.Fatal("the tails still know order-1: the test proves nothing")
		}
	}
	if evs := read(3); len(evs) != 0 {
		t.Fatalf("read past the end: %d events", len(evs))
	}
	if evs := read(3); len(evs) != 1 || evs[0].Type != "Shipped" {
		t.Fatalf("read from 3 after the append the last read missed: %+v", evs)
	}
}
