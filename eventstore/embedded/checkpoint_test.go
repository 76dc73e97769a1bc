package embedded

import (
	"errors"
	"fmt"
	"os"
	"passerelle/eventstore"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
)

// smallCheckpoints makes a checkpoint due every few kilobytes of log,
// however large the file, and its merge write chunk entries per
// transaction.
func smallCheckpoints(bytes int64, chunk int) Option {
	return func(o *options) {
		o.checkpointBytes, o.mergeChunk, o.quietChunk, o.checkpointShare = bytes, chunk, chunk, 0
	}
}

// Close merges what is left in transactions of quietChunk entries, not
// of the small ones that keep appends from waiting: nothing waits then,
// and each transaction's commit has its fixed cost (with 128 entries each,
// a seed's Close took 62 s instead of 10).
func TestCloseMergesInLargeTransactions(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, func(o *options) { o.mergeChunk, o.quietChunk = 16, 400 })
	// 450 events: an ids and a revs entry each, and the three streams'
	acked := appendSome(t, s, "quiet", 300)
	var steps atomic.Int64
	testHookCheckpoint = func(step checkpointStep) {
		if step == stepMerged || step == stepMergedLast {
			steps.Add(1)
		}
	}
	defer func() { testHookCheckpoint = nil }()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	testHookCheckpoint = nil
	// a stream's entries go together, so a transaction may take more
	if n := steps.Load(); n < 1 || n > 3 {
		t.Fatalf("Close merged 903 entries in %d transactions, want 1 to 3 (of about 400)", n)
	}
	checkIndexedOnDisk(t, dir, len(acked))
	checkAcked(t, dir, acked)
}

