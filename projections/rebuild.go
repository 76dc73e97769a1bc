package projections

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"passerelle/domain"
	"passerelle/eventstore"
)

// A rebuild replays the whole log into a fresh generation of each
// projection while the served generation keeps answering (and keeps
// following the log, if a service runs). It runs the live runner's engine
// over an in-memory cache of the fresh generation's documents, and spans:
// each projection folds events until it holds RebuildOptions.Span writes,
// so that a document or counter many of them change is written once; its
// writer then sends them to Redis as plain commands, its checkpoint last,
// in pipelined round trips, while the next span is folded. No script is
// needed: the fresh generation is not served before the swap and only the
// holder of the rebuild lock writes it; a rebuild that dies mid-span leaves
// a generation nobody serves, which the next rebuild deletes. Counters are
// written as their totals, so a round trip the client sends again after a
// lost reply lands once. Once past the head of the log as it was at the
// start and past what the served generation has applied, the active
// pointer swaps to the new generation atomically (a script that checks
// both); live runners notice at their next event and resubscribe from its
// checkpoint. The old generation is then deleted, a few hundred keys at a
// time.

// RebuildOptions tunes RebuildAll; zero values take the defaults.
type RebuildOptions struct {
	// Batch is the number of events read and folded at a time (default
	// 500).
	Batch int
	// Span is the number of writes a projection folds before they are
	// written (default 16,384, about 200 bytes each in memory): documents,
	// the counters of counting documents, and the members, fields and
	// points of the others, which are compared at the span's end and
	// counted ahead at the rate the last span's end wrote them; and the
	// entries each counting document keeps until the span is written
	// (a log of offers kept about twenty an offer for all of them, a
	// quarter of the live heap, in one span of the statistics). What many
	// events of a span change, such as a pupil's document or a counter,
	// is rendered and written once. A larger span writes less but costs
	// more memory, which costs more than the writes it saves: fresh memory
	// is faulted in at about 2 ms a megabyte, and a written span's batch is
	// reused for the next. At 16,384 rather than 131,072, a season's log
	// of 137,000 events took 37 % more writes to rebuild and was rebuilt
	// sooner, into Redis and in process, with a fifth less memory; the
	// national season's 11.9 million, in 444 and 372 s against 427 and 436.
	Span int
	// CacheBytes bounds the document cache of each projection (default
	// 256 MiB); past it the rebuild reads Redis again.
	CacheBytes int
	// Grace is the pause between the swap and the deletion of the old
	// generation, for queries that resolved it just before (default
	// SwapGrace; negative: none).
	Grace time.Duration
	// KeepOld leaves the old generation in place.
	KeepOld bool
	// Progress, when set, is called about every ProgressEvery (default
	// 250 ms) and once at the end, from the rebuilding goroutine.
	Progress      func(Progress)
	ProgressEvery time.Duration
	Log           *slog.Logger
	// Opener restores sealed personal data as the live runners do
	// (Runner.WithOpener); nil when nothing is sealed.
	Opener interface{ Open(domain.Event) error }
	// Write, when set, applies commands in place of a pipeline to Redis
	// (InProcess: the embedded default's server). Each projection's writer
	// calls it with its commands in order; the writers of several
	// projections call it at once. The commands are the writer's again
	// once it returns: it renders the next ones over them.
	Write func(ctx context.Context, cmds [][]any) error
}

func (o *RebuildOptions) defaults() {
	if o.Batch <= 0 {
		o.Batch = 500
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = 256 << 20
	}
	if o.Span <= 0 {
		o.Span = 1 << 14
	}
	if o.Grace == 0 {
		o.Grace = SwapGrace
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 250 * time.Millisecond
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
}

// SwapGrace is how long a rebuild waits after the swap before deleting the
// replaced generation, so that readers that resolved it just before finish.
var SwapGrace = 2 * time.Second

// Progress of a rebuild.
type Progress struct {
	Projection string              // the projections rebuilt, separated by commas
	Events     int64               // events read so far
	Position   eventstore.Position // of the last event read
	Head       eventstore.Position // of the log, as last seen
	Elapsed    time.Duration
	Phase      string // "replaying", "swapping", "done", "deleting old generations"
}

// Fraction is how far through the log the rebuild is, by position.
func (p Progress) Fraction() float64 {
	if p.Head == 0 {
		return 1
	}
	return min(float64(p.Position)/float64(p.Head), 1)
}

// Rate is the number of events replayed per second.
func (p Progress) Rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Events) / p.Elapsed.Seconds()
}

