// Package conformance is the behaviour every eventstore.Store adapter must
// show, written once as tests that any adapter runs from its own test
// file:
//
//	func TestConformance(t *testing.T) {
//		conformance.Run(t, func(t *testing.T) eventstore.Store { return open(t) })
//	}
//
// The suite never assumes the global log is empty or private: every test
// uses its own stream names, categories and event types, reads the global
// log only after the Head it saw first, and filters what it reads, so it
// can run against a shared server that already holds other events.
package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"passerelle/eventstore"
)

const (
	// waitTimeout bounds every single wait for an event or a result.
	waitTimeout = 10 * time.Second
	// testTimeout bounds each test as a whole.
	testTimeout = 60 * time.Second
	// clockSkew is how far Created may be from the test's clock (a remote
	// server has its own).
	clockSkew = time.Minute
)

// Run runs the suite as parallel subtests of t and returns when all have
// finished. newStore gives a ready store for one subtest; it is called
// concurrently. Each subtest closes its store when it ends and one closes
// it earlier, so Close must tolerate a second call (its error is ignored).
func Run(t *testing.T, newStore func(t *testing.T) eventstore.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s eventstore.Store)
	}{
		{"AppendAndReadBack", testAppendAndReadBack},
		{"ExpectedRevision", testExpectedRevision},
		{"InvalidAppend", testInvalidAppend},
		{"MaxAppendSize", testMaxAppendSize},
		{"OptimisticConcurrency", testOptimisticConcurrency},
		{"DenseRevisions", testDenseRevisions},
		{"GlobalOrder", testGlobalOrder},
		{"ConcurrentGlobalOrder", testConcurrentGlobalOrder},
		{"ReadStreamDirections", testReadStreamDirections},
		{"StreamNotFound", testStreamNotFound},
		{"ReadAllFromAndMax", testReadAllFromAndMax},
		{"Head", testHead},
		{"Idempotency", testIdempotency},
		{"IDReusedInAnotherStream", testIDReusedElsewhere},
		{"MultiAppend", testMultiAppend},
		{"SubscribeFromIsExclusive", testSubscribeExclusive},
		{"CatchUpThenLive", testCatchUpThenLive},
		{"FilterByCategory", testFilterByCategory},
		{"FilterByEventType", testFilterByEventType},
		{"FilterByCategoryAndType", testFilterBoth},
		{"EmptyFilterMatchesAll", testEmptyFilter},
		{"ResubscribeNoLossNoDuplicate", testResubscribe},
		{"CloseEndsRecv", testCloseEndsRecv},
		{"ContextEndsRecv", testContextEndsRecv},
		{"StoreCloseEndsSubscriptions", testStoreCloseEndsSubscriptions},
	}
	// The group returns only when its parallel subtests are done, so a
	// caller may release shared resources right after Run.
	t.Run("conformance", func(t *testing.T) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				s := newStore(t)
				t.Cleanup(func() { _ = s.Close() })
				tc.fn(t, s)
			})
		}
	})
}

// ---- helpers ----

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// newCategory returns a category no other test uses (no '-' in it).
func newCategory() string {
	return "conf" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
}

func newStream(category string) string { return category + "-" + uuid.NewString() }

// newType returns an event type no other test uses.
func newType(name string) string {
	return name + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
}

func newEvents(typ string, n int) []eventstore.EventData {
	evs := make([]eventstore.EventData, n)
	for i := range evs {
		id := uuid.New()
		evs[i] = eventstore.EventData{
			ID:   id,
			Type: typ,
			Data: fmt.Appendf(nil, `{"n":%d,"id":%q}`, i, id),
			Metadata: eventstore.Metadata{
				CommandID:     uuid.NewString(),
				CorrelationID: uuid.NewString(),
				Actor:         eventstore.Actor{Role: "tester", Subject: "conformance"},
				OccurredAt:    time.Now().UTC().Truncate(time.Millisecond),
			}.Encode(),
		}
	}
	return evs
}

func mustAppend(t *testing.T, ctx context.Context, s eventstore.Store, stream string, exp eventstore.ExpectedRevision, evs ...eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(ctx, stream, exp, evs...)
	if err != nil {
		t.Fatalf("append %d events to %s (expected %s): %v", len(evs), stream, exp, err)
	}
	return res
}

func mustHead(t *testing.T, ctx context.Context, s eventstore.Store) eventstore.Position {
	t.Helper()
	h, err := s.Head(ctx)
	if err != nil {
		t.Fatalf("head: %v", err)
	}
	return h
}

func mustReadStream(t *testing.T, ctx context.Context, s eventstore.Store, stream string, dir eventstore.Direction, from uint64, max int) []eventstore.RecordedEvent {
	t.Helper()
	evs, err := s.ReadStream(ctx, stream, dir, from, max)
	if err != nil {
		t.Fatalf("read %s dir=%d from=%d max=%d: %v", stream, dir, from, max, err)
	}
	return evs
}

// readAllOf reads the global log after from and keeps the events of the
// given streams.
func readAllOf(t *testing.T, ctx context.Context, s eventstore.Store, from eventstore.Position, streams ...string) []eventstore.RecordedEvent {
	t.Helper()
	all, err := s.ReadAll(ctx, from, 0)
	if err != nil {
		t.Fatalf("read all after %d: %v", from, err)
	}
	keep := make(map[string]bool, len(streams))
	for _, st := range streams {
		keep[st] = true
	}
	var out []eventstore.RecordedEvent
	for _, e := range all {
		if e.Position <= from {
			t.Fatalf("read all after %d returned position %d", from, e.Position)
		}
		if keep[e.Stream] {
			out = append(out, e)
		}
	}
	return out
}

