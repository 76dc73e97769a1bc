package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"slices"
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

// DefaultMaxBatchSize bounds how many appends one transaction takes.
const DefaultMaxBatchSize = 256

// groupLinger bounds how long the committer waits for a group to grow back
// to the size of the previous one: a fraction of a commit's sync.
const groupLinger = time.Millisecond

type options struct {
	maxBatchSize  int
	lockTimeout   time.Duration
	maxAppendSize int
	linger        time.Duration
	initialMmap   int // bytes bbolt maps at first; tests make it small
	mergeChunk    int // entries per transaction of a merge; tests make it small
	quietChunk    int // the same when no append waits (Open, Close, flush); tests too
	// checkpoint thresholds (walCheckpointBytes, walCheckpointPages);
	// tests make them small
	checkpointBytes, checkpointPages int64
	checkpointShare                  int64 // see checkpointInterval; 0: fixed thresholds
	unsynced                         bool  // see WithUnsyncedAppends
}

// Option configures Open.
type Option func(*options)

// WithMaxBatchSize sets how many appends a transaction takes at most
// (default DefaultMaxBatchSize).
func WithMaxBatchSize(n int) Option {
	return func(o *options) { o.maxBatchSize = n }
}

// WithMaxAppendSize sets the largest append accepted, in bytes as
// eventstore.AppendSize counts them (default
// eventstore.DefaultMaxAppendSize, as EventStoreDB).
func WithMaxAppendSize(n int) Option {
	return func(o *options) { o.maxAppendSize = n }
}

// WithCheckpointEvery makes a checkpoint due every bytes of log (and
// bytes/1024 bbolt pages written) rather than every 16 MiB. A bulk load
// (a seed) merges its index entries in fewer, larger merges, each page
// rewritten for more entries, at the cost of more entries in memory (two
// generations of bytes of log) and a longer replay after a crash.
func WithCheckpointEvery(bytes int64) Option {
	return func(o *options) {
		o.checkpointBytes, o.checkpointPages = bytes, bytes/1024
	}
}

// WithUnsyncedAppends acknowledges an append once its group's frame is
// written to the log, without waiting for the disk: a crash of the
// process loses nothing (the frame is in the system's cache), one of the
// machine may lose the appends since the last checkpoint. For a bulk load
// that is started again from an empty store when it does not finish (a
// seed); Close and checkpoints still sync events.db.
func WithUnsyncedAppends() Option {
	return func(o *options) { o.unsynced = true }
}

// WithMergeChunk sets how many index entries a merge transaction writes
// between groups while appends go on (default 128: an append arriving
// meanwhile waits for one such transaction). A bulk load that waits on
// no single append (a seed) takes fewer, larger ones: each commit has
// its fixed cost, and each rewrites the pages its entries land on.
func WithMergeChunk(n int) Option {
	return func(o *options) { o.mergeChunk = n }
}

// WithLockTimeout sets how long Open waits for the file lock held by
// another process (default 5s; 0 waits forever).
func WithLockTimeout(d time.Duration) Option {
	return func(o *options) { o.lockTimeout = d }
}

// Store is the embedded event store. It is safe for concurrent use.
type Store struct {
	db            *bolt.DB
	file          *os.File // events.db, read only: checkpoints read meta pages, writebacks start
	dir           string
	lock          *os.File // the directory's lock
	maxAppendSize int
	maxBatchSize  int
	linger        time.Duration
	mergeChunk    int
	quietChunk    int
	// checkpoint thresholds
	checkpointBytes, checkpointPages, checkpointShare int64
	unsynced                                          bool // see WithUnsyncedAppends

	// queue takes appends to the committer; submitMu guards sending on it
	// against Close closing it.
	queue     chan *appendReq
	submitMu  sync.RWMutex
	submitted bool // Close has begun: no more sends
	committed chan struct{}
	retiring  sync.WaitGroup // closing the logs checkpoints replaced
	commits   atomic.Int64   // transactions committed, for tests
	postponed atomic.Int64   // checkpoints postponed (see postponable)
	payload   []byte         // the committer's frame memory, reused by each group

	// Owned by the committer (and Open before it starts).
	wal               *wal
	pin               *bolt.Tx  // read transaction holding the checkpoint's pages
	mapped            int64     // a lower bound of the size bbolt maps
	pagesAtCheckpoint int64     // bbolt page writes counted at the checkpoint
	pagesAtWriteback  int64     // and at the last writeBack
	failed            error     // a commit failed after its log write: no more commits
	indexed           uint64    // every event up to this position has its index entries in bbolt
	merging           *merge    // the merge of the older recent entries under way, or nil
	next              *nextWAL  // the log of the checkpoint that will end it, or nil
	loggedAhead       int       // checkpoints whose log took its frames from next, for tests
	retryAt           time.Time // no checkpoint before, after one was postponed

	mu      sync.Mutex
	changed chan struct{} // closed and replaced after each commit

	tails   tails       // the last revisions of the streams written lately
	written []streamRev // the committer's list of them, reused by each group

	busy   atomic.Int64 // nanoseconds, see CommitterBusy
	syncs  logSyncs
	recent *recentIndex // index entries since the last checkpoint
	added  []recentAdd  // the committer's list of this group's, reused by each group
	group  *groupIndex  // the committer's, reused by each group

	ids      *keyFilter     // the IDs stored, for the committer (see keyFilter)
	names    *keyFilter     // the streams stored (see keyFilter)
	scanning sync.WaitGroup // the scans filling ids and names, which Close waits for

	done      chan struct{} // closed by Close
	closeOnce sync.Once
	closeErr  error
}

