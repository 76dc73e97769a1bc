package embedded

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Checkpoint thresholds: a checkpoint starts when the log or the bbolt
// pages written since the last one exceed them. They bound replay at
// Open, the file space held back by the pinned checkpoint, and the recent
// index entries kept in memory. Each checkpoint rewrites every index page
// the entries since the last one land on, so the longer the interval,
// the fewer pages per event; the merge runs between groups, so appends
// do not wait for it whatever the interval. 4 MiB is about 6,000 seeded
// events; 16 MiB seeded département 94 for the same CPU and, in that
// seed, no shorter tail of appends. The pages bound the file's growth (256 MiB); they come
// before the log under a server's small groups, each commit rewriting
// the log's last leaf and the branches above it for one or two events.
// Appending single events one at a time into 20,000 (six and a half
// pages an append, merges included), a checkpoint came every 750
// appends at 4,096 pages, every 3,000 at 16,384; each stops the appends
// while it syncs events.db. The open-loop p99 of `passerelle bench
// --only http --rate 1000 --duration 10s` fell from a median of 21.2 ms
// (16.6–26.0) to 12.5 ms (10.2–23.5), lower in six pairs of six, the
// closed-loop throughput unchanged. At 16 MiB of log and 65,536 pages
// the median fell again, to 10.1 ms (9.8–13.6) from 13.4 ms
// (12.2–15.7), lower in three pairs of three, and the file after the
// bench was no larger (219 MB against 236 MB, more offers posted). A
// crash replays at most 16 MiB of log, and the index entries of two
// such intervals are about 3 MB each (40–50 MB each at 256 MiB,
// measured on a national seed).
const (
	walCheckpointBytes = 16 << 20
	walCheckpointPages = 65536
)

// initialMmapBytes is how much of events.db bbolt maps at Open: address
// space, not memory (a page counts once it is read), so that the file
// grows to 64 GiB, several national seasons, without a remap. A remap
// waits for every read transaction, the pinned checkpoint included, so
// a commit that may need one first drops the pin and checkpoints at once
// (mayRemap): with a 1 GiB mapping a national seed did so every GiB, and
// stalled for the seconds that merging all recent entries at once took.
// Where address space is scarce (32 bits) it is 1 GiB; where the kernel
// refuses that much (a limit on address space), Open maps
// fallbackMmapBytes. On Windows bbolt grows the file to its mapping.
var initialMmapBytes = func() int {
	if runtime.GOOS == "windows" {
		return fallbackMmapBytes
	}
	return min(1<<36, math.MaxInt>>1)
}()

const fallbackMmapBytes = 1 << 30