func mustSubscribe(t *testing.T, ctx context.Context, s eventstore.Store, from eventstore.Position, f eventstore.Filter) eventstore.Subscription {
	t.Helper()
	sub, err := s.SubscribeAll(ctx, from, f)
	if err != nil {
		t.Fatalf("subscribe after %d: %v", from, err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

func recv(t *testing.T, ctx context.Context, sub eventstore.Subscription) eventstore.RecordedEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	e, err := sub.Recv(ctx)
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	return e
}

// pluck lists one field of each event.
func pluck[E, F any](evs []E, field func(E) F) []F {
	out := make([]F, len(evs))
	for i, e := range evs {
		out[i] = field(e)
	}
	return out
}

func ids(evs []eventstore.RecordedEvent) []uuid.UUID {
	return pluck(evs, func(e eventstore.RecordedEvent) uuid.UUID { return e.ID })
}

func dataIDs(evs []eventstore.EventData) []uuid.UUID {
	return pluck(evs, func(e eventstore.EventData) uuid.UUID { return e.ID })
}

func sameIDs(t *testing.T, what string, got, want []uuid.UUID) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events %v, want %d %v", what, len(got), got, len(want), want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: event %d is %s, want %s\ngot  %v\nwant %v", what, i, got[i], want[i], got, want)
		}
	}
}

func revisions(evs []eventstore.RecordedEvent) []uint64 {
	return pluck(evs, func(e eventstore.RecordedEvent) uint64 { return e.Revision })
}

func sameRevisions(t *testing.T, what string, got []eventstore.RecordedEvent, want ...uint64) {
	t.Helper()
	if g := revisions(got); !slices.Equal(g, want) {
		t.Fatalf("%s: revisions %v, want %v", what, g, want)
	}
}

// appendSeries appends n times to a new stream, each append expecting the
// revision the previous one returned; size(i) events the i-th time.
func appendSeries(ctx context.Context, s eventstore.Store, stream, typ string, n int, size func(i int) int) ([]eventstore.AppendResult, error) {
	var results []eventstore.AppendResult
	exp := eventstore.NoStream
	for i := range n {
		res, err := s.Append(ctx, stream, exp, newEvents(typ, size(i))...)
		if err != nil {
			return results, err
		}
		results = append(results, res)
		exp = eventstore.Exact(res.LastRevision)
	}
	return results, nil
}

func sameRecorded(t *testing.T, what string, got, want eventstore.RecordedEvent) {
	t.Helper()
	if got.ID != want.ID || got.Stream != want.Stream || got.Revision != want.Revision ||
		got.Position != want.Position || got.Type != want.Type ||
		!bytes.Equal(got.Data, want.Data) || !bytes.Equal(got.Metadata, want.Metadata) ||
		!got.Created.Equal(want.Created) {
		t.Fatalf("%s:\ngot  %+v\nwant %+v", what, got, want)
	}
}

// sameAsAppended checks that e, read back at revision i of stream, is the
// event appended.
func sameAsAppended(t *testing.T, i int, e eventstore.RecordedEvent, want eventstore.EventData, stream string) {
	t.Helper()
	if e.ID != want.ID || e.Stream != stream || e.Revision != uint64(i) || e.Type != want.Type {
		t.Fatalf("event %d: got id=%s stream=%s rev=%d type=%s, want id=%s stream=%s rev=%d type=%s",
			i, e.ID, e.Stream, e.Revision, e.Type, want.ID, stream, i, want.Type)
	}
	if !bytes.Equal(e.Data, want.Data) {
		t.Fatalf("event %d data %q, want %q", i, e.Data, want.Data)
	}
	if !bytes.Equal(e.Metadata, want.Metadata) {
		t.Fatalf("event %d metadata %q, want %q", i, e.Metadata, want.Metadata)
	}
	if e.Category() != eventstore.Category(stream) {
		t.Fatalf("event %d category %q", i, e.Category())
	}
}

func wantWrongVersion(t *testing.T, err error, stream string, exp eventstore.ExpectedRevision, actual int64) {
	t.Helper()
	if !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		t.Fatalf("append to %s expecting %s: got %v, want ErrWrongExpectedVersion", stream, exp, err)
	}
	var we *eventstore.WrongExpectedVersionError
	if !errors.As(err, &we) {
		t.Fatalf("append to %s expecting %s: %v is not a *WrongExpectedVersionError", stream, exp, err)
	}
	if we.Stream != stream || we.Expected != exp || we.Actual != actual {
		t.Fatalf("wrong expected version error %+v, want stream %s, expected %s, actual %d", we, stream, exp, actual)
	}
}

// ---- appending and reading ----

func testAppendAndReadBack(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	stream := newStream(newCategory())
	typ := newType("ThingHappened")
	evs := newEvents(typ, 3)
	evs[2].Metadata = nil
	evs[2].Data = []byte(`{}`)
	headBefore := mustHead(t, ctx, s)

	before := time.Now()
	res := mustAppend(t, ctx, s, stream, eventstore.NoStream, evs...)
	after := time.Now()
	if res.LastRevision != 2 {
		t.Fatalf("last revision %d, want 2", res.LastRevision)
	}
	if res.Position <= headBefore {
		t.Fatalf("position %d not after the head %d seen before appending", res.Position, headBefore)
	}

	got := mustReadStream(t, ctx, s, stream, eventstore.Forwards, 0, 0)
	if len(got) != len(evs) {
		t.Fatalf("read %d events, want %d", len(got), len(evs))
	}
	prev := headBefore
	for i, e := range got {
		sameAsAppended(t, i, e, evs[i], stream)
		if e.Position <= prev {
			t.Fatalf("event %d position %d not after %d", i, e.Position, prev)
		}
		prev = e.Position
		if e.Created.Location() != time.UTC {
			t.Fatalf("event %d created %v is not in UTC", i, e.Created)
		}
		if e.Created.Before(before.Add(-clockSkew)) || e.Created.After(after.Add(clockSkew)) {
			t.Fatalf("event %d created %v, want between %v and %v", i, e.Created, before, after)
		}
	}
	if got[2].Position != res.Position {
		t.Fatalf("append result position %d, last event read at %d", res.Position, got[2].Position)
	}
	m, err := eventstore.DecodeMetadata(got[0].Metadata)
	if err != nil {
		t.Fatalf("decode metadata: %v", err)
	}
	want, _ := eventstore.DecodeMetadata(evs[0].Metadata)
	if m != want {
		t.Fatalf("metadata %+v, want %+v", m, want)
	}

	all := readAllOf(t, ctx, s, headBefore, stream)
	if len(all) != len(got) {
		t.Fatalf("read all gave %d events of the stream, want %d", len(all), len(got))
	}
	for i := range all {
		sameRecorded(t, fmt.Sprintf("read all event %d", i), all[i], got[i])
	}
}

