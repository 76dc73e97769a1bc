package embedded

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"passerelle/eventstore"
)

// FileName is the name of the database file inside the store directory.
const FileName = "events.db"

// MaxStreamNameLen bounds stream names, which are bolt keys (limit 32 KiB).
const MaxStreamNameLen = 1024

// ErrClosed is returned by operations on a closed Store.
var ErrClosed = errors.New("embedded: store closed")

var (
	bucketLog     = []byte("log")
	bucketStreams = []byte("streams")
	bucketRevs    = []byte("revs")
	bucketIDs     = []byte("ids")
)

// Defaults for group commit, chosen with BenchmarkAppendBatchDelay. A
// commit costs two fdatasyncs (pages, then meta page), so concurrent
// appends should share one; a batch waits about as long as a commit takes
// to gather them. Shorter delays do not help: with the process idle, Go
// fires sub-millisecond timers after about 1ms anyway. A lone append does
// not wait at all (see Append).
const (
	DefaultMaxBatchDelay = time.Millisecond
	DefaultMaxBatchSize  = 256
)

type options struct {
	maxBatchDelay time.Duration
	maxBatchSize  int
	lockTimeout   time.Duration
	maxAppendSize int
}

// Option configures Open.
type Option func(*options)

// WithMaxBatchDelay sets how long an append waits for others to join its
// transaction before committing (default DefaultMaxBatchDelay).
func WithMaxBatchDelay(d time.Duration) Option {
	return func(o *options) { o.maxBatchDelay = d }
}

// WithMaxBatchSize sets how many appends a transaction takes at most; a
// full batch commits without waiting (default DefaultMaxBatchSize).
func WithMaxBatchSize(n int) Option {
	return func(o *options) { o.maxBatchSize = n }
}

// WithMaxAppendSize sets the largest append accepted, in bytes as
// eventstore.AppendSize counts them (default
// eventstore.DefaultMaxAppendSize, as EventStoreDB).
func WithMaxAppendSize(n int) Option {
	return func(o *options) { o.maxAppendSize = n }
}

// WithLockTimeout sets how long Open waits for the file lock held by
// another process (default 5s; 0 waits forever).
func WithLockTimeout(d time.Duration) Option {
	return func(o *options) { o.lockTimeout = d }
}

// Store is the embedded event store. It is safe for concurrent use.
type Store struct {
	db            *bolt.DB
	maxAppendSize int

	inflight atomic.Int64 // appends submitted and not yet returned

	mu      sync.Mutex
	changed chan struct{} // closed and replaced after each commit

	done      chan struct{} // closed by Close
	closeOnce sync.Once
	closeErr  error

	// notifyTx is the write transaction that already has a commit
	// handler; only read and written inside write transactions, which
	// bolt serializes.
	notifyTx *bolt.Tx
}

var _ eventstore.Store = (*Store)(nil)

// Open opens the store in dir, creating the directory and the database if
// needed. Only one process can hold a store open at a time.
func Open(dir string, opts ...Option) (*Store, error) {
	o := options{
		maxBatchDelay: DefaultMaxBatchDelay,
		maxBatchSize:  DefaultMaxBatchSize,
		lockTimeout:   5 * time.Second,
		maxAppendSize: eventstore.DefaultMaxAppendSize,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, &bolt.Options{
		Timeout: o.lockTimeout,
		// The map freelist keeps commits cheap as the file grows.
		FreelistType: bolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: open %s: %w", dir, err)
	}
	db.MaxBatchDelay = o.maxBatchDelay
	db.MaxBatchSize = o.maxBatchSize
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketLog, bucketStreams, bucketRevs, bucketIDs} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("embedded: init %s: %w", dir, err)
	}
	return &Store{db: db, maxAppendSize: o.maxAppendSize, changed: make(chan struct{}), done: make(chan struct{})}, nil
}

// Path is the path of the database file.
func (s *Store) Path() string { return s.db.Path() }

// Close waits for running transactions, closes the file and ends every
// subscription. Calling it again returns the first result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

