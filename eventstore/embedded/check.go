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
// hold exactly the entries the log implies. It reads the whole file; it
// is meant for tests and maintenance, not for the hot path.
func (s *Store) Check() error {
	var errs []error
	add := func(format string, args ...any) bool {
		errs = append(errs, fmt.Errorf(format, args...))
		return len(errs) < maxCheckErrors
	}
	err := s.view(func(tx *bolt.Tx) error {
		full := false
		for err := range tx.Check() { // drain: the checker reads tx until done
			if !full {
				full = !add("bolt: %w", err)
			}
		}
		if full {
			return nil
		}
		logB, streams, revs, ids := tx.Bucket(bucketLog), tx.Bucket(bucketStreams), tx.Bucket(bucketRevs), tx.Bucket(bucketIDs)
		if logB == nil || streams == nil || revs == nil || ids == nil {
			add("missing bucket")
			return nil
		}

		next := make(map[string]uint64) // stream → next expected revision
		var prev, records uint64
		err := logB.ForEach(func(k, v []byte) error {
			pos, err := getU64(k)
			if err != nil {
				if !add("log key %x: %w", k, err) {
					return errStop
				}
				return nil
			}
			records++
			if pos <= prev {
				if !add("log position %d after %d", pos, prev) {
					return errStop
				}
			}
			prev = pos
			r, err := decodeRecord(v)
			if err != nil {
				if !add("log position %d: %w", pos, err) {
					return errStop
				}
				return nil
			}
			stream := string(r.stream)
			if want := next[stream]; r.revision != want {
				if !add("position %d: %s revision %d, want %d", pos, stream, r.revision, want) {
					return errStop
				}
			}
			next[stream] = r.revision + 1
			if got := ids.Get(r.id[:]); !bytes.Equal(got, k) {
				if !add("ids: %s → %x, want position %d", r.id, got, pos) {
					return errStop
				}
			}
			if got := revs.Get(revKey(stream, r.revision)); !bytes.Equal(got, k) {
				if !add("revs: %s@%d → %x, want position %d", stream, r.revision, got, pos) {
					return errStop
				}
			}
			return nil
		})
		if err != nil {
			return nil // stopped early: errs says why
		}
		if seq := logB.Sequence(); seq < prev {
			add("log sequence %d below last position %d", seq, prev)
		}
		// Every log record has its ids and revs entry, so equal counts
		// mean there is no stray entry.
		if n := uint64(ids.Stats().KeyN); n != records {
			add("ids holds %d entries for %d log records", n, records)
		}
		if n := uint64(revs.Stats().KeyN); n != records {
			add("revs holds %d entries for %d log records", n, records)
		}
		if n := streams.Stats().KeyN; n != len(next) {
			add("streams holds %d entries for %d streams in the log", n, len(next))
		}
		for stream, n := range next {
			v := streams.Get([]byte(stream))
			last, err := getU64(v)
			if v == nil || err != nil || last != n-1 {
				if !add("streams: %s → %x, want revision %d", stream, v, n-1) {
					break
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return errors.Join(errs...)
}

var errStop = errors.New("stop")