var _ eventstore.Store = (*Store)(nil)

// Open opens the store in dir, creating the directory and the database if
// needed. Only one process can hold a store open at a time.
func Open(dir string, opts ...Option) (*Store, error) {
	o := options{
		maxBatchSize:    DefaultMaxBatchSize,
		lockTimeout:     5 * time.Second,
		maxAppendSize:   eventstore.DefaultMaxAppendSize,
		linger:          groupLinger,
		initialMmap:     initialMmapBytes,
		mergeChunk:      defaultMergeChunk,
		quietChunk:      defaultQuietChunk,
		checkpointBytes: walCheckpointBytes, checkpointPages: walCheckpointPages,
		checkpointShare: defaultCheckpointShare,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	lock, err := lockDir(dir, o.lockTimeout)
	if err != nil {
		return nil, fmt.Errorf("embedded: open %s: %w", dir, err)
	}
	db, mapped, entries, err := openBolt(dir, o)
	if err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("embedded: open %s: %w", dir, err)
	}
	// Opened once, like the directory's lock, so that a checkpoint opens
	// no file but its new log: see postponable.
	file, err := os.Open(db.Path())
	if err != nil {
		_ = db.Close()
		_ = lock.Close()
		return nil, fmt.Errorf("embedded: open %s: %w", dir, err)
	}
	s := &Store{
		db: db, dir: dir, lock: lock, file: file, mapped: mapped,
		maxAppendSize: o.maxAppendSize, maxBatchSize: max(o.maxBatchSize, 1), linger: o.linger,
		mergeChunk: max(o.mergeChunk, 1), quietChunk: max(o.quietChunk, 1), checkpointBytes: o.checkpointBytes, checkpointPages: o.checkpointPages,
		checkpointShare: o.checkpointShare, unsynced: o.unsynced,
		queue: make(chan *appendReq, 4*o.maxBatchSize), committed: make(chan struct{}),
		changed: make(chan struct{}), done: make(chan struct{}), tails: newTails(tailsPerGeneration),
		recent: newRecentIndex(), group: newGroupIndex(),
	}
	if err = s.replay(entries); err != nil {
		err = fmt.Errorf("embedded: open %s: %w", dir, err)
	} else {
		err = s.checkpointNow()
	}
	if err != nil {
		s.unpin()
		_ = db.Close()
		_ = file.Close()
		_ = lock.Close()
		return nil, err
	}
	// From here commits are durable through the write-ahead log, and
	// bbolt keeps its list of free pages in memory only (see
	// closeDurable).
	db.NoSync = true
	db.NoFreelistSync = true
	// the events stored size the filters' first levels; a failed read only
	// makes them too small: more new keys would then be looked up, none
	// missed
	var stored uint64
	_ = db.View(func(tx *bolt.Tx) error { stored = tx.Bucket(bucketLog).Sequence(); return nil })
	s.ids = newKeyFilter(stored)
	// as many streams at most: every stream holds an event (a command's
	// idempotency record is a stream of its own)
	s.names = newKeyFilter(stored)
	s.scanning.Go(func() {
		s.scan(s.ids, bucketIDs, scanChunk)
		s.scan(s.names, bucketStreams, scanChunk)
	})
	go s.commitLoop()
	return s, nil
}