// lockDir takes the store directory's lock, waiting up to timeout (0:
// forever; then bolterrors.ErrTimeout). It is taken before the database file is touched, as a crash
// recovery writes it.
func lockDir(dir string, timeout time.Duration) (*os.File, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return d, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = d.Close()
			return nil, fmt.Errorf("lock %s: %w", dir, err)
		}
		if timeout > 0 && time.Now().After(deadline) {
			_ = d.Close()
			// bbolt's error, which callers already know
			return nil, fmt.Errorf("lock %s: %w", dir, bolterrors.ErrTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// openBolt opens events.db, first bringing it back to the last checkpoint
// when a write-ahead log was left behind, and returns the log's entries
// for Store.replay.
func openBolt(dir string, o options) (db *bolt.DB, mapped int64, entries []walEntry, err error) {
	path := filepath.Join(dir, FileName)
	h, entries, err := readWAL(filepath.Join(dir, WALFileName))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, 0, nil, err
	default:
		if err := h.belongsTo(path); err != nil {
			return nil, 0, nil, err
		}
		if err := restoreMeta(path, h); err != nil {
			return nil, 0, nil, fmt.Errorf("restore checkpoint: %w", err)
		}
	}
	mmap, size := o.initialMmap, 0
	if fi, err := os.Stat(path); err == nil {
		size = int(fi.Size())
		mmap = max(mmap, 2*size)
	}
	db, err = openMapped(path, o, mmap)
	if errors.Is(err, syscall.ENOMEM) && mmap > fallbackMmapBytes {
		// address space refused (a limit on it): map less, and remap
		// as the file grows
		mmap = max(fallbackMmapBytes, 2*size)
		db, err = openMapped(path, o, mmap)
	}
	if err != nil {
		return nil, 0, nil, err
	}
	if err := db.Update(createBuckets); err != nil {
		_ = db.Close()
		return nil, 0, nil, err
	}
	return db, int64(mmap), entries, nil
}

func openMapped(path string, o options, mmap int) (*bolt.DB, error) {
	return bolt.Open(path, 0o600, &bolt.Options{
		Timeout: o.lockTimeout,
		// The map freelist keeps commits cheap as the file grows.
		FreelistType: bolt.FreelistMapType,
		// Room to grow while a checkpoint is pinned: bbolt cannot remap
		// the file while a read transaction is open.
		InitialMmapSize: mmap,
	})
}

func createBuckets(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketLog, bucketStreams, bucketRevs, bucketIDs} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

// replay writes the logged events the database does not hold yet into
// the log, and the index entries of every logged event into the recent
// ones, which the checkpoint Open takes next merges. A log may start
// before the checkpoint's last position: a checkpoint taken while index
// entries were still in memory carries their events over into the log it
// starts (see checkpointAt), and those are in bbolt's log already. The
// checkpoint the log starts from stays pinned meanwhile, so that neither
// writes over its pages: a crash during either leaves it whole for the
// next Open to start from again. Open calls it before the committer
// starts.
func (s *Store) replay(entries []walEntry) error {
	pin, err := s.db.Begin(false)
	if err != nil {
		return err
	}
	s.indexed = pin.Bucket(bucketLog).Sequence()
	if len(entries) == 0 {
		return pin.Rollback()
	}
	s.pin = pin
	s.indexed = min(s.indexed, entries[0].pos-1)
	return s.db.Update(func(tx *bolt.Tx) error {
		b := s.bucketsOf(tx)
		b.log.FillPercent = 1.0
		size := 0
		for _, e := range entries {
			r, err := decodeRecord(e.record)
			if err != nil {
				return fmt.Errorf("write-ahead log: position %d: %w", e.pos, err)
			}
			if seq := b.log.Sequence(); e.pos > seq {
				if e.pos != seq+1 {
					return fmt.Errorf("write-ahead log: position %d after %d", e.pos, seq)
				}
				if err := b.log.SetSequence(e.pos); err != nil {
					return err
				}
				if err := b.log.Put(u64(e.pos), e.record); err != nil {
					return err
				}
				size += len(e.record)
			}
			b.recent.add(r.id, string(r.stream), r.revision, e.pos)
		}
		if s.mayRemap(tx, 0, size) {
			s.unpin() // see writeGroup
		}
		return nil
	})
}

// A checkpoint's merge runs beside the appends, in the committer's time
// between groups: the current generation of recent index entries is
// frozen and merged into bbolt a transaction at a time (mergeStep). Then
// checkpointAt syncs events.db at the last commit, pins it, and starts a
// fresh write-ahead log from it, carrying over the events whose index
// entries are still only in memory: those the groups committed during
// the merge added. Until the new log is in place the previous log and
// its pinned checkpoint stay the way back after a crash.

// afterCommit runs after each group's commit: it checkpoints at once when
// the commit dropped the pin to grow bbolt's mapping (no other
// transaction may come first) or a flush asked for it, and starts one
// when due.
func (s *Store) afterCommit(flush bool) error {
	switch {
	case s.pin == nil:
		if err := s.checkpointAt(); err != nil {
			return err
		}
		// The new log carries every event not indexed in bbolt: merge
		// them, or each checkpoint until the file outgrows the mapping
		// would carry more.
		s.startMerge()
		return nil
	case flush:
		return s.checkpointNow()
	case s.merging == nil && s.checkpointDue():
		if s.startMerge() {
			return nil
		}
		if err := s.checkpointAt(); err != nil && !s.postponable(err) {
			return err
		}
	}
	return nil
}

// startMerge freezes the current generation of recent entries and starts
// merging it, unless a merge is under way; false when none runs (nothing
// was waiting).
func (s *Store) startMerge() bool {
	if s.merging == nil && s.recent.freeze() {
		s.merging = s.recent.merge()
		s.startNextWAL(s.merging.g.last)
	}
	return s.merging != nil
}

// startNextWAL starts the log of the checkpoint that will end the merge
// of the entries up to position from.
func (s *Store) startNextWAL(from uint64) {
	s.dropNextWAL()
	if s.wal == nil {
		return // Open's checkpoint: nothing is committed meanwhile
	}
	if n, err := startNextWAL(s.dir, s.db.Info().PageSize, from, !s.unsynced); err == nil {
		s.next = n // else the checkpoint carries the records over from bbolt
	}
}

func (s *Store) dropNextWAL() {
	if s.next != nil {
		s.next.abandon()
		s.next = nil
	}
}

// advance does one step of the merge under way, if any: a transaction of
// at least n entries, and the checkpoint once the merge is complete.
func (s *Store) advance(n int) {
	if s.failed != nil || s.merging == nil {
		return
	}
	err := s.mergeStep(max(n, s.mergeChunk))
	if err == nil && s.merging == nil {
		err = s.checkpointAt()
	}
	if err != nil && !s.postponable(err) {
		s.failed = fmt.Errorf("embedded: checkpoint: %w", err)
	}
}

// postponable tells whether a checkpoint that failed with err can wait
// for the next commit that finds one due. It can when no file descriptor
// was left to open its new log (the process's or the system's limit,
// reached by a flood of connections, say) and the previous checkpoint is
// still pinned: a checkpoint opens no other file (the directory and
// events.db are held open from Open), so it failed before writing
// anything, and the current log is still the way back after a crash.
// Appends go on meanwhile, through the current log, and the checkpoint is
// tried again checkpointRetry later. Any other failure (a sync's above
// all) fails the store.
func (s *Store) postponable(err error) bool {
	outOfDescriptors := errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
	if s.pin == nil || !outOfDescriptors {
		return false
	}
	s.postponed.Add(1)
	s.retryAt = time.Now().Add(checkpointRetry)
	return true
}

// checkpointRetry is how long a postponed checkpoint waits before it is
// tried again (each try syncs events.db); tests shorten it.
var checkpointRetry = time.Second

// checkpointNow completes a checkpoint with every recent index entry
// merged, before it returns: at Open, for a flush, and at Close.
func (s *Store) checkpointNow() error {
	if s.pin == nil && s.recent.pending() > 0 {
		// The replay dropped the pin: no merge transaction may come
		// before a checkpoint.
		if err := s.checkpointAt(); err != nil {
			return err
		}
	}
	for s.startMerge() {
		for s.merging != nil {
			if err := s.mergeStep(s.quietChunk); err != nil {
				return fmt.Errorf("embedded: checkpoint: merge the index: %w", err)
			}
		}
	}
	return s.checkpointAt()
}

// defaultMergeChunk is the entries a merge transaction writes (more when
// the group before it added more, so that a merge ends under any load):
// an append arriving meanwhile waits for one such transaction. 128 kept
// the tail of BenchmarkAppendOpenLoop lower than 512 (p99 14–17 ms against
// 20–22 ms, max 36–40 ms against 52–56 ms, on a disk whose raw fdatasync
// p99 was 25–35 ms then) for the same CPU per seeded event.
const defaultMergeChunk = 128

// defaultQuietChunk is the entries a merge transaction writes when no
// append waits for it: at Open, at Close and for a flush. Each commit has
// its fixed cost: a seed that left up to a GiB of log to merge
// (`passerelle seed --national --scale 0.3`, a checkpoint every GiB) spent
// 9.6 s after its commands, closing its store above all, against 62 s
// with 128 entries a transaction (one run each). The pages a transaction
// touches are held in memory until it commits: at most one per entry,
// 64 MiB here.
const defaultQuietChunk = 16_384

// mergeStep writes the next n entries or so of the merge under way, in a
// transaction committed without a sync like a group's: until a
// checkpoint after it completes, the log still holds every event they
// index, a crash replays them, and the pinned checkpoint keeps the merge
// from writing over its pages. A transaction that may grow bbolt's
// mapping (which waits for the pin) drops the pin, writes every entry
// left, and checkpoints at once.
func (s *Store) mergeStep(n int) error {
	m := s.merging
	err := s.db.Update(func(tx *bolt.Tx) error {
		if s.mayRemap(tx, min(m.puts, n), 0) {
			// Safe within this transaction: bbolt chose the pages it
			// may reuse when it began, with the pin open.
			s.unpin()
			return m.write(bucketsOf(tx), 0)
		}
		return m.write(bucketsOf(tx), n)
	})
	if err != nil {
		return err
	}
	if testHookCheckpoint != nil {
		step := stepMerged
		if m.done() {
			step = stepMergedLast
		}
		testHookCheckpoint(step)
	}
	if m.done() {
		s.indexed = m.g.last
		s.recent.dropOld()
		s.merging = nil
	}
	if s.pin == nil {
		return s.checkpointAt()
	}
	return nil
}

// testHookRetiring, set by tests, runs before a replaced log is closed.
var testHookRetiring func()

// testHookCheckpoint, set by tests, runs in the committer at each step of
// a checkpoint.
var testHookCheckpoint func(checkpointStep)

type checkpointStep int

const (
	stepMerged     checkpointStep = iota // a transaction of a merge committed
	stepMergedLast                       // the last one
	stepSynced                           // events.db synced, the new log not written
	stepLogged                           // the new log in place, the old checkpoint still pinned
)

// checkpointAt syncs events.db at the last commit, pins that commit, and
// writes the write-ahead log that starts from it, with the events whose
// index entries are still in memory carried over (see replay). Once the
// new log is in place the previous checkpoint is unpinned. It must come
// right after a commit that dropped the pin, before any other
// transaction.
func (s *Store) checkpointAt() error {
	pin, err := s.db.Begin(false)
	if err != nil {
		return err
	}
	txid := uint64(pin.ID())
	// read before the next commit but one writes over it
	meta, err := readMeta(s.file, s.db.Info().PageSize, txid)
	if err == nil {
		err = s.db.Sync()
	}
	var w *wal
	if err == nil {
		if testHookCheckpoint != nil {
			testHookCheckpoint(stepSynced)
		}
		w, err = s.newWAL(txid, meta)
	}
	if err != nil {
		_ = pin.Rollback()
		return fmt.Errorf("embedded: checkpoint: %w", err)
	}
	if testHookCheckpoint != nil {
		testHookCheckpoint(stepLogged)
	}
	s.unpin()
	if old := s.wal; old != nil {
		// Its name now holds the new log: closing it frees its blocks,
		// which took 110 to 190 ms a checkpoint of a département seed
		// (logs of 100 to 150 MB) and stopped the appends meanwhile.
		s.retiring.Go(func() {
			if testHookRetiring != nil {
				testHookRetiring()
			}
			_ = old.close()
		})
	}
	s.wal, s.pin, s.pagesAtCheckpoint = w, pin, s.pagesWritten()
	s.mapped = max(s.mapped, mappedAtLeast(pin.Size()))
	return nil
}

// newWAL writes the write-ahead log of the checkpoint at transaction
// txid: its meta page, then the log's records after s.indexed.
func (s *Store) newWAL(txid uint64, meta []byte) (*wal, error) {
	ino, err := inode(s.db.Path())
	if err != nil {
		return nil, err
	}
	h := walHeader{pageSize: s.db.Info().PageSize, txid: txid, inode: ino, meta: meta}
	if n := s.next; n != nil {
		s.next = nil
		if n.from == s.indexed {
			if n.frames {
				s.loggedAhead++
			}
			return n.finish(s.lock, h)
		}
		n.abandon() // a checkpoint before its merge ended (see mayRemap)
	}
	return createWAL(s.lock, h, s.walRoom(), func() (carried [][]byte, err error) {
		err = s.db.View(func(tx *bolt.Tx) error {
			carried, err = carryOver(tx.Bucket(bucketLog), s.indexed)
			return err
		})
		return carried, err
	})
}

// carryOver returns the log's records after position from as frame
// payloads of about walCarryFrame bytes.
func carryOver(logB *bolt.Bucket, from uint64) ([][]byte, error) {
	var frames [][]byte
	var payload []byte
	c := logB.Cursor()
	for k, v := c.Seek(u64(from + 1)); k != nil; k, v = c.Next() {
		pos, err := getU64(k)
		if err != nil {
			return nil, err
		}
		payload = appendEntry(payload, pos, v)
		if len(payload) >= walCarryFrame {
			frames, payload = append(frames, payload), nil
		}
	}
	if len(payload) > 0 {
		frames = append(frames, payload)
	}
	return frames, nil
}

const walCarryFrame = 1 << 20

// unpin drops the pinned checkpoint.
func (s *Store) unpin() {
	if s.pin != nil {
		_ = s.pin.Rollback()
		s.pin = nil
	}
}

// checkpointDue reports whether the log or the pages written since the
// last checkpoint passed their threshold.
func (s *Store) checkpointDue() bool {
	if time.Now().Before(s.retryAt) {
		return false
	}
	bytes, pages := s.checkpointInterval()
	st := s.db.Stats()
	written, held := st.TxStats.GetWrite()-s.pagesAtCheckpoint, int64(st.PendingPageN)
	return s.wal.size-s.wal.start > bytes || written > pages ||
		min(held, written) > pages/pendingShare
}

// pendingShare bounds the pages the pin holds back to a share of the
// pages between checkpoints. bbolt records which transaction allocated
// a page only when it takes it from its free list; a page it adds at
// the end of the file counts as older than every reader, so once
// freed, it waits for the pin to move. With no free page left (a new
// or growing file) every commit's rewritten pages then pile up (4 for a
// lone append) and bbolt walks them all at each commit: in
// BenchmarkAppend/writers=1 an append cost 361 µs on average over 1,000
// appends and 512 µs over 16,000, now 309 and 272 µs. A checkpoint
// frees them all; the free pages it leaves are taken with their
// transaction recorded, and given back as soon as the commit that frees
// them is older than every reader. The pages written since the
// checkpoint bound it too: a reader older than the pin (a long scan)
// holds back pages no checkpoint frees, and without that bound made a
// checkpoint follow every group while it read.
const pendingShare = 8

// checkpointInterval is the thresholds, grown with events.db to a
// checkpointShare of its size, up to maxCheckpointBytes of log. Index
// keys are random (event ids, stream names), so a merge of k entries into
// a file of L index leaves rewrites about min(k, L) leaves: with a fixed
// interval, the pages written per event grow with the file, to about one
// per entry nationally (merging was then most of a seed's CPU and
// allocations). An interval in proportion to the file keeps that ratio
// flat. It costs a longer replay at Open after a crash and more entries
// in memory (two generations of at most 256 MiB of log each: about
// 450,000 events each). The pages are then a page per KiB of log, when
// that is more than the fixed threshold.
func (s *Store) checkpointInterval() (bytes, pages int64) {
	bytes, pages = s.checkpointBytes, s.checkpointPages
	if s.checkpointShare <= 0 || s.pin == nil {
		return bytes, pages
	}
	if grown := min(s.pin.Size()/s.checkpointShare, maxCheckpointBytes); grown > bytes {
		return grown, max(pages, grown/1024)
	}
	return bytes, pages
}

const (
	// defaultCheckpointShare: a checkpoint every sixteenth of events.db
	// once that is more than 16 MiB of log (past 256 MiB of file)
	defaultCheckpointShare = 16
	maxCheckpointBytes     = 256 << 20
)

// walRoom is the room of a log made whole (see walGrowBytes): what it is
// expected to hold until the next checkpoint, the records of the merge
// that precedes it included.
func (s *Store) walRoom() int64 {
	if s.unsynced {
		// no frame is synced: zeros ahead would save no write, and a
		// seed's interval of 1 GiB wrote 1.25 GiB of them at every Open
		return 64 << 10
	}
	bytes, _ := s.checkpointInterval()
	return max(bytes+bytes/4, 64<<10)
}

func (s *Store) pagesWritten() int64 {
	st := s.db.Stats()
	return st.TxStats.GetWrite()
}

// mayRemap reports whether committing tx could make bbolt grow its
// mapping, which waits for every read transaction, the pin included. The
// bound is generous: twice the records it writes, eight pages per index
// entry (a leaf and its parents: only a merge writes them), 64 pages and
// the freelist. While a commit's bound reaches past the mapping, each
// one checkpoints: a group's records alone keep that window to a few
// MiB, where counting eight pages per event of a seed's groups made it
// tens of MiB wide.
func (s *Store) mayRemap(tx *bolt.Tx, entries, recordBytes int) bool {
	size := tx.Size()
	grow := int64(2*recordBytes) + int64(entries*8+64)*int64(s.db.Info().PageSize) + size/256
	return size+grow >= s.mapped
}

// mappedAtLeast is the least size bbolt maps a file whose high water
// mark is high at: its mapping always extends past the mark, and is 32
// KiB doubled up to 1 GiB, then a multiple of 1 GiB (bbolt's mmapSize).
// Taking the mark itself as the bound would make every commit past the
// first mapping look as if it might grow it, and drop the pin.
func mappedAtLeast(high int64) int64 {
	const step = 1 << 30
	if high > step {
		return (high + step - 1) / step * step
	}
	size := int64(32 << 10)
	for size < high {
		size *= 2
	}
	return size
}

// closeDurable ends the write-ahead log at Close: a last checkpoint
// merges every recent index entry, and events.db then holds them all, so
// the log is no longer needed. After a failure the log is kept for Open
// to recover from.
func (s *Store) closeDurable() error {
	defer s.dropNextWAL()
	if s.wal == nil || s.failed != nil {
		s.unpin()
		if s.wal == nil {
			return nil
		}
		return s.wal.close()
	}
	err := s.checkpointNow()
	s.unpin()
	if err != nil {
		return errors.Join(err, s.wal.close())
	}
	// The free pages, kept in memory since Open, are written once, so
	// that the next Open reads them instead of walking every page.
	s.db.NoFreelistSync = false
	err = s.db.Update(func(*bolt.Tx) error { return nil })
	if err == nil {
		err = s.db.Sync()
	}
	if err == nil {
		err = os.Remove(filepath.Join(s.dir, WALFileName))
	}
	if err == nil {
		err = s.lock.Sync()
	}
	return errors.Join(err, s.wal.close())
}