func (s *Store) closed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// wake returns the channel the next commit closes. Take it before reading
// so that a commit landing in between is not missed.
func (s *Store) wake() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *Store) notify() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

func (s *Store) validate(stream string, events []eventstore.EventData) error {
	if len(stream) > MaxStreamNameLen {
		return fmt.Errorf("%w: stream name longer than %d bytes", eventstore.ErrInvalidAppend, MaxStreamNameLen)
	}
	if err := eventstore.ValidateAppend(stream, events); err != nil {
		return err
	}
	return eventstore.CheckAppendSize(events, s.maxAppendSize)
}

// Append implements eventstore.Store. The events are durable (fsynced)
// when it returns without error. Once submitted, an append is not
// abandoned when ctx ends: its outcome is always reported.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if err := s.validate(stream, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, err
	}
	if s.closed() {
		return eventstore.AppendResult{}, ErrClosed
	}
	var (
		res       eventstore.AppendResult
		domainErr error
	)
	fn := func(tx *bolt.Tx) error {
		// Batch runs this again when another append in the same
		// transaction fails, so start from scratch each time and keep
		// domain errors out of the transaction's fate.
		var err error
		res, domainErr, err = s.appendTx(tx, stream, expected, events)
		return err
	}
	var err error
	if s.inflight.Add(1) == 1 {
		// Alone: nobody would join a batch, and its timer costs more
		// than the commit (sub-millisecond timers fire after ~1ms when
		// the process is idle).
		err = s.db.Update(fn)
	} else {
		err = s.db.Batch(fn)
	}
	s.inflight.Add(-1)
	if err != nil {
		if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
			return eventstore.AppendResult{}, ErrClosed
		}
		return eventstore.AppendResult{}, fmt.Errorf("embedded: append to %s: %w", stream, err)
	}
	if domainErr != nil {
		return eventstore.AppendResult{}, domainErr
	}
	return res, nil
}

// buckets are the store's four buckets in a transaction.
type buckets struct{ log, streams, revs, ids *bolt.Bucket }

func bucketsOf(tx *bolt.Tx) buckets {
	return buckets{tx.Bucket(bucketLog), tx.Bucket(bucketStreams), tx.Bucket(bucketRevs), tx.Bucket(bucketIDs)}
}

// appendTx decides and writes one append. The middle result is a domain
// error (nothing written); the last is a storage failure.
func (s *Store) appendTx(tx *bolt.Tx, stream string, expected eventstore.ExpectedRevision, events []eventstore.EventData) (eventstore.AppendResult, error, error) {
	b := bucketsOf(tx)
	current := int64(-1)
	if v := b.streams.Get([]byte(stream)); v != nil {
		last, err := getU64(v)
		if err != nil {
			return eventstore.AppendResult{}, nil, fmt.Errorf("stream %s: %w", stream, err)
		}
		current = int64(last)
	}
	known, err := storedPositions(b.ids, events)
	if err != nil {
		return eventstore.AppendResult{}, nil, err
	}
	if known != nil {
		return retried(b.log, stream, expected, current, events, known)
	}

	if !expected.Check(current) {
		return eventstore.AppendResult{}, &eventstore.WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: current}, nil
	}

	res, err := write(b, stream, current, events)
	if err != nil {
		return eventstore.AppendResult{}, nil, err
	}
	if s.notifyTx != tx {
		s.notifyTx = tx
		tx.OnCommit(s.notify)
	}
	return res, nil, nil
}

// storedPositions returns the positions of the events whose ID is already
// stored (0 for the others), or nil when none is.
func storedPositions(ids *bolt.Bucket, events []eventstore.EventData) ([]uint64, error) {
	var known []uint64
	for i, e := range events {
		v := ids.Get(e.ID[:])
		if v == nil {
			continue
		}
		if known == nil {
			known = make([]uint64, len(events))
		}
		pos, err := getU64(v)
		if err != nil {
			return nil, fmt.Errorf("event %s: %w", e.ID, err)
		}
		known[i] = pos
	}
	return known, nil
}

