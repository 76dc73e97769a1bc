package embedded

import (
	"fmt"
	"os"
	"passerelle/eventstore"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
)

// smallCheckpoints makes a checkpoint due every few kilobytes of log,
// however large the file, and its merge write chunk entries per
// transaction.
func smallCheckpoints(bytes int64, chunk int) Option {
	return func(o *options) {
		o.checkpointBytes, o.mergeChunk, o.checkpointShare = bytes, chunk, 0
	}
}

// A checkpoint merges the index entries in transactions between the
// groups: appends are committed while a merge is under way, where they
// used to wait for the whole merge.
func TestAppendsGoOnDuringAMerge(t *testing.T) {
	s := openT(t, t.TempDir(), smallCheckpoints(4<<10, 2))
	var merges, interleaved atomic.Int64
	first := int64(-1) // commits when the merge under way began
	testHookCheckpoint = func(step checkpointStep) {
		switch {
		case step == stepMerged && first < 0:
			first = s.commits.Load()
		case step == stepMergedLast:
			merges.Add(1)
			if first >= 0 && s.commits.Load() > first {
				interleaved.Add(1)
			}
			first = -1
		}
	}
	defer func() { testHookCheckpoint = nil }()
	appendSome(t, s, "busy", 300)
	err := s.Check()
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	testHookCheckpoint = nil // the committer is done with it
	if merges.Load() < 2 || interleaved.Load() == 0 {
		t.Fatalf("%d merges, %d of them with groups committed between their transactions", merges.Load(), interleaved.Load())
	}
}

// A crash at any step of a checkpoint whose merge ran beside the appends:
// in the middle of its merge, after it, once events.db is synced, and
// once the new log (carrying over the events whose index entries were
// still in memory) is in place. Each is tried as a process crash, which keeps every
// write, and as a machine crash, which keeps only what was synced and the
// newest meta pages. Open must find every append acknowledged before the
// crash, indexed, and the store consistent.
func TestCrashDuringABackgroundCheckpoint(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, smallCheckpoints(2<<10, 4))
	dbPath, walPath := filepath.Join(dir, FileName), filepath.Join(dir, WALFileName)
	h, _, err := readWAL(walPath)
	if err != nil {
		t.Fatal(err)
	}
	synced := map[uint64][]byte{h.txid: readFile(t, dbPath)} // events.db as each checkpoint synced it
	type capture struct {
		step    checkpointStep
		db, wal []byte
		acked   int
	}
	var (
		captures []capture
		seen     = map[checkpointStep]int{}
		acked    []appended
		nAcked   atomic.Int64
		hookErr  error
	)
	testHookCheckpoint = func(step checkpointStep) {
		db, err := os.ReadFile(dbPath)
		if step == stepSynced && err == nil {
			// no commit since the one the checkpoint pins
			synced[metaTxid(db, h.pageSize)] = db
		}
		if seen[step] >= 4 {
			return
		}
		seen[step]++
		var wal []byte
		if err == nil {
			wal, err = os.ReadFile(walPath)
		}
		hookErr = err
		captures = append(captures, capture{step, db, wal, int(nAcked.Load())})
	}
	defer func() { testHookCheckpoint = nil }()
	for range 200 {
		acked = append(acked, appendSome(t, s, "bg", 1)...)
		nAcked.Store(int64(len(acked)))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	testHookCheckpoint = nil // the committer is done with it
	if hookErr != nil {
		t.Fatal(hookErr)
	}
	carried := false
	for step := stepMerged; step <= stepLogged; step++ {
		if seen[step] == 0 {
			t.Fatalf("no crash taken at step %d: %v", step, seen)
		}
	}
	for i, c := range captures {
		h, _, err := decodeHeader(c.wal)
		if err != nil {
			t.Fatal(err)
		}
		carried = carried || h.carries
		base, ok := synced[h.txid]
		if !ok {
			t.Fatalf("crash %d: no synced file for checkpoint %d", i, h.txid)
		}
		t.Logf("crash %d at step %d, %d appends acknowledged, log carries frames: %v", i, c.step, c.acked, h.carries)
		checkCrashed(t, c.db, c.wal, base, h.pageSize, acked[:c.acked])
	}
	if !carried {
		t.Fatal("no log carried frames over: the appends never overtook a merge")
	}
	if s.loggedAhead == 0 {
		t.Fatal("no checkpoint's log was written as the groups went")
	}
}

// The checkpoint interval grows with events.db (a share of its size),
// so that a merge's random index keys land several to a leaf however
// large the file: with 4 KiB of log as the base, checkpoints of a 2 MiB
// file come after a sixteenth of it.
func TestCheckpointIntervalGrowsWithTheFile(t *testing.T) {
	s := openT(t, t.TempDir(), smallCheckpoints(4<<10, 64), func(o *options) { o.checkpointShare = 16 })
	type seen struct{ log, file int64 }
	var at []seen
	testHookCheckpoint = func(step checkpointStep) {
		if step == stepSynced && s.pin != nil { // the pin of the checkpoint before
			at = append(at, seen{s.wal.size - s.wal.start, s.pin.Size()})
		}
	}
	defer func() { testHookCheckpoint = nil }()
	big := make([]byte, 4<<10)
	for i := range big {
		big[i] = 'a' + byte(i%26)
	}
	for i := range 2000 {
		ev := eventstore.EventData{ID: uuid.New(), Type: "Big", Data: fmt.Appendf(nil, `{"i":%d,"s":%q}`, i, big)}
		mustAppend(t, s, fmt.Sprintf("big-%d", i%7), eventstore.Any, ev)
		if i%500 == 499 {
			if err := s.Check(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	testHookCheckpoint = nil
	grown := 0
	for _, c := range at[:len(at)-1] { // the last is Close's, due or not
		if want := max(4<<10, c.file/16); c.log < want {
			t.Errorf("checkpoint after %d bytes of log, file %d: want %d at least", c.log, c.file, want)
		}
		if c.log >= 64<<10 {
			grown++
		}
	}
	if grown == 0 {
		t.Fatalf("no checkpoint came after 64 KiB of log or more: %v", at)
	}
}
