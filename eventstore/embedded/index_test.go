package embedded

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"passerelle/eventstore"
)

// A crash while a checkpoint merges the recent index entries into bbolt
// (between two of its transactions) or after it merged them, before it
// synced events.db: the merge's commits are unsynced like a group's, so
// Open brings the file back to the previous checkpoint and replays the
// log, whether the crash kept the merge's pages (a process crash) or
// only its newest meta page (a machine crash).
func TestCrashDuringTheMerge(t *testing.T) {
	dir := t.TempDir()
	chunk := func(o *options) { o.mergeChunk, o.quietChunk = 16, 16 }
	s := openT(t, dir, chunk)
	acked := appendSome(t, s, "before", 4)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, chunk) // checkpoints: events.db is synced here
	defer s.Close()
	synced := readFile(t, filepath.Join(dir, FileName))
	h, _, err := readWAL(filepath.Join(dir, WALFileName))
	if err != nil {
		t.Fatal(err)
	}
	acked = append(acked, appendSome(t, s, "after", 30)...)
	if s.recent.pending() < 40 {
		t.Fatalf("%d index entries waiting for the merge", s.recent.pending())
	}

	type files struct{ db, wal []byte }
	var (
		crashes []files
		hookErr error
	)
	testHookCheckpoint = func(step checkpointStep) {
		if step > stepMergedLast || len(crashes) > 0 && step != stepMergedLast {
			return
		}
		var f files
		f.db, hookErr = os.ReadFile(filepath.Join(dir, FileName))
		if hookErr == nil {
			f.wal, hookErr = os.ReadFile(filepath.Join(dir, WALFileName))
		}
		crashes = append(crashes, f)
	}
	defer func() { testHookCheckpoint = nil }()
	flushT(t, s)
	testHookCheckpoint = nil
	if len(crashes) != 2 || hookErr != nil {
		t.Fatalf("%d merge transactions seen, want one mid-merge and the last (%v)", len(crashes), hookErr)
	}

	for i, c := range crashes {
		if metaTxid(c.db, h.pageSize) <= h.txid {
			t.Fatalf("crash %d: the merge left the meta pages at transaction %d, the checkpoint's", i, h.txid)
		}
		torn := checkCrashed(t, c.db, c.wal, synced, h.pageSize, acked)
		checkIndexedOnDisk(t, torn, len(acked))
	}
}

// metaTxid is the transaction of a bbolt file's current meta page.
func metaTxid(db []byte, pageSize int) uint64 {
	var txid uint64
	for slot := range 2 {
		if id := binary.LittleEndian.Uint64(db[slot*pageSize+metaTxidOffset:]); id > txid {
			txid = id
		}
	}
	return txid
}

// checkCrashed checks that a store whose files a crash left as db and
// wal opens with every acknowledged append, as a process crash leaves
// them (every write kept) and as a machine crash may (the file as last
// synced, but for the newest meta pages, whose pages may be lost). It
// returns the directory of the machine crash.
func checkCrashed(t *testing.T, db, wal, synced []byte, pageSize int, acked []appended) (torn string) {
	t.Helper()
	kept := t.TempDir()
	torn = t.TempDir()
	writeCrashed(t, kept, db, wal)
	tornDB := append([]byte(nil), synced...)
	copy(tornDB[:2*pageSize], db[:2*pageSize])
	writeCrashed(t, torn, tornDB, wal)
	checkAcked(t, kept, acked)
	checkAcked(t, torn, acked)
	return torn
}

// writeCrashed writes a store's files into dir as a crash left them
// there: the log names the new file's inode.
func writeCrashed(t *testing.T, dir string, db, wal []byte) {
	t.Helper()
	writeFile(t, filepath.Join(dir, FileName), db)
	h, rest, err := decodeHeader(wal)
	if err != nil {
		t.Fatal(err)
	}
	if h.inode, err = inode(filepath.Join(dir, FileName)); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, WALFileName), append(h.encode(), rest...))
}