// WithMergeChunk sets the entries of a merge's transactions between the
// groups: each merge of a few dozen entries then takes one transaction,
// where a chunk of two takes many.
func TestMergeChunkSetsTheMergeTransactions(t *testing.T) {
	for _, c := range []struct {
		opts []Option
		one  bool // each merge in one transaction
	}{
		{[]Option{smallCheckpoints(4<<10, 2)}, false},
		{[]Option{smallCheckpoints(4<<10, 2), WithMergeChunk(400)}, true},
	} {
		s := openT(t, t.TempDir(), c.opts...)
		var (
			mu            sync.Mutex
			steps, merges int
		)
		testHookCheckpoint = func(step checkpointStep) {
			mu.Lock()
			defer mu.Unlock()
			switch step {
			case stepMerged:
				steps++
			case stepMergedLast:
				steps++
				merges++
			}
		}
		appendSome(t, s, "chunks", 600)
		mu.Lock()
		m, n := merges, steps // Close's merge takes its own chunks
		mu.Unlock()
		err := s.Close()
		testHookCheckpoint = nil
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d merges in %d transactions", m, n)
		if m < 5 {
			t.Fatalf("%d merges while appending, want several: checkpoints are due every 4 KiB", m)
		}
		if one := n == m; one != c.one {
			t.Fatalf("%d merges in %d transactions; want one transaction each: %v", m, n, c.one)
		}
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

// Closing the log a checkpoint replaced frees its blocks, which took
// 110 to 190 ms with a seed's logs: appends go on meanwhile, and Close
// waits for it.
func TestAppendsGoOnWhileTheReplacedLogCloses(t *testing.T) {
	s := openT(t, t.TempDir(), smallCheckpoints(2<<10, 4))
	held, release := make(chan struct{}), make(chan struct{})
	var (
		hold             sync.Once
		holding, retired atomic.Bool
	)
	testHookRetiring = func() {
		hold.Do(func() {
			holding.Store(true)
			defer holding.Store(false)
			close(held)
			select { // a committer that closes the log itself is let go, and fails below
			case <-release:
			case <-time.After(5 * time.Second):
			}
		})
		retired.Store(true)
	}
	defer func() { testHookRetiring = nil }()
	for i := 0; ; i++ {
		if i == 2000 {
			t.Fatal("no checkpoint in 2,000 appends")
		}
		appendSome(t, s, "before", 1)
		select {
		case <-held:
		default:
			continue
		}
		break
	}
	acked := appendSome(t, s, "during", 20)
	if !holding.Load() {
		t.Fatal("appends waited for the replaced log to close")
	}
	close(release)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !retired.Load() {
		t.Fatal("Close returned before the replaced log was closed")
	}
	checkAcked(t, s.dir, acked)
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

// A new file has no free page: bbolt then takes each page a commit
// rewrites from the end of the file, and once freed it stays held by the
// pinned checkpoint. A checkpoint comes before they pass an eighth of the
// pages between checkpoints, and the pages it frees are taken and given
// back from then on, however many commits follow.
func TestPagesHeldByThePinStayBounded(t *testing.T) {
	const pages = 4096
	s := openT(t, t.TempDir(), func(o *options) { o.checkpointPages = pages })
	most := 0
	for i := range 1500 {
		mustAppend(t, s, fmt.Sprintf("s-%d", i%3), eventstore.Any, benchEvent())
		most = max(most, s.db.Stats().PendingPageN)
	}
	// a group's commit holds a few pages more before the checkpoint it
	// makes due
	if limit := pages/pendingShare + 16; most > limit {
		t.Fatalf("the pin held %d pages back, more than %d", most, limit)
	}
	if free := s.db.Stats().FreePageN; free == 0 {
		t.Fatal("no free page after the checkpoints: every commit still takes new pages at the end of the file")
	}
}

// A reader older than the pin holds back the pages freed since it began,
// and no checkpoint frees them while it reads: the pages the pin holds
// then make a checkpoint due only once as many pages were written since
// the last one, not after every group.
func TestAnOldReaderDoesNotMakeEachGroupCheckpoint(t *testing.T) {
	const pages = 4096
	s := openT(t, t.TempDir(), func(o *options) { o.checkpointPages = pages })
	mustAppend(t, s, "s", eventstore.Any, benchEvent())
	reader, err := s.db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = reader.Rollback() }()
	checkpoints := 0
	testHookCheckpoint = func(step checkpointStep) {
		if step == stepSynced {
			checkpoints++
		}
	}
	defer func() { testHookCheckpoint = nil }()
	before := s.pagesWritten()
	for i := range 1500 {
		mustAppend(t, s, fmt.Sprintf("s-%d", i%3), eventstore.Any, benchEvent())
	}
	written := s.pagesWritten() - before
	if held := s.db.Stats().PendingPageN; held <= pages/pendingShare {
		t.Fatalf("the reader held back only %d pages: the test does not reach the bound", held)
	}
	if most := written/(pages/pendingShare) + 1; int64(checkpoints) > most {
		t.Fatalf("%d checkpoints for %d pages written with an old reader open: at most %d expected", checkpoints, written, most)
	}
}

// When the process has no file descriptor left (a flood of connections,
// say), a checkpoint cannot open its new log: it is postponed, the appends
// go on through the current log, and the checkpoints resume once
// descriptors are free again. A crash while one is postponed, of the
// process or of the machine, loses no acknowledged append. It used to
// fail the store: every append after it was refused until a restart.
func TestCheckpointsWaitForFileDescriptors(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, smallCheckpoints(2<<10, 4))
	defer s.Close()
	defer func(d time.Duration) { checkpointRetry = d }(checkpointRetry)
	checkpointRetry = 10 * time.Millisecond
	dbPath, walPath := filepath.Join(dir, FileName), filepath.Join(dir, WALFileName)

	// The hooks run in the committer, which opens no file meanwhile: they
	// borrow a descriptor from those the test holds, and give it back.
	var (
		fds             atomic.Pointer[descriptors] // set while they are held
		ranShort        atomic.Bool
		syncing, synced []byte // events.db as the checkpoint under way, and the last one, synced it
		checkpoints     int    // completed since the descriptors ran short
		crash           struct{ db, wal []byte }
		nAcked          atomic.Int64
		crashed         = -1 // appends acknowledged at the crash
		hookErrs        []error
	)
	read := func(path string) (b []byte) {
		var err error
		if d := fds.Load(); d != nil {
			d.borrow(func() { b, err = os.ReadFile(path) })
		} else {
			b, err = os.ReadFile(path)
		}
		hookErrs = append(hookErrs, err)
		return b
	}
	testHookCheckpoint = func(step checkpointStep) {
		switch {
		case step == stepSynced && crashed < 0:
			syncing = read(dbPath)
		case step == stepLogged:
			if ranShort.Load() {
				checkpoints++
			}
			if crashed < 0 {
				synced = syncing
			}
		}
	}
	// the crash: between a group's log write and its commit, once a
	// checkpoint was postponed
	testHookLogged = func() {
		if crashed < 0 && s.postponed.Load() > 0 {
			crash.db, crash.wal = read(dbPath), read(walPath)
			crashed = int(nAcked.Load())
		}
	}
	defer func() { testHookCheckpoint, testHookLogged = nil, nil }()
	acked := appendSome(t, s, "before", 60)
	nAcked.Store(int64(len(acked)))

	starved := exhaustFileDescriptors(t)
	ranShort.Store(true)
	fds.Store(starved) // the committer merges and checkpoints between appends too
	for i, more := 0, 3; more > 0; i++ {
		if i == 300 {
			s.Close()
			starved.release()
			t.Fatal("no checkpoint postponed in 3,000 appends without a free descriptor")
		}
		if s.postponed.Load() > 0 {
			more-- // then appends after the postponement
		}
		starved.fill() // again: a descriptor closed meanwhile (a finalizer's) would be free
		acked = append(acked, appendSome(t, s, "starved", 10)...)
		nAcked.Store(int64(len(acked)))
	}
	fds.Store(nil)
	starved.release()
	time.Sleep(2 * checkpointRetry)
	acked = append(acked, appendSome(t, s, "after", 60)...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	testHookCheckpoint, testHookLogged = nil, nil // the committer is done with them
	if err := errors.Join(hookErrs...); err != nil {
		t.Fatal(err)
	}
	if crashed < 0 {
		t.Fatal("no crash taken while a checkpoint was postponed")
	}
	h, _, err := decodeHeader(crash.wal)
	if err != nil {
		t.Fatal(err)
	}
	if synced == nil || metaTxid(synced, h.pageSize) != h.txid {
		t.Fatalf("no synced file captured for checkpoint %d", h.txid)
	}
	checkCrashed(t, crash.db, crash.wal, synced, h.pageSize, acked[:crashed])
	checkAcked(t, dir, acked)
	if checkpoints < 2 {
		t.Fatalf("%d checkpoints once descriptors ran short: they did not resume when they were free", checkpoints)
	}
}

// exhaustFileDescriptors lowers the process's limit of open files to a few
// above those open and opens files up to it.
func exhaustFileDescriptors(t *testing.T) *descriptors {
	t.Helper()
	d := &descriptors{t: t}
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &d.limit); err != nil {
		t.Fatal(err)
	}
	open, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	low := d.limit
	low.Cur = uint64(len(open) + 16)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	// a test that fails while they are held must not leave the next
	// tests without descriptors
	t.Cleanup(d.release)
	d.fill()
	return d
}

// descriptors are the files that hold a process's descriptors. The test
// fills them while the committer borrows one: mu keeps them apart.
type descriptors struct {
	t     *testing.T
	limit syscall.Rlimit // as it was
	mu    sync.Mutex
	held  []*os.File
	freed bool // released: nothing to fill any more
}

// fill opens files until none can be.
func (d *descriptors) fill() {
	d.mu.Lock()
	err := d.fillLocked()
	d.mu.Unlock()
	if err != nil {
		d.release()
		d.t.Fatal(err)
	}
}

func (d *descriptors) fillLocked() error {
	for !d.freed {
		f, err := os.Open(os.DevNull)
		if errors.Is(err, syscall.EMFILE) {
			return nil
		}
		if err != nil {
			return err
		}
		d.held = append(d.held, f)
	}
	return nil
}

// borrow closes one for the time of open, which opens a file in its place
// and closes it, and fills them again.
func (d *descriptors) borrow(open func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n := len(d.held); n > 0 {
		_ = d.held[n-1].Close()
		d.held = d.held[:n-1]
	}
	open()
	if err := d.fillLocked(); err != nil {
		d.t.Error(err)
	}
}

// release closes them and puts the limit back.
func (d *descriptors) release() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, f := range d.held {
		_ = f.Close()
	}
	d.held, d.freed = nil, true
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &d.limit); err != nil {
		d.t.Fatal(err)
	}
}