func testExpectedRevision(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	stream := newStream(newCategory())
	typ := newType("Stepped")
	one := func() eventstore.EventData { return newEvents(typ, 1)[0] }

	fail := func(exp eventstore.ExpectedRevision, actual int64) {
		t.Helper()
		_, err := s.Append(ctx, stream, exp, one())
		wantWrongVersion(t, err, stream, exp, actual)
	}
	ok := func(exp eventstore.ExpectedRevision, rev uint64) {
		t.Helper()
		if res := mustAppend(t, ctx, s, stream, exp, one()); res.LastRevision != rev {
			t.Fatalf("append expecting %s: last revision %d, want %d", exp, res.LastRevision, rev)
		}
	}

	fail(eventstore.StreamExists, -1)
	fail(eventstore.Exact(0), -1)
	ok(eventstore.NoStream, 0)
	fail(eventstore.NoStream, 0)
	ok(eventstore.Any, 1)
	ok(eventstore.StreamExists, 2)
	ok(eventstore.Exact(2), 3)
	fail(eventstore.Exact(2), 3)
	fail(eventstore.Exact(1), 3)
	fail(eventstore.Exact(10), 3)
	ok(eventstore.Exact(3), 4)

	// A failed append writes nothing.
	sameRevisions(t, "stream after failed appends", mustReadStream(t, ctx, s, stream, eventstore.Forwards, 0, 0), 0, 1, 2, 3, 4)

	// Any on a missing stream creates it.
	other := newStream(newCategory())
	if res := mustAppend(t, ctx, s, other, eventstore.Any, one()); res.LastRevision != 0 {
		t.Fatalf("any on a new stream: revision %d, want 0", res.LastRevision)
	}
}

func testInvalidAppend(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	stream := newStream(newCategory())
	typ := newType("Invalid")
	dup := newEvents(typ, 2)
	dup[1].ID = dup[0].ID
	untyped := newEvents(typ, 1)
	untyped[0].Type = ""
	cases := []struct {
		name   string
		stream string
		events []eventstore.EventData
	}{
		{"no event", stream, nil},
		{"empty stream", "", newEvents(typ, 1)},
		{"empty type", stream, untyped},
		{"duplicate ID", stream, dup},
	}
	for _, c := range cases {
		_, err := s.Append(ctx, c.stream, eventstore.Any, c.events...)
		if !errors.Is(err, eventstore.ErrInvalidAppend) {
			t.Errorf("%s: got %v, want ErrInvalidAppend", c.name, err)
		}
	}
	if _, err := s.ReadStream(ctx, stream, eventstore.Forwards, 0, 0); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatalf("invalid appends wrote something: read gives %v", err)
	}
}

// sized gives events of type typ whose data (a JSON string) and metadata
// bring the append's size (eventstore.AppendSize) to exactly size.
func sized(typ string, n, size int) []eventstore.EventData {
	evs := newEvents(typ, n)
	for i := range evs {
		evs[i].Data = nil
		want := size / n
		if i == 0 {
			want += size % n
		}
		pad := want - eventstore.AppendSize(evs[i:i+1]) - 2
		evs[i].Data = []byte(`"` + strings.Repeat("x", pad) + `"`)
	}
	return evs
}

// testMaxAppendSize: every store takes appends up to
// eventstore.DefaultMaxAppendSize (EventStoreDB's default) and refuses
// larger ones with ErrAppendTooLarge, writing nothing.
func testMaxAppendSize(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	typ := newType("Sized")
	fits := sized(typ, 1, eventstore.DefaultMaxAppendSize)
	stream := newStream(newCategory())
	res := mustAppend(t, ctx, s, stream, eventstore.NoStream, fits...)
	got := mustReadStream(t, ctx, s, stream, eventstore.Forwards, 0, 0)
	if len(got) != 1 || !bytes.Equal(got[0].Data, fits[0].Data) || got[0].Position != res.Position {
		t.Fatalf("the append of exactly the maximum size did not read back")
	}

	for _, n := range []int{1, 3} {
		over := sized(typ, n, eventstore.DefaultMaxAppendSize+1)
		if size := eventstore.AppendSize(over); size != eventstore.DefaultMaxAppendSize+1 {
			t.Fatalf("test events of %d bytes", size)
		}
		_, err := s.Append(ctx, stream, eventstore.Exact(0), over...)
		if !errors.Is(err, eventstore.ErrAppendTooLarge) {
			t.Fatalf("append of %d events one byte over the maximum: %v, want ErrAppendTooLarge", n, err)
		}
	}
	if got := mustReadStream(t, ctx, s, stream, eventstore.Forwards, 0, 0); len(got) != 1 {
		t.Fatalf("refused appends wrote %d events", len(got)-1)
	}
	if after := readAllOf(t, ctx, s, res.Position, stream); len(after) != 0 {
		t.Fatalf("refused appends are in the global log: %d events", len(after))
	}
}