// checkIndexedOnDisk opens a closed store's file with bbolt alone, as an
// older build reads it, and checks that its buckets index every event.
func checkIndexedOnDisk(t *testing.T, dir string, appends int) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(func(tx *bolt.Tx) error {
		b := bucketsOf(tx)
		logN, idsN, revsN := b.log.Stats().KeyN, b.ids.Stats().KeyN, b.revs.Stats().KeyN
		if logN < appends || idsN != logN || revsN != logN || b.streams.Stats().KeyN == 0 {
			return fmt.Errorf("log %d, ids %d, revs %d entries for at least %d appends", logN, idsN, revsN, appends)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// A store closed cleanly holds every index entry in bbolt, as the
// format has always had them: an older build reads it as before.
func TestCloseMergesTheRecentEntries(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	acked := appendSome(t, s, "closed", 25)
	if s.recent.pending() == 0 {
		t.Fatal("no index entries waiting for the merge")
	}
	if err := s.Check(); err != nil {
		t.Fatalf("check with entries waiting for the merge: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkIndexedOnDisk(t, dir, len(acked))
	checkAcked(t, dir, acked)
}

// Readers and appends run while checkpoints merge the recent entries:
// every read sees a stream's revisions dense from 0 and at least every
// acknowledged one, and Check then finds the store consistent.
func TestReadsWhileMerging(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	const writers, appendsEach = 4, 150
	var acked [writers]atomic.Int64 // events acknowledged per stream
	var wg sync.WaitGroup
	done := make(chan struct{})
	fail := func(format string, args ...any) {
		t.Errorf(format, args...)
	}
	for w := range writers {
		wg.Go(func() {
			stream, exp := fmt.Sprintf("merge-%d", w), eventstore.NoStream
			for i := range appendsEach {
				res, err := s.Append(t.Context(), stream, exp, events("Merged", 1+i%2)...)
				if err != nil {
					fail("append: %v", err)
					return
				}
				exp = eventstore.Exact(res.LastRevision)
				acked[w].Store(int64(res.LastRevision) + 1)
			}
		})
	}
	var side sync.WaitGroup
	side.Go(func() { // checkpoints at arbitrary points
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := s.flush(); err != nil {
				fail("flush: %v", err)
				return
			}
		}
	})
	side.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			w := i % writers
			want := acked[w].Load()
			evs, err := s.ReadStream(t.Context(), fmt.Sprintf("merge-%d", w), eventstore.Forwards, 0, 0)
			if errors.Is(err, eventstore.ErrStreamNotFound) && want == 0 {
				continue
			}
			if err != nil {
				fail("read: %v", err)
				return
			}
			if int64(len(evs)) < want {
				fail("read %d events of merge-%d after %d were acknowledged", len(evs), w, want)
				return
			}
			for j, e := range evs {
				if e.Revision != uint64(j) {
					fail("merge-%d: revision %d at index %d", w, e.Revision, j)
					return
				}
			}
		}
	})
	wg.Wait()
	close(done)
	side.Wait()
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	if s.commits.Load() < 2 {
		t.Fatal("no commits")
	}
}

// A group whose transaction is rolled back takes its entries back out of
// the recent index, latest first, so that its positions can be taken
// again.
func TestRecentIndexUndo(t *testing.T) {
	x := newRecentIndex()
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	x.add(a, "s-1", 0, 1)
	x.add(b, "s-1", 1, 2)
	x.add(c, "s-2", 4, 3)
	x.undo([]recentAdd{{id: b, stream: "s-1"}, {id: c, stream: "s-2"}})
	if last, ok := x.last("s-1"); !ok || last != 0 {
		t.Fatalf("s-1 ends at %d, %v; want 0", last, ok)
	}
	if _, ok := x.last("s-2"); ok || x.pending() != 1 || len(x.cur.ids) != 1 || x.cur.ids[a] != 1 {
		t.Fatalf("left %d events, ids %v, s-2 %v", x.pending(), x.cur.ids, ok)
	}
	if v := x.view("s-1", 0); !v.empty() {
		t.Fatalf("a transaction at position 0 sees %+v", v)
	}
	if v := x.view("s-1", 5); v.last() != 0 {
		t.Fatalf("s-1 seen up to %d", v.last())
	}
}

// Open replays the log's events into bbolt's log and their index entries
// into the recent ones, and its checkpoint merges them: a crash between
// two transactions of that merge leaves the previous checkpoint whole, so
// the next Open starts over from it.
func TestCrashWhileOpenMerges(t *testing.T) {
	dir, crashed := t.TempDir(), t.TempDir()
	s := openT(t, dir)
	acked := appendSome(t, s, "replayed", 30)
	copyCrashed(t, dir, crashed, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	var db, wal []byte
	var hookErr error
	testHookCheckpoint = func(step checkpointStep) {
		if db != nil || step != stepMerged {
			return
		}
		db, hookErr = os.ReadFile(filepath.Join(crashed, FileName))
		if hookErr == nil {
			wal, hookErr = os.ReadFile(filepath.Join(crashed, WALFileName))
		}
	}
	defer func() { testHookCheckpoint = nil }()
	s = openT(t, crashed, func(o *options) { o.mergeChunk, o.quietChunk = 16, 16 })
	testHookCheckpoint = nil
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if db == nil || hookErr != nil {
		t.Fatalf("Open merged nothing in several transactions (%v)", hookErr)
	}
	again := t.TempDir()
	writeCrashed(t, again, db, wal)
	checkAcked(t, again, acked)
	checkIndexedOnDisk(t, again, len(acked))
	checkAcked(t, crashed, acked)
}

// A stream read from the revs index steps its cursor from one revision to
// the next. Names that end in zero bytes put another stream's keys
// between a stream's revisions, and the cursor must not take those for
// its own: every read, forwards and backwards, from any revision, gives
// the stream's events, whether they are merged into bbolt or recent.
func TestReadStreamThroughInterleavedRevs(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	names := []string{"a", "a\x00", "a\x00\x00\x00\x00\x00\x00\x00\x00", "a\x00\x00\x00\x00\x00\x00\x00\x01", "b"}
	want := map[string][]eventstore.EventData{}
	for round := range 4 {
		for _, name := range names {
			e := events("Logged", 1+round%2)
			mustAppend(t, s, name, eventstore.Any, e...)
			want[name] = append(want[name], e...)
		}
		if round == 2 {
			flushT(t, s) // the first rounds in bbolt, the last recent
		}
	}
	ctx := t.Context()
	for _, name := range names {
		all := want[name]
		for from := range len(all) {
			got, err := s.ReadStream(ctx, name, eventstore.Forwards, uint64(from), 0)
			if err != nil {
				t.Fatalf("%q from %d: %v", name, from, err)
			}
			checkIDs(t, name, got, all[from:])
			got, err = s.ReadStream(ctx, name, eventstore.Backwards, uint64(from), 0)
			if err != nil {
				t.Fatalf("%q back from %d: %v", name, from, err)
			}
			back := slices.Clone(all[:from+1])
			slices.Reverse(back)
			checkIDs(t, name, got, back)
		}
	}
}

func checkIDs(t *testing.T, stream string, got []eventstore.RecordedEvent, want []eventstore.EventData) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%q: %d events, want %d", stream, len(got), len(want))
	}
	for i := range got {
		if got[i].ID != want[i].ID || got[i].Stream != stream {
			t.Fatalf("%q: event %d is %s of %q, want %s", stream, i, got[i].ID, got[i].Stream, want[i].ID)
		}
	}
}