// Path is the path of the database file.
func (s *Store) Path() string { return s.db.Path() }

// Close commits the appends already submitted, closes the file and ends
// every subscription. Calling it again returns the first result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.submitMu.Lock()
		s.submitted = true
		close(s.queue)
		s.submitMu.Unlock()
		<-s.committed
		s.scanning.Wait()
		err := errors.Join(s.closeDurable(), s.db.Close())
		s.retiring.Wait() // no file of the store stays open once its lock is released
		s.closeErr = errors.Join(err, s.lock.Close())
		_ = s.file.Close()
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
	res, err := s.submit(ctx, []eventstore.StreamAppend{{Stream: stream, Expected: expected, Events: events}})
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	return res[0], nil
}

var _ eventstore.MultiAppender = (*Store)(nil)

// AppendMulti implements eventstore.MultiAppender: the parts are written in
// one transaction, durable when it returns without error.
func (s *Store) AppendMulti(ctx context.Context, parts ...eventstore.StreamAppend) ([]eventstore.AppendResult, error) {
	if err := eventstore.ValidateMultiAppend(parts); err != nil {
		return nil, err
	}
	var all []eventstore.EventData
	for _, p := range parts {
		if len(p.Stream) > MaxStreamNameLen {
			return nil, fmt.Errorf("%w: stream name longer than %d bytes", eventstore.ErrInvalidAppend, MaxStreamNameLen)
		}
		all = append(all, p.Events...)
	}
	if err := eventstore.CheckAppendSize(all, s.maxAppendSize); err != nil {
		return nil, err
	}
	return s.submit(ctx, parts)
}

// appendReq is an append waiting for the committer.
type appendReq struct {
	parts []eventstore.StreamAppend
	flush bool   // checkpoint after this group (tests)
	run   func() // run in the committer after this group (Check)
	// set by the committer before it closes done
	results []eventstore.AppendResult
	err     error
	done    chan struct{}
}

// submit hands an append to the committer and waits for its outcome.
func (s *Store) submit(ctx context.Context, parts []eventstore.StreamAppend) ([]eventstore.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := &appendReq{parts: parts, done: make(chan struct{})}
	s.submitMu.RLock()
	if s.submitted {
		s.submitMu.RUnlock()
		return nil, ErrClosed
	}
	s.queue <- r
	s.submitMu.RUnlock()
	<-r.done
	return r.results, r.err
}

// commitLoop is the committer: it gathers a group of appends (up to
// maxBatchSize), writes them in one transaction with one sync of the
// write-ahead log, answers them, and starts over. Appends arriving during
// a commit wait for the next one, so the group grows with the load, and a
// lone append commits at once. A checkpoint under way takes a step after
// each group, and the time no append waits.
func (s *Store) commitLoop() {
	defer close(s.committed)
	batch := make([]*appendReq, 0, s.maxBatchSize)
	last := 0 // size of the previous group
	for {
		r, ok := s.nextAppend()
		if !ok {
			return
		}
		batch = s.gather(append(batch[:0], r), last)
		start := time.Now()
		last = len(batch)
		events := s.commit(batch)
		clear(batch)
		// twice the entries the group added (three per event): the merge
		// gains on them under any load
		s.advance(6 * events)
		s.writeBack()
		s.busy.Add(int64(time.Since(start)))
	}
}

// CommitterBusy is how long the committer has spent on groups of appends
// since Open: writing and syncing each once gathered (not the wait for
// its writers), and the checkpoint's step after it. Its rate is the share
// of the time appends kept it busy: near 1, appends queue behind it (a
// seed of département 59 kept it 81-83 % busy).
func (s *Store) CommitterBusy() time.Duration { return time.Duration(s.busy.Load()) }

// SyncBuckets are the upper bounds, in seconds, by which LogSyncs counts
// the write-ahead log's syncs.
var SyncBuckets = [...]float64{0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1}

// logSyncs counts the write-ahead log's syncs by how long they took.
type logSyncs struct {
	counts [len(SyncBuckets) + 1]atomic.Uint64 // the last: longer than every bound
	total  atomic.Int64                        // nanoseconds
}

func (l *logSyncs) add(d time.Duration) {
	i, _ := slices.BinarySearch(SyncBuckets[:], d.Seconds())
	l.counts[i].Add(1)
	l.total.Add(int64(d))
}