func testOptimisticConcurrency(t *testing.T, s eventstore.Store) {
	const n = 16
	ctx := testContext(t)
	typ := newType("Raced")

	race := func(t *testing.T, stream string, exp eventstore.ExpectedRevision, actual int64) {
		t.Helper()
		start := make(chan struct{})
		errs := make([]error, n)
		results := make([]eventstore.AppendResult, n)
		batches := make([][]eventstore.EventData, n)
		var wg sync.WaitGroup
		for i := range n {
			batches[i] = newEvents(typ, 2)
			wg.Go(func() {
				<-start
				results[i], errs[i] = s.Append(ctx, stream, exp, batches[i]...)
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			if err == nil {
				if winner >= 0 {
					t.Fatalf("expecting %s: appends %d and %d both succeeded", exp, winner, i)
				}
				winner = i
				continue
			}
			wantWrongVersion(t, err, stream, exp, actual)
		}
		if winner < 0 {
			t.Fatalf("expecting %s: no append succeeded", exp)
		}
		if want := uint64(actual); results[winner].LastRevision != want {
			t.Fatalf("winner's last revision %d, want %d", results[winner].LastRevision, want)
		}
		got := mustReadStream(t, ctx, s, stream, eventstore.Forwards, 0, 0)
		sameIDs(t, "winner's events", ids(got[len(got)-2:]), dataIDs(batches[winner]))
	}

	t.Run("NoStream", func(t *testing.T) {
		race(t, newStream(newCategory()), eventstore.NoStream, 1)
	})
	t.Run("Exact", func(t *testing.T) {
		stream := newStream(newCategory())
		mustAppend(t, ctx, s, stream, eventstore.NoStream, newEvents(typ, 1)...)
		race(t, stream, eventstore.Exact(0), 2)
	})
}

func testDenseRevisions(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	stream := newStream(newCategory())
	typ := newType("Counted")
	var want []uuid.UUID
	steps := []struct {
		exp  eventstore.ExpectedRevision
		n    int
		last uint64
	}{
		{eventstore.NoStream, 1, 0},
		{eventstore.Exact(0), 3, 3},
		{eventstore.Any, 2, 5},
		{eventstore.StreamExists, 5, 10},
		{eventstore.Exact(10), 1, 11},
	}
	for _, st := range steps {
		evs := newEvents(typ, st.n)
		want = append(want, dataIDs(evs)...)
		if res := mustAppend(t, ctx, s, stream, st.exp, evs...); res.LastRevision != st.last {
			t.Fatalf("append %d expecting %s: last revision %d, want %d", st.n, st.exp, res.LastRevision, st.last)
		}
	}
	got := mustReadStream(t, ctx, s, stream, eventstore.Forwards, 0, 0)
	sameIDs(t, "stream", ids(got), want)
	for i, e := range got {
		if e.Revision != uint64(i) {
			t.Fatalf("event %d has revision %d", i, e.Revision)
		}
	}
}

func testGlobalOrder(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	cat := newCategory()
	streams := []string{newStream(cat), newStream(cat), newStream(cat)}
	typ := newType("Ordered")
	headBefore := mustHead(t, ctx, s)

	var want []uuid.UUID
	last := headBefore
	revs := map[string]int64{}
	for i := range 12 {
		stream := streams[i%len(streams)]
		evs := newEvents(typ, 1+i%2)
		exp := eventstore.NoStream
		if r, ok := revs[stream]; ok {
			exp = eventstore.Exact(uint64(r))
		}
		res := mustAppend(t, ctx, s, stream, exp, evs...)
		if res.Position <= last {
			t.Fatalf("append %d landed at %d, not after the previous append's %d", i, res.Position, last)
		}
		last = res.Position
		revs[stream] = int64(res.LastRevision)
		want = append(want, dataIDs(evs)...)
	}

	all := readAllOf(t, ctx, s, headBefore, streams...)
	sameIDs(t, "global log", ids(all), want)
	for i := 1; i < len(all); i++ {
		if all[i].Position <= all[i-1].Position {
			t.Fatalf("global log positions not increasing: %d then %d", all[i-1].Position, all[i].Position)
		}
	}
	byID := map[uuid.UUID]eventstore.RecordedEvent{}
	for _, e := range all {
		byID[e.ID] = e
	}
	for _, stream := range streams {
		for _, e := range mustReadStream(t, ctx, s, stream, eventstore.Forwards, 0, 0) {
			sameRecorded(t, "stream event against global log", e, byID[e.ID])
		}
	}
}

func testConcurrentGlobalOrder(t *testing.T, s eventstore.Store) {
	const writers, appends = 8, 10
	ctx := testContext(t)
	cat := newCategory()
	typ := newType("Concurrent")
	headBefore := mustHead(t, ctx, s)

	streams := make([]string, writers)
	results := make([][]eventstore.AppendResult, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		streams[w] = newStream(cat)
		wg.Go(func() {
			results[w], errs[w] = appendSeries(ctx, s, streams[w], typ, appends, func(int) int { return 1 })
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}

	all := readAllOf(t, ctx, s, headBefore, streams...)
	if len(all) != writers*appends {
		t.Fatalf("global log holds %d of our events, want %d", len(all), writers*appends)
	}
	type at struct {
		stream string
		rev    uint64
	}
	byPos := map[eventstore.Position]at{}
	for i, e := range all {
		if i > 0 && e.Position <= all[i-1].Position {
			t.Fatalf("global log positions not increasing: %d then %d", all[i-1].Position, e.Position)
		}
		byPos[e.Position] = at{e.Stream, e.Revision}
	}
	for w, rs := range results {
		for i, r := range rs {
			if got, ok := byPos[r.Position]; !ok || got != (at{streams[w], uint64(i)}) || r.LastRevision != uint64(i) {
				t.Fatalf("writer %d append %d acknowledged at %+v, global log has %+v there", w, i, r, got)
			}
		}
	}
}

func testReadStreamDirections(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	stream := newStream(newCategory())
	mustAppend(t, ctx, s, stream, eventstore.NoStream, newEvents(newType("Read"), 5)...)
	cases := []struct {
		name string
		dir  eventstore.Direction
		from uint64
		max  int
		want []uint64
	}{
		{"forwards all", eventstore.Forwards, 0, 0, []uint64{0, 1, 2, 3, 4}},
		{"forwards from 2, max 2", eventstore.Forwards, 2, 2, []uint64{2, 3}},
		{"forwards from 3, max 10", eventstore.Forwards, 3, 10, []uint64{3, 4}},
		{"forwards from End", eventstore.Forwards, eventstore.End, 0, []uint64{4}},
		{"forwards past the end", eventstore.Forwards, 5, 0, nil},
		{"backwards from End", eventstore.Backwards, eventstore.End, 0, []uint64{4, 3, 2, 1, 0}},
		{"backwards from End, max 2", eventstore.Backwards, eventstore.End, 2, []uint64{4, 3}},
		{"backwards from 2", eventstore.Backwards, 2, 0, []uint64{2, 1, 0}},
		{"backwards from 0", eventstore.Backwards, 0, 0, []uint64{0}},
		{"backwards from past the end", eventstore.Backwards, 10, 0, []uint64{4, 3, 2, 1, 0}},
	}
	for _, c := range cases {
		sameRevisions(t, c.name, mustReadStream(t, ctx, s, stream, c.dir, c.from, c.max), c.want...)
	}
}

func testStreamNotFound(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	stream := newStream(newCategory())
	for _, dir := range []eventstore.Direction{eventstore.Forwards, eventstore.Backwards} {
		for _, from := range []uint64{0, eventstore.End} {
			evs, err := s.ReadStream(ctx, stream, dir, from, 0)
			if !errors.Is(err, eventstore.ErrStreamNotFound) {
				t.Fatalf("read missing stream dir=%d from=%d: %d events, err %v; want ErrStreamNotFound", dir, from, len(evs), err)
			}
		}
	}
}

func testReadAllFromAndMax(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	stream := newStream(newCategory())
	headBefore := mustHead(t, ctx, s)
	evs := newEvents(newType("Paged"), 5)
	mustAppend(t, ctx, s, stream, eventstore.NoStream, evs...)
	ours := mustReadStream(t, ctx, s, stream, eventstore.Forwards, 0, 0)

	page, err := s.ReadAll(ctx, headBefore, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 2 {
		t.Fatalf("read all max 2 gave %d events", len(page))
	}
	if page[0].Position <= headBefore || page[1].Position <= page[0].Position {
		t.Fatalf("read all after %d gave positions %d, %d", headBefore, page[0].Position, page[1].Position)
	}

	// From is exclusive.
	after := readAllOf(t, ctx, s, ours[2].Position, stream)
	sameIDs(t, "read all after the third event", ids(after), dataIDs(evs[3:]))

	// Paging by the last position read visits each event once.
	var paged []eventstore.RecordedEvent
	for from := headBefore; ; {
		page, err := s.ReadAll(ctx, from, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			if e.Stream == stream {
				paged = append(paged, e)
			}
		}
		from = page[len(page)-1].Position
		if len(paged) == len(evs) {
			break
		}
	}
	sameIDs(t, "paged read all", ids(paged), dataIDs(evs))
}

func testHead(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	before := mustHead(t, ctx, s)
	res := mustAppend(t, ctx, s, newStream(newCategory()), eventstore.NoStream, newEvents(newType("Headed"), 2)...)
	after := mustHead(t, ctx, s)
	if after < res.Position || after <= before {
		t.Fatalf("head %d before, %d after an append at %d", before, after, res.Position)
	}
}

func testIdempotency(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	stream := newStream(newCategory())
	typ := newType("Retried")
	headBefore := mustHead(t, ctx, s)

	first := newEvents(typ, 2)
	r1 := mustAppend(t, ctx, s, stream, eventstore.NoStream, first...)
	if again := mustAppend(t, ctx, s, stream, eventstore.NoStream, first...); again != r1 {
		t.Fatalf("retry expecting no-stream: %+v, want the original %+v", again, r1)
	}

	second := newEvents(typ, 2)
	r2 := mustAppend(t, ctx, s, stream, eventstore.Exact(r1.LastRevision), second...)
	if again := mustAppend(t, ctx, s, stream, eventstore.Exact(r1.LastRevision), second...); again != r2 {
		t.Fatalf("retry expecting %d: %+v, want the original %+v", r1.LastRevision, again, r2)
	}

	third := newEvents(typ, 1)
	mustAppend(t, ctx, s, stream, eventstore.Exact(r2.LastRevision), third...)

	// A retry that comes after the stream moved on still finds the
	// events where its expected revision put them.
	if again := mustAppend(t, ctx, s, stream, eventstore.Exact(r1.LastRevision), second...); again != r2 {
		t.Fatalf("late retry expecting %d: %+v, want the original %+v", r1.LastRevision, again, r2)
	}
	if again := mustAppend(t, ctx, s, stream, eventstore.NoStream, first...); again != r1 {
		t.Fatalf("late retry expecting no-stream: %+v, want the original %+v", again, r1)
	}

	// The same IDs at another place are a conflict, not a retry.
	_, err := s.Append(ctx, stream, eventstore.Exact(0), second...)
	wantWrongVersion(t, err, stream, eventstore.Exact(0), 4)

	want := append(append(dataIDs(first), dataIDs(second)...), dataIDs(third)...)
	sameIDs(t, "stream after retries", ids(mustReadStream(t, ctx, s, stream, eventstore.Forwards, 0, 0)), want)
	sameIDs(t, "global log after retries", ids(readAllOf(t, ctx, s, headBefore, stream)), want)
}

// testMultiAppend holds a store that offers eventstore.MultiAppender to
// its promise: every part or none, each with its own expected revision and
// deduplication.
func testMultiAppend(t *testing.T, s eventstore.Store) {
	m, ok := s.(eventstore.MultiAppender)
	if !ok {
		t.Skip("the store does not offer MultiAppender")
	}
	ctx := testContext(t)
	cat := newCategory()
	typ := newType("Multi")
	a, b, c := newStream(cat), newStream(cat), newStream(cat)
	headBefore := mustHead(t, ctx, s)
	mustAppend(t, ctx, s, c, eventstore.NoStream, newEvents(typ, 1)...)

	first := []eventstore.StreamAppend{
		{Stream: a, Expected: eventstore.NoStream, Events: newEvents(typ, 2)},
		{Stream: b, Expected: eventstore.NoStream, Events: newEvents(typ, 1)},
	}
	res, err := m.AppendMulti(ctx, first...)
	if err != nil {
		t.Fatalf("append to two new streams: %v", err)
	}
	if len(res) != 2 || res[0].LastRevision != 1 || res[1].LastRevision != 0 || res[1].Position <= res[0].Position {
		t.Fatalf("results %+v: want revisions 1 and 0 at increasing positions", res)
	}
	sameIDs(t, a, ids(mustReadStream(t, ctx, s, a, eventstore.Forwards, 0, 0)), dataIDs(first[0].Events))

	// The same parts again: a retry, nothing written.
	head := mustHead(t, ctx, s)
	again, err := m.AppendMulti(ctx, first...)
	if err != nil || !slices.Equal(again, res) {
		t.Fatalf("retry: %+v, %v; want the original %+v", again, err, res)
	}

	// One part refused: nothing is written, the error names that part.
	_, err = m.AppendMulti(ctx,
		eventstore.StreamAppend{Stream: a, Expected: eventstore.Exact(1), Events: newEvents(typ, 1)},
		eventstore.StreamAppend{Stream: c, Expected: eventstore.NoStream, Events: newEvents(typ, 1)})
	wantWrongVersion(t, err, c, eventstore.NoStream, 0)
	if h := mustHead(t, ctx, s); h != head {
		t.Fatalf("a refused multi-append moved the head from %d to %d", head, h)
	}

	// A part that is a retry gives its original result while the others
	// are written.
	next := eventstore.StreamAppend{Stream: c, Expected: eventstore.Exact(0), Events: newEvents(typ, 1)}
	res2, err := m.AppendMulti(ctx, first[1], next)
	if err != nil || res2[0] != res[1] || res2[1].LastRevision != 1 {
		t.Fatalf("retried part and new part: %+v, %v", res2, err)
	}

	// Malformed: the same stream twice, an ID in two parts.
	dup := newEvents(typ, 1)
	for name, parts := range map[string][]eventstore.StreamAppend{
		"same stream twice": {{Stream: b, Expected: eventstore.Any, Events: newEvents(typ, 1)}, {Stream: b, Expected: eventstore.Any, Events: newEvents(typ, 1)}},
		"ID in two parts":   {{Stream: a, Expected: eventstore.Any, Events: dup}, {Stream: b, Expected: eventstore.Any, Events: dup}},
		"no part":           nil,
	} {
		if _, err := m.AppendMulti(ctx, parts...); !errors.Is(err, eventstore.ErrInvalidAppend) {
			t.Errorf("%s: %v, want ErrInvalidAppend", name, err)
		}
	}
	want := slices.Concat(dataIDs(first[0].Events), dataIDs(first[1].Events), dataIDs(next.Events))
	sameIDs(t, "global log", ids(readAllOf(t, ctx, s, headBefore, a, b)), want[:3])
	sameIDs(t, c, ids(mustReadStream(t, ctx, s, c, eventstore.Forwards, 1, 0)), want[3:])
}

// ---- subscriptions ----

// testIDReusedElsewhere states what the port promises of an event ID
// already stored in another stream: never deduplication (the original
// result) and never a silent loss. A store either refuses the append
// with ErrInvalidAppend, writing nothing (the embedded store), or writes a
// new event (EventStoreDB).
func testIDReusedElsewhere(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	cat := newCategory()
	first, second := newStream(cat), newStream(cat)
	evs := newEvents(newType("Reused"), 1)
	orig := mustAppend(t, ctx, s, first, eventstore.NoStream, evs...)
	res, err := s.Append(ctx, second, eventstore.NoStream, evs...)
	switch {
	case errors.Is(err, eventstore.ErrInvalidAppend):
		if _, err := s.ReadStream(ctx, second, eventstore.Forwards, 0, 0); !errors.Is(err, eventstore.ErrStreamNotFound) {
			t.Fatalf("refused append wrote something: read gives %v", err)
		}
	case err != nil:
		t.Fatalf("append of an ID stored in another stream: %v, want success or ErrInvalidAppend", err)
	default:
		if res.Position == orig.Position {
			t.Fatalf("append to %s answered with the original result in %s", second, first)
		}
		got := mustReadStream(t, ctx, s, second, eventstore.Forwards, 0, 0)
		if len(got) != 1 || got[0].ID != evs[0].ID || got[0].Position != res.Position {
			t.Fatalf("append to %s reported success but reads back %d events", second, len(got))
		}
	}
	if got := mustReadStream(t, ctx, s, first, eventstore.Forwards, 0, 0); len(got) != 1 {
		t.Fatalf("the first stream holds %d events, want 1", len(got))
	}
}

func testSubscribeExclusive(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	cat := newCategory()
	stream := newStream(cat)
	typ := newType("Subscribed")
	var positions []eventstore.Position
	for i := range 3 {
		exp := eventstore.Exact(uint64(i - 1))
		if i == 0 {
			exp = eventstore.NoStream
		}
		positions = append(positions, mustAppend(t, ctx, s, stream, exp, newEvents(typ, 1)...).Position)
	}
	filter := eventstore.Filter{Categories: []string{cat}}

	sub := mustSubscribe(t, ctx, s, positions[0], filter)
	for i := 1; i < 3; i++ {
		if e := recv(t, ctx, sub); e.Revision != uint64(i) || e.Position != positions[i] {
			t.Fatalf("subscription after %d: got revision %d at %d, want revision %d at %d", positions[0], e.Revision, e.Position, i, positions[i])
		}
	}

	// Subscribing at the last event delivers only what comes next.
	sub = mustSubscribe(t, ctx, s, positions[2], filter)
	next := mustAppend(t, ctx, s, stream, eventstore.Exact(2), newEvents(typ, 1)...)
	if e := recv(t, ctx, sub); e.Revision != 3 || e.Position != next.Position {
		t.Fatalf("subscription after the last event: got revision %d at %d, want 3 at %d", e.Revision, e.Position, next.Position)
	}
}

func testCatchUpThenLive(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	cat := newCategory()
	a, b := newStream(cat), newStream(cat)
	typ := newType("Live")
	headBefore := mustHead(t, ctx, s)

	past := [][]eventstore.EventData{newEvents(typ, 2), newEvents(typ, 1)}
	mustAppend(t, ctx, s, a, eventstore.NoStream, past[0]...)
	mustAppend(t, ctx, s, b, eventstore.NoStream, past[1]...)
	want := append(dataIDs(past[0]), dataIDs(past[1])...)

	sub := mustSubscribe(t, ctx, s, headBefore, eventstore.Filter{Categories: []string{cat}})
	var got []eventstore.RecordedEvent
	for range want {
		got = append(got, recv(t, ctx, sub))
	}
	sameIDs(t, "catch-up", ids(got), want)

	// A Recv already waiting is woken by the commit.
	live := newEvents(typ, 2)
	appended := make(chan error, 1)
	go func() {
		time.Sleep(50 * time.Millisecond)
		_, err := s.Append(ctx, a, eventstore.Exact(1), live...)
		appended <- err
	}()
	got = []eventstore.RecordedEvent{recv(t, ctx, sub), recv(t, ctx, sub)}
	if err := <-appended; err != nil {
		t.Fatal(err)
	}
	sameIDs(t, "live", ids(got), dataIDs(live))
	sameRevisions(t, "live", got, 2, 3)

	more := newEvents(typ, 1)
	mustAppend(t, ctx, s, b, eventstore.Exact(0), more...)
	sameIDs(t, "live after", []uuid.UUID{recv(t, ctx, sub).ID}, dataIDs(more))
}

// appendEach appends one event per (stream, type) pair, in order, and
// returns the events.
func appendEach(t *testing.T, ctx context.Context, s eventstore.Store, steps [][2]string) []eventstore.EventData {
	t.Helper()
	var out []eventstore.EventData
	for _, st := range steps {
		e := newEvents(st[1], 1)
		mustAppend(t, ctx, s, st[0], eventstore.Any, e...)
		out = append(out, e[0])
	}
	return out
}

func testFilterByCategory(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	catA, catB, catC := newCategory(), newCategory(), newCategory()
	a, b, c := newStream(catA), newStream(catB), newStream(catC)
	typ := newType("Filtered")
	headBefore := mustHead(t, ctx, s)
	evs := appendEach(t, ctx, s, [][2]string{{a, typ}, {c, typ}, {b, typ}, {c, typ}, {a, typ}})

	sub := mustSubscribe(t, ctx, s, headBefore, eventstore.Filter{Categories: []string{catA, catB}})
	got := []eventstore.RecordedEvent{recv(t, ctx, sub), recv(t, ctx, sub), recv(t, ctx, sub)}
	sameIDs(t, "categories "+catA+", "+catB, ids(got), []uuid.UUID{evs[0].ID, evs[2].ID, evs[4].ID})
}

func testFilterByEventType(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	stream := newStream(newCategory())
	x, y, z := newType("Xed"), newType("Yed"), newType("Zed")
	headBefore := mustHead(t, ctx, s)
	evs := appendEach(t, ctx, s, [][2]string{{stream, x}, {stream, z}, {stream, y}, {stream, z}, {stream, x}})

	sub := mustSubscribe(t, ctx, s, headBefore, eventstore.Filter{EventTypes: []string{x, y}})
	got := []eventstore.RecordedEvent{recv(t, ctx, sub), recv(t, ctx, sub), recv(t, ctx, sub)}
	sameIDs(t, "types", ids(got), []uuid.UUID{evs[0].ID, evs[2].ID, evs[4].ID})
}

func testFilterBoth(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	catA, catB := newCategory(), newCategory()
	a, b := newStream(catA), newStream(catB)
	x, y := newType("Xed"), newType("Yed")
	headBefore := mustHead(t, ctx, s)
	evs := appendEach(t, ctx, s, [][2]string{{a, x}, {a, y}, {b, x}, {b, y}, {a, x}})

	sub := mustSubscribe(t, ctx, s, headBefore, eventstore.Filter{Categories: []string{catA}, EventTypes: []string{x}})
	got := []eventstore.RecordedEvent{recv(t, ctx, sub), recv(t, ctx, sub)}
	sameIDs(t, "category and type", ids(got), []uuid.UUID{evs[0].ID, evs[4].ID})
}

func testEmptyFilter(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	stream := newStream(newCategory())
	headBefore := mustHead(t, ctx, s)
	evs := newEvents(newType("Unfiltered"), 3)
	res := mustAppend(t, ctx, s, stream, eventstore.NoStream, evs...)

	// Other writers may interleave: keep ours, in order, and stop at ours.
	sub := mustSubscribe(t, ctx, s, headBefore, eventstore.Filter{})
	var got []uuid.UUID
	for len(got) < len(evs) {
		e := recv(t, ctx, sub)
		if e.Position > res.Position {
			t.Fatalf("subscription passed %d without delivering all of our events", res.Position)
		}
		if e.Stream == stream {
			got = append(got, e.ID)
		}
	}
	sameIDs(t, "no filter", got, dataIDs(evs))
}

func testResubscribe(t *testing.T, s eventstore.Store) {
	const writers, appends, restartEvery = 4, 30, 17
	ctx := testContext(t)
	cat := newCategory()
	typ := newType("Restarted")
	filter := eventstore.Filter{Categories: []string{cat}}
	headBefore := mustHead(t, ctx, s)

	size := func(i int) int { return 1 + i%2 }
	var (
		wg       sync.WaitGroup
		errMu    sync.Mutex
		writeErr error
	)
	writerFailure := func() error {
		errMu.Lock()
		defer errMu.Unlock()
		return writeErr
	}
	for range writers {
		stream := newStream(cat)
		wg.Go(func() {
			if _, err := appendSeries(ctx, s, stream, typ, appends, size); err != nil {
				errMu.Lock()
				writeErr = errors.Join(writeErr, err)
				errMu.Unlock()
			}
		})
	}
	defer wg.Wait()

	total := 0
	for i := range appends {
		total += size(i)
	}
	total *= writers

	d := delivery{seen: map[uuid.UUID]bool{}, next: map[string]uint64{}, last: headBefore}
	sub := mustSubscribe(t, ctx, s, d.last, filter)
	for n := 0; n < total; n++ {
		if n > 0 && n%restartEvery == 0 {
			if err := sub.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			sub = mustSubscribe(t, ctx, s, d.last, filter)
		}
		rctx, cancel := context.WithTimeout(ctx, waitTimeout)
		e, err := sub.Recv(rctx)
		cancel()
		if err != nil {
			t.Fatalf("recv after %d of %d events: %v (writers: %v)", n, total, err, writerFailure())
		}
		d.check(t, e)
	}
	wg.Wait()
	if err := writerFailure(); err != nil {
		t.Fatal(err)
	}
	if len(d.seen) != total {
		t.Fatalf("delivered %d events, want %d", len(d.seen), total)
	}
	// Nothing beyond what was written.
	sub = mustSubscribe(t, ctx, s, d.last, filter)
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if e, err := sub.Recv(short); err == nil {
		t.Fatalf("unexpected event %+v after all were delivered", e)
	}
}

// delivery checks a subscription's deliveries across restarts: each event
// once, positions increasing, each stream's revisions in order.
type delivery struct {
	seen map[uuid.UUID]bool
	next map[string]uint64 // stream → next revision expected
	last eventstore.Position
}

func (d *delivery) check(t *testing.T, e eventstore.RecordedEvent) {
	t.Helper()
	if d.seen[e.ID] {
		t.Fatalf("event %s delivered twice (position %d)", e.ID, e.Position)
	}
	d.seen[e.ID] = true
	if e.Position <= d.last {
		t.Fatalf("position %d delivered after %d", e.Position, d.last)
	}
	d.last = e.Position
	if e.Revision != d.next[e.Stream] {
		t.Fatalf("%s: revision %d delivered, want %d (lost or reordered)", e.Stream, e.Revision, d.next[e.Stream])
	}
	d.next[e.Stream]++
}

func testCloseEndsRecv(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	cat := newCategory()
	stream := newStream(cat)
	headBefore := mustHead(t, ctx, s)
	mustAppend(t, ctx, s, stream, eventstore.NoStream, newEvents(newType("Closed"), 2)...)
	headAfter := mustHead(t, ctx, s)

	t.Run("waiting", func(t *testing.T) {
		sub := mustSubscribe(t, ctx, s, headAfter, eventstore.Filter{Categories: []string{cat}})
		done := make(chan error, 1)
		go func() {
			rctx, cancel := context.WithTimeout(ctx, waitTimeout)
			defer cancel()
			_, err := sub.Recv(rctx)
			done <- err
		}()
		time.Sleep(50 * time.Millisecond) // let Recv block
		if err := sub.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, eventstore.ErrSubscriptionClosed) {
				t.Fatalf("recv on a closed subscription: %v, want ErrSubscriptionClosed", err)
			}
		case <-time.After(waitTimeout):
			t.Fatal("recv still blocked after close")
		}
		if _, err := sub.Recv(ctx); !errors.Is(err, eventstore.ErrSubscriptionClosed) {
			t.Fatalf("recv after close: %v, want ErrSubscriptionClosed", err)
		}
		_ = sub.Close() // twice is harmless
	})

	t.Run("with events pending", func(t *testing.T) {
		sub := mustSubscribe(t, ctx, s, headBefore, eventstore.Filter{Categories: []string{cat}})
		recv(t, ctx, sub)
		if err := sub.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		if _, err := sub.Recv(ctx); !errors.Is(err, eventstore.ErrSubscriptionClosed) {
			t.Fatalf("recv after close: %v, want ErrSubscriptionClosed", err)
		}
	})
}

func testContextEndsRecv(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	cat := newCategory()
	head := mustHead(t, ctx, s)
	sub := mustSubscribe(t, ctx, s, head, eventstore.Filter{Categories: []string{cat}})

	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	if _, err := sub.Recv(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("recv with a canceled context: %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > waitTimeout {
		t.Fatalf("recv returned %v after its context was canceled", d)
	}

	// A fresh subscription: the suite does not require one to survive the
	// end of a Recv context.
	sub = mustSubscribe(t, ctx, s, head, eventstore.Filter{Categories: []string{cat}})
	dctx, cancel2 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel2()
	if _, err := sub.Recv(dctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("recv past its deadline: %v, want context.DeadlineExceeded", err)
	}
}

func testStoreCloseEndsSubscriptions(t *testing.T, s eventstore.Store) {
	ctx := testContext(t)
	head := mustHead(t, ctx, s)
	sub := mustSubscribe(t, ctx, s, head, eventstore.Filter{Categories: []string{newCategory()}})
	done := make(chan error, 1)
	go func() {
		rctx, cancel := context.WithTimeout(ctx, 2*waitTimeout)
		defer cancel()
		_, err := sub.Recv(rctx)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // let Recv block
	if err := s.Close(); err != nil {
		t.Fatalf("close store: %v", err)
	}
	select {
	case err := <-done:
		// An adapter may report the end of its connection rather than
		// ErrSubscriptionClosed; it must not stay blocked or succeed.
		if err == nil {
			t.Fatal("recv succeeded on a closed store")
		}
	case <-time.After(waitTimeout):
		t.Fatal("recv still blocked after the store was closed")
	}
}

// Restart stops the store's server, or the engine itself, and starts it
// again on the same data; it returns the store to use from then on (the
// same one when the adapter reconnects on its own).
type Restart func(t *testing.T) eventstore.Store

// RunAcrossRestart checks what a subscription does when the store's server
// restarts under it: Recv either goes on in order or fails, and a
// subscription from the last position delivered then gives every later
// event once. The events appended before and after the restart arrive
// exactly once, in order, and none is lost.
func RunAcrossRestart(t *testing.T, open func(t *testing.T) (eventstore.Store, Restart)) {
	t.Run("conformance/SubscriptionAcrossRestart", func(t *testing.T) {
		s, restart := open(t)
		ctx := testContext(t)
		cat, typ := newCategory(), newType("Restarted")
		filter := eventstore.Filter{Categories: []string{cat}}
		last := mustHead(t, ctx, s)
		stream := newStream(cat)
		before, after := newEvents(typ, 5), newEvents(typ, 5)
		if _, err := s.Append(ctx, stream, eventstore.NoStream, before...); err != nil {
			t.Fatal(err)
		}
		sub := mustSubscribe(t, ctx, s, last, filter)
		var got []uuid.UUID
		for len(got) < 3 {
			e := recv(t, ctx, sub)
			got, last = append(got, e.ID), e.Position
		}
		s = restart(t)
		appendOnceBack(t, ctx, s, stream, after)
		for len(got) < len(before)+len(after) {
			rctx, cancel := context.WithTimeout(ctx, waitTimeout)
			e, err := sub.Recv(rctx)
			cancel()
			if err != nil {
				_ = sub.Close()
				sub = mustSubscribe(t, ctx, s, last, filter)
				continue
			}
			got, last = append(got, e.ID), e.Position
		}
		sameIDs(t, "across a restart", got, dataIDs(append(before, after...)))
	})
}

// appendOnceBack appends evs as the stream's revisions 5 on, retrying while
// the restarted server is not answering yet.
func appendOnceBack(t *testing.T, ctx context.Context, s eventstore.Store, stream string, evs []eventstore.EventData) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		_, err := s.Append(ctx, stream, eventstore.Exact(4), evs...)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("append after the restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