// Streams are found by a hash of their name, checked on use: when every
// name has the same hash, each is still found, undone and merged as its
// own, and the index holds no pointers.
func TestRecentIndexWhenHashesCollide(t *testing.T) {
	defer func(h func(string) uint64) { hashName = h }(hashName)
	hashName = func(string) uint64 { return 7 }
	x := newRecentIndex()
	var added []recentAdd
	pos := uint64(0)
	for round := range 3 {
		for _, name := range []string{"a", "b", "c"} {
			pos++
			id := uuid.New()
			x.add(id, name, uint64(round), pos)
			added = append(added, recentAdd{id: id, stream: name})
		}
	}
	x.undo(added[len(added)-2:]) // b and c lose their last revision
	for name, want := range map[string]int64{"a": 2, "b": 1, "c": 1} {
		if last, ok := x.last(name); !ok || last != want {
			t.Fatalf("%s ends at %d, %v; want %d", name, last, ok, want)
		}
	}
	if v := x.view("b", 100); v.base != 0 || len(v.pos) != 2 || v.pos[0] != 2 || v.pos[1] != 5 {
		t.Fatalf("b is seen as %+v", v)
	}
	if _, ok := x.last("d"); ok {
		t.Fatal("a stream never written is found")
	}
	// a stream undone whole is forgotten, whether it was found by hash or
	// by name, and the others are still found
	d, e := uuid.New(), uuid.New()
	x.add(d, "d", 0, 8)
	x.add(e, "e", 0, 9)
	x.undo([]recentAdd{{id: d, stream: "d"}, {id: e, stream: "e"}})
	for _, name := range []string{"d", "e"} {
		if _, ok := x.last(name); ok {
			t.Fatalf("%s is found after its only revision was undone", name)
		}
	}
	if last, ok := x.last("a"); !ok || last != 2 {
		t.Fatalf("a ends at %d, %v after d and e were undone", last, ok)
	}
	x.freeze()
	m := x.merge()
	var order []string
	for _, i := range m.names {
		order = append(order, string(m.g.nameOf(&m.g.streams[i])))
	}
	if !slices.Equal(order, []string{"a", "b", "c"}) || m.puts != 7+3+7 {
		t.Fatalf("merge writes %v, %d entries", order, m.puts)
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[recentStream](), reflect.TypeFor[map[uint64]int32](), reflect.TypeFor[map[uuid.UUID]uint64]()} {
		if hasPointers(typ) {
			t.Errorf("%s holds pointers", typ)
		}
	}
}