// write stores events after revision current of stream, with their index
// entries.
func write(b buckets, stream string, current int64, events []eventstore.EventData) (eventstore.AppendResult, error) {
	// Positions only grow, so full pages are never split again.
	b.log.FillPercent = 1.0
	created := time.Now().UnixNano()
	var pos, rev uint64
	for i, e := range events {
		var err error
		if pos, err = b.log.NextSequence(); err != nil {
			return eventstore.AppendResult{}, err
		}
		rev = uint64(current + 1 + int64(i))
		posKey := u64(pos)
		if err := b.log.Put(posKey, encodeRecord(e.ID, stream, rev, e.Type, created, e.Data, e.Metadata)); err != nil {
			return eventstore.AppendResult{}, err
		}
		if err := b.ids.Put(append([]byte(nil), e.ID[:]...), posKey); err != nil {
			return eventstore.AppendResult{}, err
		}
		if err := b.revs.Put(revKey(stream, rev), posKey); err != nil {
			return eventstore.AppendResult{}, err
		}
	}
	if err := b.streams.Put([]byte(stream), u64(rev)); err != nil {
		return eventstore.AppendResult{}, err
	}
	return eventstore.AppendResult{LastRevision: rev, Position: eventstore.Position(pos)}, nil
}

// retried handles an append some of whose event IDs are already stored.
// It is an idempotent retry when all of them are stored, in order, in this
// stream right after the expected revision (for Any and StreamExists:
// wherever the first one is).
func retried(logB *bolt.Bucket, stream string, expected eventstore.ExpectedRevision, current int64, events []eventstore.EventData, known []uint64) (eventstore.AppendResult, error, error) {
	revisions := make([]uint64, len(events))
	complete := true
	for i, pos := range known {
		if pos == 0 {
			complete = false
			continue
		}
		v := logB.Get(u64(pos))
		if v == nil {
			return eventstore.AppendResult{}, nil, fmt.Errorf("event %s: position %d missing from the log", events[i].ID, pos)
		}
		r, err := decodeRecord(v)
		if err != nil {
			return eventstore.AppendResult{}, nil, fmt.Errorf("position %d: %w", pos, err)
		}
		if string(r.stream) != stream {
			return eventstore.AppendResult{}, fmt.Errorf("%w: event ID %s is already stored in stream %s", eventstore.ErrInvalidAppend, events[i].ID, r.stream), nil
		}
		revisions[i] = r.revision
	}

	var start uint64
	shaped := complete
	if rev, ok := expected.Revision(); ok {
		start = rev + 1
	} else if expected.IsNoStream() {
		start = 0
	} else {
		start = revisions[0] // Any, StreamExists: the stream exists since it holds these IDs
	}
	for i := range revisions {
		if revisions[i] != start+uint64(i) {
			shaped = false
		}
	}
	if shaped {
		n := len(events)
		return eventstore.AppendResult{LastRevision: revisions[n-1], Position: eventstore.Position(known[n-1])}, nil, nil
	}
	if !expected.Check(current) {
		return eventstore.AppendResult{}, &eventstore.WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: current}, nil
	}
	// The condition holds but the IDs are taken: appending would store
	// an event ID twice.
	i := 0
	for known[i] == 0 {
		i++
	}
	return eventstore.AppendResult{}, fmt.Errorf("%w: event ID %s is already stored at revision %d of %s", eventstore.ErrInvalidAppend, events[i].ID, revisions[i], stream), nil
}

