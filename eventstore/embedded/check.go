package embedded

import (
	"bytes"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// maxCheckErrors bounds the report of a badly damaged store.
const maxCheckErrors = 20

// Check verifies the store in one read transaction: bolt's own page
// checks, then that every log record decodes, that revisions are dense
// per stream in log order, and that the streams, revs and ids indexes
// hold exactly the entries the log implies, with the recent entries not
// merged into them yet. It reads the whole file; it is meant for tests and
// maintenance, not for the hot path. It runs in the committer, between
// groups: bbolt's page check reads the free-page list that a write
// transaction (a group's, or a merge's) changes.
func (s *Store) Check() error {
	var err error
	if qerr := s.inCommitter(&appendReq{run: func() { err = s.check() }, done: make(chan struct{})}); qerr != nil {
		return qerr
	}
	return err
}

func (s *Store) check() error {
	var c checker
	err := s.viewIndexed(func(seq uint64) { c.recent = s.recent.snapshot(seq) }, func(tx *bolt.Tx) error {
		if !c.pages(tx) {
			return nil
		}
		b := bucketsOf(tx)
		if b.log == nil || b.streams == nil || b.revs == nil || b.ids == nil {
			c.add("missing bucket")
			return nil
		}
		if w, ok := c.walkLog(b); ok {
			c.indexes(b, w)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return errors.Join(c.errs...)
}

// checker gathers what Check finds, up to maxCheckErrors.
type checker struct {
	errs   []error
	recent recentSnapshot // the index entries not merged into bbolt yet
}

// add records a finding and reports whether there is room for more.
func (c *checker) add(format string, args ...any) bool {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
	return len(c.errs) < maxCheckErrors
}

// pages runs bolt's page checks; false: the report is full.
func (c *checker) pages(tx *bolt.Tx) bool {
	full := false
	for err := range tx.Check() { // drain: the checker reads tx until done
		if !full {
			full = !c.add("bolt: %w", err)
		}
	}
	return !full
}

// logWalk is what a walk of the log found.
type logWalk struct {
	next    map[string]uint64 // stream → next expected revision
	last    uint64            // last position
	records uint64
}

// walkLog checks every log record; false: the report filled up.
func (c *checker) walkLog(b buckets) (logWalk, bool) {
	w := logWalk{next: map[string]uint64{}}
	err := b.log.ForEach(func(k, v []byte) error {
		if !c.record(b, &w, k, v) {
			return errStop
		}
		return nil
	})
	return w, err == nil
}

var errStop = errors.New("stop")

// record checks one log record: its position follows the last, it
// decodes, its revision follows its stream's, and the ids and revs
// indexes point at it. False: the report is full.
func (c *checker) record(b buckets, w *logWalk, k, v []byte) bool {
	pos, err := getU64(k)
	if err != nil {
		return c.add("log key %x: %w", k, err)
	}
	w.records++
	if pos <= w.last && !c.add("log position %d after %d", pos, w.last) {
		return false
	}
	w.last = pos
	r, err := decodeRecord(v)
	if err != nil {
		return c.add("log position %d: %w", pos, err)
	}
	stream := string(r.stream)
	if want := w.next[stream]; r.revision != want && !c.add("position %d: %s revision %d, want %d", pos, stream, r.revision, want) {
		return false
	}
	w.next[stream] = r.revision + 1
	got := b.ids.Get(r.id[:])
	if p, ok := c.recent.ids[r.id]; ok {
		got = u64(p)
	}
	if !bytes.Equal(got, k) && !c.add("ids: %s → %x, want position %d", r.id, got, pos) {
		return false
	}
	got = b.revs.Get(revKey(stream, r.revision))
	if p, ok := c.recent.streams[stream].position(r.revision); ok {
		got = u64(p)
	}
	if !bytes.Equal(got, k) {
		return c.add("revs: %s@%d → %x, want position %d", stream, r.revision, got, pos)
	}
	return true
}

// indexes checks that the indexes hold nothing beyond what the log
// implies, and the log's sequence.
func (c *checker) indexes(b buckets, w logWalk) {
	if seq := b.log.Sequence(); seq < w.last {
		c.add("log sequence %d below last position %d", seq, w.last)
	}
	// Every log record has its ids and revs entry, so equal counts mean
	// there is no stray entry. A recent entry counts unless bbolt holds
	// it too (merged, not dropped yet).
	ids, revs, streams := c.recentOnly(b)
	if n := uint64(b.ids.Stats().KeyN) + ids; n != w.records {
		c.add("ids holds %d entries for %d log records", n, w.records)
	}
	if n := uint64(b.revs.Stats().KeyN) + revs; n != w.records {
		c.add("revs holds %d entries for %d log records", n, w.records)
	}
	if n := b.streams.Stats().KeyN + streams; n != len(w.next) {
		c.add("streams holds %d entries for %d streams in the log", n, len(w.next))
	}
	for stream, n := range w.next {
		v := b.streams.Get([]byte(stream))
		if rs := c.recent.streams[stream]; !rs.empty() {
			v = u64(rs.last())
		}
		last, err := getU64(v)
		if (v == nil || err != nil || last != n-1) && !c.add("streams: %s → %x, want revision %d", stream, v, n-1) {
			return
		}
	}
}

// recentOnly counts the recent ids, revs and streams entries that bbolt
// does not hold.
func (c *checker) recentOnly(b buckets) (ids, revs uint64, streams int) {
	for id := range c.recent.ids {
		if b.ids.Get(id[:]) == nil {
			ids++
		}
	}
	for stream, rs := range c.recent.streams {
		if b.streams.Get([]byte(stream)) == nil {
			streams++
		}
		for i := range rs.pos {
			if b.revs.Get(revKey(stream, rs.base+uint64(i))) == nil {
				revs++
			}
		}
	}
	return ids, revs, streams
}