// ETA estimates the time left from the pace so far.
func (p Progress) ETA() time.Duration {
	f := p.Fraction()
	if f <= 0 || f >= 1 {
		return 0
	}
	return time.Duration(float64(p.Elapsed) * (1 - f) / f)
}

// Rebuilt describes one rebuilt projection.
type Rebuilt struct {
	Name       string              `json:"name"`
	Generation string              `json:"generation"`
	Previous   string              `json:"previous,omitempty"` // "" when the projection had never run
	Position   eventstore.Position `json:"position"`
	Deleted    int64               `json:"deleted_keys"` // keys of the previous generation deleted
}

// ErrRebuildRunning is returned when another rebuild of the projection
// holds its lock.
var ErrRebuildRunning = errors.New("a rebuild of this projection is already running")

// build is one projection being rebuilt. Its folder goroutine alone uses
// cache, writes, last and pending; the reading loop alone uses swapped
// and result.
type build struct {
	p       Projector
	name    string
	gen     string
	prefix  string
	cache   *docCache
	writes  *batch
	last    eventstore.Position // last event folded, not yet flushed
	pending int                 // events folded since the last flush
	// perDoc is the writes the last span's finish added for each document
	// it compared: a span of new offers holds about two dozen writes for
	// each document folded, which a span's size must count
	perDoc  float64
	swapped bool
	result  Rebuilt
	totals  map[string]int64 // of each counter written, by key and field
	// pages to fold, a few ahead of the slowest build
	pages chan foldJob
	// the build's writes, applied in order by its own writer while the
	// next events are folded: one span may wait while another is written;
	// the writer hands a written batch back, emptied, for a later span
	queue    chan writeUnit
	spare    chan *batch
	inFlight sync.WaitGroup // units handed to the writer
}

// firstPerDoc is perDoc before a span has been finished: a new offer's
// writes.
const firstPerDoc = 24

// foldJob is a page for a build's folder to fold; with sync, the folder
// then writes all it folded, waits for it to land, and answers there.
type foldJob struct {
	events []Event
	sync   chan<- error
}

// pagesAhead is how many pages a build may be given before it folds
// them: builds fold at their own pace, and the slowest bounds the reading.
const pagesAhead = 8

// writeUnit is one projection's flushed batch: its writes, rendered as
// commands by its writer, the checkpoint last.
type writeUnit struct {
	prefix string
	pos    eventstore.Position
	writes *batch
	totals map[string]int64 // the build's: only the writer uses them
}

// writeChunk bounds the commands of one round trip.
const writeChunk = 1000

// rebuild is the state of one RebuildAll call.
type rebuild struct {
	store  eventstore.Store
	rdb    redis.UniversalClient
	opt    RebuildOptions
	builds []*build
	last   Progress // last reported
	behind int      // swaps refused: the served generation was ahead
	logID  string   // see LogIdentity

	folders sync.WaitGroup
	mu      sync.Mutex
	err     error // the first fold or write that failed
}

// RebuildAll rebuilds the projections ps from the whole log, in one pass,
// into fresh generations and swaps them in. It returns once every
// projection is served from its new generation and the old ones are
// deleted.
func RebuildAll(ctx context.Context, store eventstore.Store, rdb redis.UniversalClient, ps []Projector, opt RebuildOptions) ([]Rebuilt, error) {
	opt.defaults()
	if len(ps) == 0 {
		return nil, errors.New("no projection to rebuild")
	}
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name()
	}
	unlock, err := lockRebuilds(ctx, rdb, names)
	if err != nil {
		return nil, err
	}
	defer unlock()
	logID, err := LogIdentity(ctx, store)
	if err != nil {
		return nil, err
	}
	rb := &rebuild{store: store, rdb: rdb, opt: opt, logID: logID}
	for _, p := range ps {
		b := &build{p: p, name: p.Name(), pages: make(chan foldJob, pagesAhead),
			queue: make(chan writeUnit, 1), spare: make(chan *batch, 1), perDoc: firstPerDoc}
		if err := rb.prepare(ctx, b); err != nil {
			return nil, err
		}
		rb.builds = append(rb.builds, b)
	}
	for _, b := range rb.builds {
		go rb.writer(ctx, b)
		rb.folders.Go(func() { rb.folder(b) })
	}
	err = rb.replay(ctx)
	for _, b := range rb.builds {
		close(b.pages)
	}
	rb.folders.Wait()
	for _, b := range rb.builds {
		close(b.queue)
	}
	if werr := rb.landed(); err == nil {
		err = werr
	}
	if err != nil {
		return nil, err
	}
	out := make([]Rebuilt, len(rb.builds))
	for i, b := range rb.builds {
		out[i] = b.result
	}
	if opt.KeepOld {
		return out, nil
	}
	return out, rb.dropPrevious(ctx, out)
}