// view runs a read transaction, mapping a closed database to ErrClosed.
func (s *Store) view(fn func(*bolt.Tx) error) error {
	if s.closed() {
		return ErrClosed
	}
	err := s.db.View(fn)
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// ctxCheckEvery is how many events a long read decodes between checks of
// its context.
const ctxCheckEvery = 1024

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, dir eventstore.Direction, from uint64, max int) ([]eventstore.RecordedEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if dir != eventstore.Forwards && dir != eventstore.Backwards {
		return nil, fmt.Errorf("embedded: unknown direction %d", dir)
	}
	var out []eventstore.RecordedEvent
	err := s.view(func(tx *bolt.Tx) error {
		b := bucketsOf(tx)
		v := b.streams.Get([]byte(stream))
		if v == nil {
			return fmt.Errorf("%w: %s", eventstore.ErrStreamNotFound, stream)
		}
		last, err := getU64(v)
		if err != nil {
			return err
		}
		from, count := revRange(dir, from, last, max)
		if count == 0 {
			return nil
		}
		out = make([]eventstore.RecordedEvent, 0, count)
		for i := uint64(0); i < count; i++ {
			if err := pollCtx(ctx, i); err != nil {
				return err
			}
			rev := from + i
			if dir == eventstore.Backwards {
				rev = from - i
			}
			e, err := readRev(b, stream, rev)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// revRange returns the revision a stream read starts from and how many
// events it returns, for a stream whose last revision is last.
func revRange(dir eventstore.Direction, from, last uint64, max int) (start, count uint64) {
	if from == eventstore.End || (dir == eventstore.Backwards && from > last) {
		from = last
	}
	if from > last {
		return from, 0
	}
	count = last - from + 1
	if dir == eventstore.Backwards {
		count = from + 1
	}
	if max > 0 && uint64(max) < count {
		count = uint64(max)
	}
	return from, count
}

// pollCtx checks ctx once every ctxCheckEvery events of a long read.
func pollCtx(ctx context.Context, n uint64) error {
	if n%ctxCheckEvery == ctxCheckEvery-1 {
		return ctx.Err()
	}
	return nil
}

// readRev reads revision rev of stream through the revs index.
func readRev(b buckets, stream string, rev uint64) (eventstore.RecordedEvent, error) {
	pv := b.revs.Get(revKey(stream, rev))
	if pv == nil {
		return eventstore.RecordedEvent{}, fmt.Errorf("embedded: %s revision %d missing from the index", stream, rev)
	}
	pos, err := getU64(pv)
	if err != nil {
		return eventstore.RecordedEvent{}, err
	}
	return readAt(b.log, pos)
}

func readAt(logB *bolt.Bucket, pos uint64) (eventstore.RecordedEvent, error) {
	v := logB.Get(u64(pos))
	if v == nil {
		return eventstore.RecordedEvent{}, fmt.Errorf("embedded: position %d missing from the log", pos)
	}
	r, err := decodeRecord(v)
	if err != nil {
		return eventstore.RecordedEvent{}, fmt.Errorf("embedded: position %d: %w", pos, err)
	}
	return r.event(pos), nil
}

// ReadAll implements eventstore.Store.
func (s *Store) ReadAll(ctx context.Context, from eventstore.Position, max int) ([]eventstore.RecordedEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []eventstore.RecordedEvent
	err := s.view(func(tx *bolt.Tx) error {
		_, err := scanLog(ctx, tx, uint64(from), max, func(pos uint64, r record) {
			out = append(out, r.event(pos))
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// scanLog calls fn for up to max (<= 0: all) records after position from
// and returns the position of the last one visited (from if none).
func scanLog(ctx context.Context, tx *bolt.Tx, from uint64, max int, fn func(pos uint64, r record)) (uint64, error) {
	if from == ^uint64(0) {
		return from, nil
	}
	c := tx.Bucket(bucketLog).Cursor()
	last, n := from, 0
	for k, v := c.Seek(u64(from + 1)); k != nil && (max <= 0 || n < max); k, v = c.Next() {
		if err := pollCtx(ctx, uint64(n)); err != nil {
			return last, err
		}
		pos, err := getU64(k)
		if err != nil {
			return last, err
		}
		r, err := decodeRecord(v)
		if err != nil {
			return last, fmt.Errorf("embedded: position %d: %w", pos, err)
		}
		fn(pos, r)
		last = pos
		n++
	}
	return last, nil
}

// Head implements eventstore.Store.
func (s *Store) Head(ctx context.Context) (eventstore.Position, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var head uint64
	err := s.view(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketLog).Cursor().Last()
		if k == nil {
			return nil
		}
		var err error
		head, err = getU64(k)
		return err
	})
	return eventstore.Position(head), err
}