// LogSyncs counts the write-ahead log's writes and syncs since Open by
// how long each took: counts[i] those within SyncBuckets[i] and above the
// bound before it, the last those longer than every bound; and their
// total time. Every group of appends waits for one, so the disk's slow
// answers are the appends' slow answers: at 1,000 commands/s on a city's
// data, syncs of 10 to 46 ms were the commands' slowest answers. Each is
// timed by the committer, until it runs again: on a busy machine, its
// wait for a processor after the sync counts too.
func (s *Store) LogSyncs() (counts []uint64, total time.Duration) {
	counts = make([]uint64, len(s.syncs.counts))
	for i := range counts {
		counts[i] = s.syncs.counts[i].Load()
	}
	return counts, time.Duration(s.syncs.total.Load())
}

// writeBack starts the writeback of events.db's dirty pages every
// writebackBytes of pages committed. Commits do not sync events.db (the log
// does), and the kernel leaves dirty pages in memory until they are old
// or many: the checkpoint's sync, which appends wait for, then wrote
// hundreds of MB at once (seconds) after a national seed's large merges.
func (s *Store) writeBack() {
	if w := s.pagesWritten(); w-s.pagesAtWriteback >= writebackBytes/int64(s.db.Info().PageSize) {
		s.pagesAtWriteback = w
		startWriteback(s.file)
	}
}

// nextAppend waits for an append, meanwhile merging the index entries of
// a checkpoint under way.
func (s *Store) nextAppend() (*appendReq, bool) {
	for s.merging != nil && s.failed == nil {
		select {
		case r, ok := <-s.queue:
			return r, ok
		default:
			s.advance(0)
			s.writeBack()
		}
	}
	r, ok := <-s.queue
	return r, ok
}

// gather adds to batch every append waiting, then, while the group is
// smaller than the previous one, waits up to linger for the writers the
// previous commit answered: they are on their way back, and a commit costs
// two syncs however many appends it holds.
func (s *Store) gather(batch []*appendReq, last int) []*appendReq {
	var timeout <-chan time.Time
	for len(batch) < s.maxBatchSize {
		select {
		case r, ok := <-s.queue:
			if !ok {
				return batch
			}
			batch = append(batch, r)
			continue
		default:
		}
		if len(batch) >= last || s.linger <= 0 {
			return batch
		}
		if timeout == nil {
			timeout = time.After(s.linger)
		}
		select {
		case r, ok := <-s.queue:
			if !ok {
				return batch
			}
			batch = append(batch, r)
		case <-timeout:
			return batch
		}
	}
	return batch
}

// commit writes a group in one transaction and answers each append. A
// refused append (wrong expected version, ID reused) writes nothing and
// leaves the others be; a storage failure rolls the transaction back,
// and each append is then tried alone so that only the one at fault fails.
//
// The group is durable once its frame is synced to the write-ahead log,
// which happens inside the transaction, before bbolt commits without a
// sync: no reader sees an event a crash could take back. A failure after
// the log write leaves the log and bbolt apart, so the store then refuses
// every append until it is opened again, which replays the log.
func (s *Store) commit(batch []*appendReq) (events int) {
	if s.failed != nil {
		answer(batch, s.failed)
		return 0
	}
	var f frame
	logged := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		f = frame{payload: s.payload[:0], written: s.written[:0], added: s.added[:0], group: s.group}
		var err error
		logged, err = s.writeGroup(tx, batch, &f)
		return err
	})
	s.payload, s.written, s.added = f.payload[:0], f.written[:0], f.added[:0]
	if err != nil {
		if !logged {
			// the positions rolled back will be taken again
			s.recent.undo(f.added[:f.published])
		}
		s.failedCommit(batch, err, logged)
		return 0
	}
	// visible to every transaction from now on, and before any writer
	// of the group hears of it
	s.tails.record(f.written)
	s.commits.Add(1)
	if f.events > 0 {
		s.notify()
	}
	if err := s.afterCommit(flushRequested(batch)); err != nil {
		s.failed = err
	}
	for _, r := range batch {
		if r.flush {
			r.err = s.failed
		}
		if r.run != nil {
			r.run()
		}
		close(r.done)
	}
	return f.events
}

func flushRequested(batch []*appendReq) bool {
	for _, r := range batch {
		if r.flush {
			return true
		}
	}
	return false
}

// flush makes the committer checkpoint, merging the recent index entries
// into bbolt: for tests that look at or damage the buckets themselves.
func (s *Store) flush() error {
	return s.inCommitter(&appendReq{flush: true, done: make(chan struct{})})
}

