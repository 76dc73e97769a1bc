package embedded

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Checkpoint thresholds: events.db is synced and the write-ahead log
// started over when the log or the bbolt pages written since the last
// checkpoint exceed them. They bound replay at Open, the file space held
// back by the pinned checkpoint, and the recent index entries kept in
// memory. Each checkpoint rewrites every index page the entries since
// the last one land on, so the longer the interval, the fewer pages per
// event; but appends wait while the merge runs, about 8 µs per event
// merged. 4 MiB is about 6,000 seeded events: a pause of about 50 ms
// (16 MiB paused commands for 150–240 ms, and doubled their p99 at half
// of capacity, for 3% less CPU per seeded event).
const (
	walCheckpointBytes  = 4 << 20
	walCheckpointPages  = 4096
	minInitialMmapBytes = 1 << 30
)

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
	mmap := o.initialMmap
	if fi, err := os.Stat(path); err == nil {
		mmap = max(mmap, 2*int(fi.Size()))
	}
	db, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout: o.lockTimeout,
		// The map freelist keeps commits cheap as the file grows.
		FreelistType: bolt.FreelistMapType,
		// Room to grow while a checkpoint is pinned: bbolt cannot remap
		// the file while a read transaction is open.
		InitialMmapSize: mmap,
	})
	if err != nil {
		return nil, 0, nil, err
	}
	if err := db.Update(createBuckets); err != nil {
		_ = db.Close()
		return nil, 0, nil, err
	}
	return db, int64(mmap), entries, nil
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
// the log, and their index entries into the recent ones, which the
// checkpoint Open takes next merges. The checkpoint the log starts from
// stays pinned meanwhile, so that neither writes over its pages: a crash
// during either leaves it whole for the next Open to start from again.
// Open calls it before the committer starts.
func (s *Store) replay(entries []walEntry) error {
	if len(entries) == 0 {
		return nil
	}
	pin, err := s.db.Begin(false)
	if err != nil {
		return err
	}
	s.pin = pin
	return s.db.Update(func(tx *bolt.Tx) error {
		b := s.bucketsOf(tx)
		b.log.FillPercent = 1.0
		events, size := 0, 0
		for _, e := range entries {
			seq := b.log.Sequence()
			if e.pos <= seq {
				continue
			}
			if e.pos != seq+1 {
				return fmt.Errorf("write-ahead log: position %d after %d", e.pos, seq)
			}
			r, err := decodeRecord(e.record)
			if err != nil {
				return fmt.Errorf("write-ahead log: position %d: %w", e.pos, err)
			}
			if err := b.log.SetSequence(e.pos); err != nil {
				return err
			}
			if err := b.log.Put(u64(e.pos), e.record); err != nil {
				return err
			}
			b.recent.add(r.id, string(r.stream), r.revision, e.pos)
			events, size = events+1, size+len(e.record)
		}
		if s.mayRemap(tx, events, size) {
			s.unpin() // see writeGroup
		}
		return nil
	})
}

// checkpoint merges the recent index entries into bbolt, syncs
// events.db, starts the write-ahead log over from the last commit, and
// pins that commit's pages until the next checkpoint. Only the committer
// (or Open, before it starts) calls it.
func (s *Store) checkpoint() error {
	if err := s.mergeRecent(); err != nil {
		return fmt.Errorf("embedded: checkpoint: merge the index: %w", err)
	}
	pin, err := s.db.Begin(false)
	if err != nil {
		return err
	}
	txid, high := uint64(pin.ID()), pin.Size()
	err = s.db.Sync()
	var meta []byte
	if err == nil {
		meta, err = readMeta(s.db.Path(), s.db.Info().PageSize, txid)
	}
	var ino uint64
	if err == nil {
		ino, err = inode(s.db.Path())
	}
	var w *wal
	if err == nil {
		w, err = createWAL(s.dir, walHeader{pageSize: s.db.Info().PageSize, txid: txid, inode: ino, meta: meta})
	}
	if err != nil {
		_ = pin.Rollback()
		return fmt.Errorf("embedded: checkpoint: %w", err)
	}
	s.unpin()
	if s.wal != nil {
		_ = s.wal.close()
	}
	s.wal, s.pin, s.pagesAtCheckpoint = w, pin, s.pagesWritten()
	// bbolt's mapping always extends past the high water mark.
	s.mapped = max(s.mapped, high)
	return nil
}

// defaultMergeChunk bounds the entries one transaction of a merge
// writes: bbolt holds every page a transaction dirties in memory until it
// commits.
const defaultMergeChunk = 4096

// mergeRecent writes the recent index entries into bbolt, in
// transactions of about mergeChunk entries committed without a sync like
// a group's: until the checkpoint that follows is complete, the log still
// holds every event they index, a crash replays them, and the pinned
// checkpoint keeps the merge from writing over its pages. A transaction
// that may grow bbolt's mapping (which waits for the pin) drops the pin
// and writes every entry left: no other commit may then come before the
// checkpoint. testHookMerged, set by tests, runs after each transaction
// of the merge.
func (s *Store) mergeRecent() error {
	if s.recent.events == 0 {
		return nil
	}
	m := s.recent.merge()
	for !m.done() {
		err := s.db.Update(func(tx *bolt.Tx) error {
			if s.pin == nil || s.mayRemap(tx, min(m.puts, s.mergeChunk), 0) {
				// Safe within this transaction: bbolt chose the pages it
				// may reuse when it began, with the pin open.
				s.unpin()
				return m.write(bucketsOf(tx), 0)
			}
			return m.write(bucketsOf(tx), s.mergeChunk)
		})
		if err != nil {
			return err
		}
		if testHookMerged != nil {
			testHookMerged(m.done())
		}
	}
	s.recent.reset()
	return nil
}

// testHookMerged, set by tests, runs after each transaction of a merge of
// the recent index entries, before events.db is synced; last tells the
// merge is complete.
var testHookMerged func(last bool)

func (s *Store) unpin() {
	if s.pin != nil {
		_ = s.pin.Rollback()
		s.pin = nil
	}
}

// checkpointDue reports whether the log or the pages written since the
// last checkpoint passed their threshold.
func (s *Store) checkpointDue() bool {
	return s.wal.size > walCheckpointBytes || s.pagesWritten()-s.pagesAtCheckpoint > walCheckpointPages
}

func (s *Store) pagesWritten() int64 {
	st := s.db.Stats()
	return st.TxStats.GetWrite()
}

// mayRemap reports whether committing tx could make bbolt grow its
// mapping, which waits for every read transaction, the pin included. The
// bound is generous: every record, and eight pages per event (its index
// leaves and their parents), plus the freelist.
func (s *Store) mayRemap(tx *bolt.Tx, events, recordBytes int) bool {
	size := tx.Size()
	grow := int64(2*recordBytes) + int64(events*8+64)*int64(s.db.Info().PageSize) + size/256
	return size+grow >= s.mapped
}

// closeDurable ends the write-ahead log at Close: events.db is synced,
// so the log is no longer needed. After a failure the log is kept for
// Open to recover from.
func (s *Store) closeDurable() error {
	if s.wal == nil {
		s.unpin()
		return nil
	}
	if s.failed != nil {
		s.unpin()
		return s.wal.close()
	}
	// with the pin still open, so that the merge writes over no page of
	// the checkpoint the log starts from
	err := s.mergeRecent()
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
		err = syncDir(s.dir)
	}
	return errors.Join(err, s.wal.close())
}