// dropPrevious deletes the replaced generations, after the grace period.
func (rb *rebuild) dropPrevious(ctx context.Context, out []Rebuilt) error {
	final := rb.last
	final.Phase = "deleting old generations"
	rb.report(final)
	if rb.opt.Grace > 0 && slices.ContainsFunc(out, func(r Rebuilt) bool { return r.Previous != "" }) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(rb.opt.Grace):
		}
	}
	for i := range out {
		if out[i].Previous == "" {
			continue
		}
		n, err := DropGeneration(ctx, rb.rdb, GenPrefix(out[i].Name, out[i].Previous))
		out[i].Deleted = n
		if err != nil {
			return fmt.Errorf("%s: delete generation %s: %w", out[i].Name, out[i].Previous, err)
		}
	}
	return nil
}

// prepare deletes what an abandoned rebuild left and allocates a fresh
// generation.
func (rb *rebuild) prepare(ctx context.Context, b *build) error {
	active, err := activeGeneration(ctx, rb.rdb, b.name)
	if err != nil {
		return err
	}
	stale, err := rb.rdb.Get(ctx, buildingKey(b.name)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	if stale != "" && stale != active {
		n, err := DropGeneration(ctx, rb.rdb, GenPrefix(b.name, stale))
		if err != nil {
			return err
		}
		rb.opt.Log.Info("deleted an abandoned rebuild", "projection", b.name, "generation", stale, "keys", n)
	}
	n, err := newGenerationScript.Run(ctx, rb.rdb, []string{ActiveKey(b.name), generationsKey(b.name), buildingKey(b.name)}).Int64()
	if err != nil {
		return err
	}
	b.gen = fmt.Sprint(n)
	b.prefix = GenPrefix(b.name, b.gen)
	// a generation number is never reused, but a crashed rebuild of the
	// same number may have left keys behind
	if _, err := DropGeneration(ctx, rb.rdb, b.prefix); err != nil {
		return err
	}
	if err := writeMarker(ctx, rb.rdb, rb.store, b.p, b.prefix); err != nil {
		return err
	}
	b.cache = &docCache{docs: map[string]cached{}, fresh: true, limit: rb.opt.CacheBytes,
		read: func(refs []Ref) ([]Doc, []string, error) {
			// the batch being written must land before Redis is read
			if err := rb.landed(b); err != nil {
				return nil, nil, err
			}
			return redisDocs{ctx: ctx, View: View{RDB: rb.rdb, Prefix: b.prefix}}.get(refs)
		}}
	// sized for a whole span (within reason): growing the first batch of
	// each build from a few thousand writes cost about 4 % of a rebuild
	b.writes = newBatch(min(rb.opt.Span, 1<<16), min(rb.opt.Span, 1<<16))
	b.totals = map[string]int64{}
	b.result = Rebuilt{Name: b.name, Generation: b.gen}
	rb.opt.Log.Info("rebuilding", "projection", b.name, "generation", b.gen, "served", active)
	return nil
}

// replay reads the log and folds it into every build until all of them
// are swapped in. The log is read and decoded a page ahead, a page being
// one batch, and each projection folds the pages in its own goroutine, at
// its own pace: in lock step, every page waited for the slowest
// projection while the processors had room.
func (rb *rebuild) replay(ctx context.Context) error {
	start := time.Now()
	head, err := rb.store.Head(ctx)
	if err != nil {
		return err
	}
	var (
		from       eventstore.Position
		events     int64
		lastReport = start
	)
	names := make([]string, len(rb.builds))
	for i, b := range rb.builds {
		names[i] = b.name
	}
	progress := func(phase string) Progress {
		return Progress{Projection: strings.Join(names, ","), Events: events, Position: from, Head: max(head, from),
			Elapsed: time.Since(start), Phase: phase}
	}
	readCtx, stop := context.WithCancel(ctx)
	pages := make(chan decodedPage, 2)
	go rb.read(readCtx, pages)
	defer func() {
		stop()
		for range pages { // until the reader is gone
		}
	}()
	for page := range pages {
		if page.err != nil {
			return page.err
		}
		if err := rb.failed(); err != nil {
			return err
		}
		if n := len(page.events); n > 0 {
			for _, b := range rb.builds {
				if !b.swapped {
					b.pages <- foldJob{events: page.events}
				}
			}
			from = page.events[n-1].Position
			events += int64(n)
		}
		if time.Since(lastReport) >= rb.opt.ProgressEvery {
			lastReport = time.Now()
			rb.report(progress("replaying"))
		}
		// Caught up once past the head of the log as it was at the start
		// and past what the served generation applied: events appended
		// since are the live runners' to apply to the new generation.
		if from < head {
			continue
		}
		if done, err := rb.trySwap(ctx, from, len(page.events) == 0, progress); err != nil || done {
			return err
		}
	}
	return ctx.Err()
}

// decodedPage is a page of the log, decoded and opened.
type decodedPage struct {
	events []Event
	err    error
}

// read sends the log, from its start, a batch of decoded events at a time
// until ctx ends; at the end of the log it sends empty pages, a little
// apart, while waiting for new events.
func (rb *rebuild) read(ctx context.Context, pages chan<- decodedPage) {
	defer close(pages)
	var from eventstore.Position
	for {
		page, n, err := rb.readPage(ctx, from)
		if n > 0 {
			from = page.events[n-1].Position
		}
		page.err = err
		select {
		case pages <- page:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
		if n == 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
}

// allViewer is a store that lends its events to decode in place
// (embedded.Store.ViewAll).
type allViewer interface {
	ViewAll(ctx context.Context, from eventstore.Position, n int, fn func([]eventstore.RecordedEvent) error) error
}

// readPage reads and decodes the events after from, a batch of them.
func (rb *rebuild) readPage(ctx context.Context, from eventstore.Position) (decodedPage, int, error) {
	var page decodedPage
	if v, ok := rb.store.(allViewer); ok {
		n := 0
		err := v.ViewAll(ctx, from, rb.opt.Batch, func(recs []eventstore.RecordedEvent) error {
			page.events, n = rb.decode(recs), len(recs)
			return nil
		})
		return page, n, err
	}
	recs, err := rb.store.ReadAll(ctx, from, rb.opt.Batch)
	page.events = rb.decode(recs)
	return page, len(recs), err
}

// decode decodes and opens a page of events, in as many parts at once as
// there are processors: it is the larger part of a rebuild's work that
// does not belong to one projection. The events no projection folds are
// passed on undecoded.
func (rb *rebuild) decode(recs []eventstore.RecordedEvent) []Event {
	evs := make([]Event, len(recs))
	var ps []Projector
	for _, b := range rb.builds {
		ps = append(ps, b.p)
	}
	parts := min(runtime.GOMAXPROCS(0), max(len(recs)/64, 1))
	var wg sync.WaitGroup
	for part := range parts {
		wg.Go(func() {
			for i := part * len(recs) / parts; i < (part+1)*len(recs)/parts; i++ {
				if !foldedBy(recs[i].Stream, recs[i].Type, ps...) {
					evs[i] = Event{Position: recs[i].Position, Stream: recs[i].Stream, Type: recs[i].Type}
					continue
				}
				ev, err := decodeRecorded(recs[i])
				if err == nil && ev.Data != nil && rb.opt.Opener != nil && readsPersonal(ev.Type, ps...) {
					err = rb.opt.Opener.Open(ev.Data)
				}
				if err != nil { // as the live runner: logged, folded if decoded
					rb.opt.Log.Error("cannot decode event, skipped", "position", recs[i].Position, "err", err)
				}
				evs[i] = ev
			}
		})
	}
	wg.Wait()
	return evs
}

// folder folds the pages given to b until they end; after a failure it
// only answers syncs.
func (rb *rebuild) folder(b *build) {
	for job := range b.pages {
		if rb.failed() == nil {
			if err := rb.fold(b, job.events); err != nil {
				rb.fail(err)
			}
		}
		if job.sync != nil {
			job.sync <- rb.flush(b, true)
		}
	}
}

// fold projects a page of events into b, and hands what it folded to the
// writer when due.
func (rb *rebuild) fold(b *build, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	if err := b.cache.prefetch(b.p, events); err != nil {
		return fmt.Errorf("%s: %w", b.name, err)
	}
	for _, ev := range events {
		if ev.Data != nil {
			if err := project(b.p, ev, b.cache, b.writes); err != nil {
				return fmt.Errorf("%s at %d: %w", b.name, ev.Position, err)
			}
		}
		b.last = ev.Position
		b.pending++
	}
	return rb.flush(b, false)
}

// sync waits until every build not swapped yet has folded the pages given
// to it and its writes landed.
func (rb *rebuild) sync() error {
	var errs []error
	answers := make(chan error, len(rb.builds))
	n := 0
	for _, b := range rb.builds {
		if !b.swapped {
			b.pages <- foldJob{sync: answers}
			n++
		}
	}
	for range n {
		errs = append(errs, <-answers)
	}
	return errors.Join(errs...)
}

// trySwap swaps in every build once pos is past what the served
// generations applied. atEnd: the last read found no event.
func (rb *rebuild) trySwap(ctx context.Context, pos eventstore.Position, atEnd bool, progress func(string) Progress) (bool, error) {
	if ready, err := rb.pastServed(ctx, pos); err != nil || !ready {
		if err == nil && atEnd {
			// at the end of the log and still behind the served generation: a
			// live runner is applying events this read has not seen yet
			select {
			case <-ctx.Done():
				err = ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
		return false, err
	}
	if err := rb.sync(); err != nil {
		return false, err
	}
	rb.report(progress("swapping"))
	done := true
	for _, b := range rb.builds {
		if b.swapped {
			continue
		}
		ok, err := rb.swap(ctx, b, pos)
		if err != nil {
			return false, err
		}
		done = done && ok
	}
	if done {
		rb.report(progress("done"))
		return true, nil
	}
	// the served generation applied events appended since: read them
	if rb.behind++; rb.behind > 1000 {
		return false, errors.New("the rebuild cannot catch up with the served generation")
	}
	return false, nil
}

// pastServed reports whether pos is at or past the checkpoint of the
// served generation of every projection not swapped yet, a foreign one
// (see foreign) aside.
func (rb *rebuild) pastServed(ctx context.Context, pos eventstore.Position) (bool, error) {
	for _, b := range rb.builds {
		if b.swapped {
			continue
		}
		prefix, err := ActivePrefix(ctx, rb.rdb, b.name)
		if err != nil {
			return false, err
		}
		if prefix != "" {
			why, err := foreign(ctx, rb.rdb, rb.store, prefix, rb.logID)
			if err != nil {
				return false, err
			}
			if why != "" {
				continue
			}
		}
		served, err := Checkpoint(ctx, rb.rdb, prefix)
		if err != nil || served > pos {
			return false, err
		}
	}
	return true, nil
}

// swap serves b's generation if it has applied at least as far as the
// served one; it reports whether it did.
func (rb *rebuild) swap(ctx context.Context, b *build, pos eventstore.Position) (bool, error) {
	// the checkpoint must name the last event read, even one no
	// projector wrote for
	if err := rb.rdb.Set(ctx, CheckpointKey(b.prefix), padPosition(pos), 0).Err(); err != nil {
		return false, err
	}
	for range 3 {
		old, err := activeGeneration(ctx, rb.rdb, b.name)
		if err != nil {
			return false, err
		}
		oldCheckpoint := ActiveKey(b.name) // unused when there is no served generation
		replace := ""                      // "replace": the served generation is foreign, whatever its checkpoint
		if old != "" {
			oldCheckpoint = CheckpointKey(GenPrefix(b.name, old))
			why, err := foreign(ctx, rb.rdb, rb.store, GenPrefix(b.name, old), rb.logID)
			if err != nil {
				return false, err
			}
			if why != "" {
				replace = "replace"
			}
		}
		res, err := swapScript.Run(ctx, rb.rdb, []string{ActiveKey(b.name), CheckpointKey(b.prefix), oldCheckpoint, buildingKey(b.name)}, b.gen, old, replace).Int()
		if err != nil {
			return false, err
		}
		switch res {
		case 1:
			b.swapped = true
			b.result.Previous, b.result.Position = old, pos
			rb.opt.Log.Info("rebuilt generation served", "projection", b.name, "generation", b.gen, "previous", old, "position", pos)
			return true, nil
		case 0:
			return false, nil
		}
		// a live runner started meanwhile and claimed generation 1: look again
	}
	return false, fmt.Errorf("%s: the served generation keeps changing", b.name)
}

// flush hands what b folded to its writer, to be written while the next
// events are folded: with final, or once its batch holds opt.Span writes
// or its cache outgrew its bound. Until then the batch keeps folding, so
// that a document or counter changed by many events of the span is
// rendered and written once. With final, or when the cache outgrew its
// bound, it waits for the writes to land; a cache past its bound then
// starts again empty.
func (rb *rebuild) flush(b *build, final bool) error {
	wait := final || b.cache.size > b.cache.limit
	held, unsettled := len(b.writes.order), b.writes.unsettled
	due := final || held+b.writes.kept+int(b.perDoc*float64(unsettled)) >= rb.opt.Span
	if !due && !wait {
		return rb.failed() // a write that failed stops the folding at once
	}
	if b.pending > 0 {
		if err := b.writes.finish(b.cache); err != nil {
			return fmt.Errorf("%s at %d: %w", b.name, b.last, err)
		}
		if unsettled > 0 {
			b.perDoc = float64(len(b.writes.order)-held) / float64(unsettled)
		}
		if err := rb.failed(); err != nil {
			return err
		}
		rb.handOff(b)
	}
	if !wait {
		return nil
	}
	if err := rb.landed(b); err != nil {
		return err
	}
	if b.cache.size > b.cache.limit {
		b.cache.forget()
	}
	return nil
}

// handOff gives b's batch to its writer and starts the next one.
func (rb *rebuild) handOff(b *build) {
	size, mapped := len(b.writes.order), len(b.writes.at) // the writer owns the batch once sent
	b.inFlight.Add(1)
	b.queue <- writeUnit{prefix: b.prefix, pos: b.last, writes: b.writes, totals: b.totals}
	select {
	case b.writes = <-b.spare:
	default:
		b.writes = newBatch(size, mapped)
	}
	b.pending = 0
}

// landed waits for the writes handed to the writers of builds (all of
// them when none is named).
func (rb *rebuild) landed(builds ...*build) error {
	if len(builds) == 0 {
		builds = rb.builds
	}
	for _, b := range builds {
		b.inFlight.Wait()
	}
	return rb.failed()
}

func (rb *rebuild) failed() error {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	return rb.err
}

// fail records the first failure.
func (rb *rebuild) fail(err error) {
	rb.mu.Lock()
	rb.err = cmp.Or(rb.err, err)
	rb.mu.Unlock()
}

// commands renders the writes as plain commands, counters as their
// totals (HSET, not HINCRBY: sent twice, they land once), and the
// checkpoint last, into args and cmds (emptied first).
func (u writeUnit) commands(args []any, cmds [][]any) ([]any, [][]any) {
	args = u.writes.render(u.prefix, slices.Grow(args[:0], 4*len(u.writes.order)))
	cmds = slices.Grow(cmds[:0], len(u.writes.order)+1)
	for rest := args; len(rest) > 0; {
		n := rest[0].(int)
		c := rest[1 : 1+n]
		if c[0] == "HINCRBY" {
			field := c[1].(string) + "\x00" + c[2].(string)
			u.totals[field] += c[3].(int64)
			c[0], c[3] = "HSET", u.totals[field]
		}
		cmds, rest = append(cmds, c), rest[1+n:]
	}
	return args, append(cmds, []any{"SET", CheckpointKey(u.prefix), padPosition(u.pos)})
}

// writer applies a build's units in order until its queue is closed;
// after a failure it only counts them. A written batch goes back to spare,
// emptied: a span's batch holds tens of thousands of writes, and growing
// a fresh one for every span was a sixth of the bytes a rebuild allocated.
// The commands it renders a unit into are kept for the next likewise
// (8 % of the bytes, on a log of offers).
func (rb *rebuild) writer(ctx context.Context, b *build) {
	var args []any
	var cmds [][]any
	for u := range b.queue {
		if rb.failed() == nil {
			args, cmds = u.commands(args, cmds)
			if err := rb.write(ctx, u, cmds); err != nil {
				rb.fail(err)
			}
			// the scratch keeps no value of this unit until the next
			clear(args)
			clear(cmds)
		}
		u.writes.reset()
		select {
		case b.spare <- u.writes:
		default:
		}
		b.inFlight.Done()
	}
}

// write applies one unit's commands in order, in pipelines of at most
// writeChunk commands.
func (rb *rebuild) write(ctx context.Context, u writeUnit, cmds [][]any) error {
	for len(cmds) > 0 {
		chunk := cmds[:min(len(cmds), writeChunk)]
		cmds = cmds[len(chunk):]
		if err := rb.send(ctx, chunk); err != nil {
			return fmt.Errorf("%s: write the batch up to %d: %w", u.prefix, u.pos, err)
		}
	}
	return nil
}

// send applies commands in one round trip (or through opt.Write).
func (rb *rebuild) send(ctx context.Context, cmds [][]any) error {
	if rb.opt.Write != nil {
		return rb.opt.Write(ctx, cmds)
	}
	pipe := rb.rdb.Pipeline()
	for _, c := range cmds {
		pipe.Do(ctx, c...)
	}
	_, err := pipe.Exec(ctx)
	return err
}

func (rb *rebuild) report(p Progress) {
	rb.last = p
	if rb.opt.Progress != nil {
		rb.opt.Progress(p)
	}
}

// docCache holds the documents of a generation being rebuilt, decoded and
// as JSON. It starts fresh: the generation is empty, so a document it does
// not hold is absent and folding costs no Redis read. Past its bound it is
// emptied, and then reads what it misses from Redis.
type docCache struct {
	docs  map[string]cached
	size  int // bytes held: each document's JSON, counted twice for its decoded copy
	limit int
	fresh bool
	read  func(refs []Ref) ([]Doc, []string, error)
	// get's answers, kept from one call to the next
	scratchDocs []Doc
	scratchJSON []string
}

type cached struct {
	doc  Doc // nil: known to be absent
	json string
}

func (c *docCache) get(refs []Ref) ([]Doc, []string, error) {
	var missed []Ref
	for _, r := range refs {
		if _, ok := c.docs[r.Key]; !ok && !c.fresh {
			missed = append(missed, r)
		}
	}
	if len(missed) > 0 {
		ds, bs, err := c.read(missed)
		if err != nil {
			return nil, nil, err
		}
		for i, r := range missed {
			c.put(r.Key, ds[i], bs[i])
		}
	}
	docs, raw := c.scratchDocs[:0], c.scratchJSON[:0]
	for _, r := range refs {
		d := c.docs[r.Key]
		docs, raw = append(docs, d.doc), append(raw, d.json)
	}
	c.scratchDocs, c.scratchJSON = docs, raw
	return docs, raw, nil
}

// prefetch reads at once the documents events name first (before any
// document names others) that the cache does not hold: one round trip per
// page instead of one per event. A national log's pupils and applications
// outgrow any cache: read event by event, its replay waited on a round
// trip for most events.
func (c *docCache) prefetch(p Projector, events []Event) error {
	if c.fresh {
		return nil // an absent document is absent from Redis too
	}
	var missed []Ref
	seen := map[string]bool{}
	none := Docs{}
	for _, ev := range events {
		if ev.Data == nil {
			continue
		}
		for _, r := range p.Touches(ev, none) {
			if _, ok := c.docs[r.Key]; ok || r.Created || seen[r.Key] {
				continue
			}
			seen[r.Key] = true
			missed = append(missed, r)
		}
	}
	for len(missed) > 0 {
		part := missed[:min(len(missed), prefetchChunk)]
		missed = missed[len(part):]
		if _, _, err := c.get(part); err != nil {
			return err
		}
	}
	return nil
}

// prefetchChunk bounds the keys of one read.
const prefetchChunk = 1024

func (c *docCache) put(key string, d Doc, json string) {
	old, ok := c.docs[key]
	if !ok {
		c.size += len(key)
	}
	c.size += 2 * (len(json) - len(old.json))
	c.docs[key] = cached{doc: d, json: json}
}

// forget empties the cache once every write landed: Redis holds it all.
func (c *docCache) forget() {
	c.docs, c.size, c.fresh = map[string]cached{}, 0, false
	// nor keep the last answer alive
	clear(c.scratchDocs[:cap(c.scratchDocs)])
	clear(c.scratchJSON[:cap(c.scratchJSON)])
}