// inCommitter hands r to the committer, which answers it after the group
// it joins, and waits for it.
func (s *Store) inCommitter(r *appendReq) error {
	s.submitMu.RLock()
	if s.submitted {
		s.submitMu.RUnlock()
		return ErrClosed
	}
	s.queue <- r
	s.submitMu.RUnlock()
	<-r.done
	return r.err
}

// writeGroup decides and writes every append of a group in tx, then logs
// the group's frame; logged reports that the frame is synced.
func (s *Store) writeGroup(tx *bolt.Tx, batch []*appendReq, f *frame) (logged bool, err error) {
	b := s.bucketsOf(tx)
	f.group.reset()
	for _, r := range batch {
		if r.results, r.err, err = appendTx(b, r.parts, f); err != nil {
			return false, err
		}
	}
	if f.events == 0 {
		return false, nil
	}
	// readers ignore entries past their transaction's last position: the
	// group's are published before it commits, under one lock
	s.recent.addAll(f.added)
	f.published = len(f.added)
	for _, a := range f.added {
		s.ids.add(s.ids.hash(a.id[:]))
		if a.rev == 0 {
			s.names.add(s.names.hashString(a.stream))
		}
	}
	if s.pin != nil && s.mayRemap(tx, 0, len(f.payload)) {
		// Safe within this transaction: bbolt chose the pages it may
		// reuse when it began, with the pin open.
		s.unpin()
	}
	start := time.Now()
	if err := s.wal.write(f.payload, !s.unsynced); err != nil {
		s.failed = fmt.Errorf("embedded: write-ahead log: %w", err)
		return false, s.failed
	}
	if !s.unsynced {
		s.syncs.add(time.Since(start))
	}
	if s.next != nil && s.next.add(s.wal.buf) != nil {
		s.dropNextWAL() // the checkpoint carries the records over from bbolt
	}
	return true, nil
}

// failedCommit answers a group whose transaction failed.
func (s *Store) failedCommit(batch []*appendReq, err error, logged bool) {
	switch {
	case logged:
		s.failed = fmt.Errorf("embedded: commit after the write-ahead log: %w", err)
		answer(batch, s.failed)
	case s.failed != nil:
		answer(batch, s.failed)
	case len(batch) > 1:
		for _, r := range batch {
			_ = s.commit([]*appendReq{r})
		}
	default:
		if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
			err = ErrClosed
		}
		if len(batch[0].parts) == 0 { // a flush or a check
			answer(batch, fmt.Errorf("embedded: checkpoint: %w", err))
			return
		}
		answer(batch, fmt.Errorf("embedded: append to %s: %w", batch[0].parts[0].Stream, err))
	}
}

// answer fails every append of a batch with err.
func answer(batch []*appendReq, err error) {
	for _, r := range batch {
		r.results, r.err = nil, err
		close(r.done)
	}
}

// frame is what a commit writes to the write-ahead log, the streams it
// writes with their new last revisions, and the index entries it adds.
type frame struct {
	payload   []byte
	events    int
	written   []streamRev
	added     []recentAdd
	published int         // of added, in the recent index
	group     *groupIndex // added, as the group's later appends look them up
}

// buckets are the store's four buckets in a transaction, and for the
// committer the recent index entries not merged into them yet.
type buckets struct {
	log, streams, revs, ids *bolt.Bucket
	recent                  *recentIndex
	stored                  *keyFilter // the IDs ids may hold (nil: any)
	names                   *keyFilter // the streams streams may hold (nil: any)
}

func bucketsOf(tx *bolt.Tx) buckets {
	return buckets{log: tx.Bucket(bucketLog), streams: tx.Bucket(bucketStreams), revs: tx.Bucket(bucketRevs), ids: tx.Bucket(bucketIDs)}
}

// bucketsOf is the committer's view: the buckets and the recent entries.
func (s *Store) bucketsOf(tx *bolt.Tx) buckets {
	b := bucketsOf(tx)
	b.recent, b.stored, b.names = s.recent, s.ids, s.names
	return b
}