// hasPointers tells whether values of t hold pointers the collector marks.
func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.String, reflect.Slice, reflect.Interface, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return true
	case reflect.Map:
		return hasPointers(t.Key()) || hasPointers(t.Elem())
	case reflect.Array:
		return hasPointers(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
	}
	return false
}

// The appends of one group see each other before the group's entries
// reach the recent index: a later append finds the revision an earlier
// one wrote, an event ID an earlier one stored is refused in another
// stream and is a retry in its own, and once committed the entries are
// the recent index's.
func TestAGroupSeesItsOwnAppends(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	first, next := events("Placed", 2), events("Amended", 1)
	req := func(stream string, exp eventstore.ExpectedRevision, evs []eventstore.EventData) *appendReq {
		return &appendReq{parts: []eventstore.StreamAppend{{Stream: stream, Expected: exp, Events: evs}}, done: make(chan struct{})}
	}
	batch := []*appendReq{
		req("g-1", eventstore.NoStream, first),
		req("g-1", eventstore.Exact(1), next),
		req("g-2", eventstore.Any, first[:1]),
		req("g-1", eventstore.Any, first),
	}
	// the committer waits for appends on its queue: this group is
	// committed here instead, as it would be there
	s.commit(batch)
	for i, want := range []error{nil, nil, eventstore.ErrInvalidAppend, nil} {
		if !errors.Is(batch[i].err, want) {
			t.Fatalf("append %d: %v, want %v", i, batch[i].err, want)
		}
	}
	if got, want := batch[1].results[0].LastRevision, uint64(2); got != want {
		t.Fatalf("the second append ends at revision %d, want %d", got, want)
	}
	if batch[3].results[0] != batch[0].results[0] {
		t.Fatalf("the retry answered %+v, the first append %+v", batch[3].results[0], batch[0].results[0])
	}
	all, err := s.ReadAll(t.Context(), eventstore.Start, 0)
	if err != nil || len(all) != 3 {
		t.Fatalf("log holds %d events (%v), want 3", len(all), err)
	}
	if last, ok := s.recent.last("g-1"); !ok || last != 2 {
		t.Fatalf("the recent index ends g-1 at %d, %v; want 2", last, ok)
	}
	mustAppend(t, s, "g-1", eventstore.Exact(2), events("Amended", 1)...)
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}