// appendTx decides and writes one append of one or more parts: every part
// is checked before any is written, so a refused part leaves nothing
// behind. The middle result is a domain error (nothing written); the last
// is a storage failure.
func appendTx(b buckets, parts []eventstore.StreamAppend, f *frame) ([]eventstore.AppendResult, error, error) {
	results := make([]eventstore.AppendResult, len(parts))
	current := make([]int64, len(parts))
	retry := make([]bool, len(parts))
	for i, p := range parts {
		var derr, err error
		current[i], results[i], retry[i], derr, err = check(b, f, p)
		if err != nil || derr != nil {
			return nil, derr, err
		}
	}
	for i, p := range parts {
		if retry[i] {
			continue
		}
		var err error
		if results[i], err = write(b, p.Stream, current[i], p.Events, f); err != nil {
			return nil, nil, err
		}
	}
	return results, nil, nil
}

// check decides one part: the stream's current revision, and whether the
// part is an idempotent retry (then with its original result) or is
// refused (a domain error).
func check(b buckets, f *frame, p eventstore.StreamAppend) (current int64, res eventstore.AppendResult, retry bool, derr, err error) {
	current = -1
	if last, ok := f.group.last[p.Stream]; ok {
		current = int64(last)
	} else if last, ok := b.recent.last(p.Stream); ok {
		current = last
	} else if !b.names.mayHold(b.names.hashString(p.Stream)) {
		// a new stream
	} else if v := b.streams.Get([]byte(p.Stream)); v != nil {
		last, err := getU64(v)
		if err != nil {
			return 0, res, false, nil, fmt.Errorf("stream %s: %w", p.Stream, err)
		}
		current = int64(last)
	}
	known, err := storedPositions(b, f, p.Events)
	if err != nil {
		return 0, res, false, nil, err
	}
	if known != nil {
		res, derr, err = retried(b.log, p.Stream, p.Expected, current, p.Events, known)
		return current, res, derr == nil && err == nil, derr, err
	}
	if !p.Expected.Check(current) {
		return current, res, false, &eventstore.WrongExpectedVersionError{Stream: p.Stream, Expected: p.Expected, Actual: current}, nil
	}
	return current, res, false, nil, nil
}

// storedPositions returns the positions of the events whose ID is already
// stored (0 for the others), or nil when none is.
func storedPositions(b buckets, f *frame, events []eventstore.EventData) ([]uint64, error) {
	var known []uint64
	for i, e := range events {
		pos, ok := f.group.ids[e.ID]
		if !ok {
			pos, ok = b.recent.id(e.ID)
		}
		if !ok {
			if !b.stored.mayHold(b.stored.hash(e.ID[:])) {
				continue
			}
			v := b.ids.Get(e.ID[:])
			if v == nil {
				continue
			}
			var err error
			if pos, err = getU64(v); err != nil {
				return nil, fmt.Errorf("event %s: %w", e.ID, err)
			}
		}
		if known == nil {
			known = make([]uint64, len(events))
		}
		known[i] = pos
	}
	return known, nil
}

// write stores events after revision current of stream in the log, adds
// their index entries to the recent ones (the next checkpoint merges them
// into bbolt), and adds the events to the group's frame.
func write(b buckets, stream string, current int64, events []eventstore.EventData, f *frame) (eventstore.AppendResult, error) {
	created := time.Now().UnixNano()
	// Positions only grow, so full pages are never split again.
	b.log.FillPercent = 1.0
	var pos, rev uint64
	for i, e := range events {
		var err error
		if pos, err = b.log.NextSequence(); err != nil {
			return eventstore.AppendResult{}, err
		}
		rev = uint64(current + 1 + int64(i))
		rec := encodeRecord(e.ID, stream, rev, e.Type, created, e.Data, e.Metadata)
		if err := b.log.Put(u64(pos), rec); err != nil {
			return eventstore.AppendResult{}, err
		}
		f.group.ids[e.ID], f.group.last[stream] = pos, rev
		f.added = append(f.added, recentAdd{id: e.ID, stream: stream, rev: rev, pos: pos})
		f.payload = appendEntry(f.payload, pos, rec)
		f.events++
	}
	f.written = append(f.written, streamRev{stream: stream, rev: rev})
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
	return mapClosed(s.db.View(fn))
}

func mapClosed(err error) error {
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
	if answered, err := s.readsNothing(stream, dir, from); answered {
		return nil, err
	}
	var (
		out    []eventstore.RecordedEvent
		recent streamView
		last   uint64
		found  bool
	)
	epoch := s.tails.now() // before the transaction begins (see learn)
	err := s.viewIndexed(func(seq uint64) { recent = s.recent.view(stream, seq) }, func(tx *bolt.Tx) error {
		var err error
		if last, err = lastRevision(tx, stream, recent); err != nil {
			return err
		}
		found = true
		from, count := revRange(dir, from, last, max)
		if count > 0 {
			out, err = readRevs(ctx, tx, stream, recent, dir, from, count)
		}
		return err
	})
	if found {
		if testHookLearn != nil {
			testHookLearn()
		}
		s.tails.learn(stream, last, epoch)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// readRevs reads count events of stream in tx from revision from on, in
// direction dir.
func readRevs(ctx context.Context, tx *bolt.Tx, stream string, recent streamView, dir eventstore.Direction, from, count uint64) ([]eventstore.RecordedEvent, error) {
	// one cursor for the whole read: each Get would allocate its own
	logC := tx.Bucket(bucketLog).Cursor()
	revs := revCursor{c: tx.Bucket(bucketRevs).Cursor(), stream: stream}
	out := make([]eventstore.RecordedEvent, 0, count)
	for i := uint64(0); i < count; i++ {
		if err := pollCtx(ctx, i); err != nil {
			return nil, err
		}
		rev := from + i
		if dir == eventstore.Backwards {
			rev = from - i
		}
		pos, ok := recent.position(rev)
		if !ok {
			var err error
			if pos, err = revs.position(rev); err != nil {
				return nil, err
			}
		}
		e, err := readAt(logC, pos)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// testHookLearn, set by tests, runs in a read between its transaction and
// its lesson to the tails.
var testHookLearn func()

// lastRevision is a stream's last revision in tx: its recent entries
// hold it if it was written since the last checkpoint, the streams
// bucket otherwise. The streams bucket alone answers a read past the end
// (a cached aggregate's check for news): the others are opened when
// needed.
func lastRevision(tx *bolt.Tx, stream string, recent streamView) (uint64, error) {
	if !recent.empty() {
		return recent.last(), nil
	}
	v := tx.Bucket(bucketStreams).Get([]byte(stream))
	if v == nil {
		return 0, fmt.Errorf("%w: %s", eventstore.ErrStreamNotFound, stream)
	}
	return getU64(v)
}

// readsNothing answers, without a transaction, a read that finds no
// event: one past the end of a stream written lately, or one of a stream
// never stored.
func (s *Store) readsNothing(stream string, dir eventstore.Direction, from uint64) (answered bool, err error) {
	switch {
	case s.pastTheEnd(stream, dir, from):
	case !s.names.mayHold(s.names.hashString(stream)):
		err = fmt.Errorf("%w: %s", eventstore.ErrStreamNotFound, stream)
	default:
		return false, nil
	}
	if s.closed() {
		return true, ErrClosed
	}
	return true, err
}

// pastTheEnd reports whether a read starts past the end of a stream
// written lately: such a read (a cached aggregate's check for news) needs
// no transaction. A read from the start never does.
func (s *Store) pastTheEnd(stream string, dir eventstore.Direction, from uint64) bool {
	if dir != eventstore.Forwards || from == eventstore.End || from == 0 {
		return false
	}
	last, ok := s.tails.last(stream)
	return ok && from > last
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

// revCursor finds a stream's revisions in the revs index. Its keys put a
// stream's revisions next to each other, in order, so a read of
// consecutive revisions steps the cursor from one to the next instead of
// searching the index from its root for each.
type revCursor struct {
	c      *bolt.Cursor
	stream string
	key    []byte
	at     uint64 // the revision the cursor is on, when on
	on     bool
}

// position is the position of revision rev.
func (r *revCursor) position(rev uint64) (uint64, error) {
	r.key = appendRevKey(r.key[:0], r.stream, rev)
	var k, v []byte
	switch {
	case r.on && rev == r.at+1:
		k, v = r.c.Next()
	case r.on && rev+1 == r.at:
		k, v = r.c.Prev()
	}
	if !bytes.Equal(k, r.key) {
		k, v = r.c.Seek(r.key)
	}
	r.on, r.at = bytes.Equal(k, r.key), rev
	if !r.on {
		return 0, fmt.Errorf("embedded: %s revision %d missing from the index", r.stream, rev)
	}
	return getU64(v)
}

func readAt(logC *bolt.Cursor, pos uint64) (eventstore.RecordedEvent, error) {
	key := u64(pos)
	k, v := logC.Seek(key)
	if !bytes.Equal(k, key) || v == nil {
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
			if out == nil && max > 0 {
				// a page is read whole but at the log's end: grown by
				// doubling, it copied each event about twice
				out = make([]eventstore.RecordedEvent, 0, min(max, 4096))
			}
			out = append(out, r.event(pos))
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ViewAll is ReadAll without copying the events out of the store: fn gets
// up to n (<= 0: all) events after from, in one read transaction, and
// their Data and Metadata are the store's own bytes, good only until fn
// returns and not to be changed. A rebuild reads the whole log to decode
// it at once, and copying each event first was a tenth of its work.
func (s *Store) ViewAll(ctx context.Context, from eventstore.Position, n int, fn func([]eventstore.RecordedEvent) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.view(func(tx *bolt.Tx) error {
		out := make([]eventstore.RecordedEvent, 0, min(max(n, 0), 4096))
		_, err := scanLog(ctx, tx, uint64(from), n, func(pos uint64, r record) {
			out = append(out, r.view(pos))
		})
		if err != nil {
			return err
		}
		return fn(out)
	})
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

// tailsPerGeneration bounds the streams whose last revision the store
// remembers: two generations of up to this many, about 53 MiB each when
// full (measured: a map of 2^20 such entries). With 2^17 a generation, a
// fifth of a national seed's reads still opened a transaction only to
// find nothing new.
const tailsPerGeneration = 1 << 20

// streamRev is a stream a commit wrote and its new last revision.
type streamRev struct {
	stream string
	rev    uint64
}

// tails remembers the last revision of the streams written or read
// lately, so that a read past the end of one is answered without a
// transaction. The committer records each group's streams once it is
// committed, before it answers their writers; a read that found a
// stream's last revision in a transaction teaches it (learn); a stream
// absent from both generations is read from bbolt. Revisions only grow,
// so a reader that misses a commit under way answers as a transaction
// begun just before it would.
//
// The streams a command only consults (the pupil who applies, the offer
// applied to) are read, not written: when only writes were recorded, each
// check of such a cached aggregate for news opened a transaction, a fifth
// of a national seed's processor time.
type tails struct {
	mu        sync.RWMutex
	max       int
	seeds     [2]maphash.Seed
	cur, prev map[tailKey]uint64
	epoch     uint64 // groups recorded so far
}

// tailKey names a stream by two 64-bit hashes of its name under random
// seeds: the maps hold no pointers, which the garbage collector need not
// scan, and two of millions of names share a key with odds of about
// 2^-80.
type tailKey [2]uint64

func newTails(max int) tails {
	return tails{max: max, seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}
}

func (t *tails) key(stream string) tailKey {
	return tailKey{maphash.String(t.seeds[0], stream), maphash.String(t.seeds[1], stream)}
}

// last is the last revision of stream, when it was written lately.
func (t *tails) last(stream string) (uint64, bool) {
	k := t.key(stream)
	t.mu.RLock()
	defer t.mu.RUnlock()
	if rev, ok := t.cur[k]; ok {
		return rev, true
	}
	rev, ok := t.prev[k]
	return rev, ok
}

// record notes the streams a commit wrote, in the order written: a
// stream written twice keeps its later revision.
func (t *tails) record(written []streamRev) {
	keys := make([]tailKey, len(written)) // hashed before readers are held up
	for i, w := range written {
		keys[i] = t.key(w.stream)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.epoch++
	for i, w := range written {
		t.put(keys[i], w.rev)
	}
}

func (t *tails) put(k tailKey, rev uint64) {
	if _, ok := t.cur[k]; !ok && len(t.cur) >= t.max {
		t.prev, t.cur = t.cur, nil // the older generation is forgotten
	}
	if t.cur == nil {
		t.cur = make(map[tailKey]uint64)
	}
	t.cur[k] = rev
}

// now is the epoch a read gives learn, taken before its transaction
// begins.
func (t *tails) now() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.epoch
}

// learn notes the last revision of stream as a read found it, the read's
// transaction begun at epoch, unless the tails know the stream already
// (from a commit since, or from as recent a read) or a group was recorded
// since epoch: that group's commit may have written the stream after the
// read's transaction began, and the revision it recorded, since
// forgotten, may be later than rev. A commit not recorded yet records its
// own revision after this one.
func (t *tails) learn(stream string, rev, epoch uint64) {
	k := t.key(stream)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.epoch != epoch {
		return
	}
	if _, ok := t.cur[k]; ok {
		return
	}
	if _, ok := t.prev[k]; ok {
		return
	}
	t.put(k, rev)
}
