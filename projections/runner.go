// Package projections builds the read models in Redis from the event log.
//
// Each projection runs as a Watermill handler fed by Subscriber, a thin
// subscriber over the store's global log. A projector folds each event into
// the documents of its read model (see engine.go); the runner writes the
// changes together with the projection's checkpoint in one atomic script
// that skips events already applied, so delivery is at-least-once and
// applying is exactly-once. A rebuild (rebuild.go) replays the log through
// the same projectors into a fresh generation.
package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/redis/go-redis/v9"

	"passerelle/domain"
	"passerelle/eventstore"
)

// Runner runs projectors as Watermill handlers, and keeps their read
// models true to the log: before subscribing it checks each served
// generation (see prepare) and rebuilds those it cannot trust; while
// running, a watcher and the apply script notice when Redis lost writes
// (restarted from an older snapshot, flushed, emptied), and the runner
// starts over from what Redis holds. Readers are told the least position
// they may be served (Floor) so that meanwhile they answer "not ready"
// rather than stale data.
type Runner struct {
	store      eventstore.Store
	rdb        redis.UniversalClient
	projectors []Projector
	log        *slog.Logger

	// opener restores sealed personal data in events (nil: none sealed)
	opener interface{ Open(domain.Event) error }
	// CheckEvery is how often the watcher compares Redis with what was
	// applied (default 250 ms).
	CheckEvery time.Duration
	// Rebuild tunes the rebuilds of generations the runner cannot trust
	// (its opener and logger are the runner's).
	Rebuild RebuildOptions
	// Apply, when set, writes a live batch in place of the apply script
	// (readmodel.go), with the same keys, arguments and outcomes: see
	// InProcessApply.
	Apply func(ctx context.Context, keys []string, args []any) (int, error)
	// MGet, when set, reads the documents a live batch changes in place of
	// MGET over the runner's client: see InProcessMGet.
	MGet func(ctx context.Context, keys []string) ([]any, error)

	mu      sync.Mutex
	applied map[string]eventstore.Position // what the served generation holds, as last seen
	floor   map[string]eventstore.Position // see Floor
	// distrusted holds the projections whose served generation prepare
	// found untrustworthy, until their rebuild is served (see Floor)
	distrusted map[string]bool
	gen        map[string]string // served generation of each projection
	// advanced holds, for each projection, a channel closed the next time
	// applied or gen changes (see Progress)
	advanced map[string]chan struct{}
	restart  context.CancelFunc
	again    string // why the router was stopped to start over ("": it was not)
	// purge is the last forget seen, purged the last one after which
	// Redis's files were rewritten (see erased)
	purge, purged eventstore.Position
}

// NewRunner prepares the projectors over store and rdb.
func NewRunner(store eventstore.Store, rdb redis.UniversalClient, log *slog.Logger, ps ...Projector) *Runner {
	if log == nil {
		log = slog.Default()
	}
	return &Runner{store: store, rdb: rdb, projectors: ps, log: log, CheckEvery: 250 * time.Millisecond,
		applied: map[string]eventstore.Position{}, floor: map[string]eventstore.Position{}, gen: map[string]string{},
		distrusted: map[string]bool{}, advanced: map[string]chan struct{}{}}
}

// WithOpener makes projectors see personal data restored from its seal, or
// marked erased when the person was forgotten.
func (r *Runner) WithOpener(o interface{ Open(domain.Event) error }) *Runner {
	r.opener = o
	return r
}

// Floor is the least checkpoint a read of the projection may be served
// from: the head of the log when the runner started, raised by everything
// it applied since. A read model behind it is being caught up or rebuilt,
// never current. While the served generation is one the runner cannot
// trust (another log's, say) and rebuilds, it is Unservable: no
// checkpoint reaches it.
func (r *Runner) Floor(name string) eventstore.Position {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.distrusted[name] {
		return Unservable
	}
	return r.floor[name]
}

// Unservable is the floor of a projection whose served generation is being
// replaced because it cannot be trusted.
const Unservable = eventstore.Position(math.MaxUint64)

// Progress is the last position this process applied of the projection,
// and a channel closed when that or its served generation next changes.
// A reader waiting for a position waits on it rather than asking Redis
// again and again: a thousand readers polling for their own writes took
// the CPU the projection needed to apply them. It is for readers in the
// process where the runner runs: the runner follows the whole log, so
// whichever runner wrote a position in Redis, this one gets there too.
func (r *Runner) Progress(name string) (eventstore.Position, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.applied[name], r.advancedLocked(name)
}

// advancedLocked is the channel Progress hands out for name; r.mu held.
func (r *Runner) advancedLocked(name string) chan struct{} {
	ch, ok := r.advanced[name]
	if !ok {
		ch = make(chan struct{})
		r.advanced[name] = ch
	}
	return ch
}

// changedLocked wakes the readers waiting on name's progress; r.mu held.
func (r *Runner) changedLocked(name string) {
	if ch, ok := r.advanced[name]; ok {
		close(ch)
		delete(r.advanced, name)
	}
}

// Hold raises every floor to the head of the log as it is now: until the
// read models have applied it, reads answer not ready. Run holds at its
// start; call it before serving reads when Run starts in the background.
func (r *Runner) Hold(ctx context.Context) error {
	head, err := r.store.Head(ctx)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.projectors {
		r.floor[p.Name()] = max(r.floor[p.Name()], head)
	}
	return nil
}

// Run runs the projections until ctx ends. running is closed once every
// handler is subscribed the first time. Whenever a rebuild swaps a
// generation in or Redis is found to have lost writes, the router stops,
// the read models are checked again, and it resubscribes; a failure to
// start (Redis unreachable) is retried with a pause.
func (r *Runner) Run(ctx context.Context, running chan<- struct{}) error {
	if err := r.Hold(ctx); err != nil {
		return err
	}
	pause := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := r.prepare(ctx)
		if err == nil {
			runCtx, cancel := context.WithCancel(ctx)
			r.mu.Lock()
			r.restart, r.again = cancel, ""
			r.mu.Unlock()
			go r.watch(runCtx)
			err = r.run(runCtx, running)
			cancel()
			r.mu.Lock()
			why := r.again
			r.mu.Unlock()
			if why != "" && ctx.Err() == nil {
				r.log.Warn("projections start over", "reason", why)
				running, pause = nil, 100*time.Millisecond // running: closed by the first run
				continue
			}
		}
		if ctx.Err() != nil {
			break
		}
		r.log.Warn("projections cannot run, trying again", "err", err, "in", pause)
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Second)
	}
	return nil
}

// startOver stops the router so that Run checks the read models again.
func (r *Runner) startOver(why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.again == "" {
		r.again = why
	}
	if r.restart != nil {
		r.restart()
	}
}

func (r *Runner) run(ctx context.Context, running chan<- struct{}) error {
	logger := watermill.NewSlogLoggerWithLevelMapping(r.log, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, logger)
	if err != nil {
		return err
	}
	router.AddMiddleware(
		middleware.Recoverer,
		middleware.Retry{MaxRetries: 5, InitialInterval: 50 * time.Millisecond, MaxInterval: 2 * time.Second, Multiplier: 2, Logger: logger}.Middleware,
	)
	sub := NewSubscriber(r.store, r.start, eventstore.Filter{}, r.log)
	sub.MaxBatch, sub.Local, sub.Shared, sub.Linger = liveBatch, true, true, liveLinger
	for _, p := range r.projectors {
		router.AddConsumerHandler(p.Name(), p.Name(), sub, r.handler(p))
	}
	if running != nil {
		go func() {
			select {
			case <-router.Running():
				close(running)
			case <-ctx.Done():
			}
		}()
	}
	err = router.Run(ctx)
	_ = sub.Close()
	return err
}

// prepare finds each projection's served generation and its checkpoint.
// A generation it cannot trust (none, no marker, another layout or
// another log) is rebuilt from the log first; a trusted one is caught up
// from its own checkpoint: its writes and checkpoint moved together, so a
// Redis restored from a snapshot holds a consistent past.
func (r *Runner) prepare(ctx context.Context) error {
	logID, err := LogIdentity(ctx, r.store)
	if err != nil {
		return err
	}
	var rebuild []Projector
	for _, p := range r.projectors {
		why, err := r.trust(ctx, p, logID)
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.distrusted[p.Name()] = why != ""
		r.mu.Unlock()
		if why != "" {
			r.log.Warn("rebuilding a read model", "projection", p.Name(), "reason", why)
			rebuild = append(rebuild, p)
		}
	}
	if len(rebuild) == 0 {
		return nil
	}
	opt := r.Rebuild
	opt.Opener, opt.Log = r.opener, r.log
	start := time.Now()
	if _, err := RebuildAll(ctx, r.store, r.rdb, rebuild, opt); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	r.log.Info("read models rebuilt from the log", "projections", len(rebuild), "took", time.Since(start).Round(time.Millisecond))
	// the generations replaced may hold data erased since they were written
	r.rewritePersistence(ctx, "read models were rebuilt")
	for _, p := range rebuild {
		why, err := r.trust(ctx, p, logID)
		if err == nil && why != "" {
			err = fmt.Errorf("%s after its rebuild: %s", p.Name(), why)
		}
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.distrusted[p.Name()] = false
		r.mu.Unlock()
	}
	return nil
}

// trust records the served generation of p and its checkpoint, or says why
// it cannot be trusted.
func (r *Runner) trust(ctx context.Context, p Projector, logID string) (string, error) {
	gen, err := activeGeneration(ctx, r.rdb, p.Name())
	if err != nil || gen == "" {
		return "no generation is served", err
	}
	prefix := GenPrefix(p.Name(), gen)
	if why, err := fitsMarker(ctx, r.rdb, p, prefix); why != "" || err != nil {
		return why, err
	}
	if why, err := foreign(ctx, r.rdb, r.store, prefix, logID); why != "" || err != nil {
		return why, err
	}
	pos, err := Checkpoint(ctx, r.rdb, prefix)
	if err != nil {
		return "", err
	}
	r.mu.Lock()
	r.applied[p.Name()], r.gen[p.Name()] = pos, gen
	r.changedLocked(p.Name())
	r.mu.Unlock()
	return "", nil
}

// start is where the subscription of a projection starts: the checkpoint
// prepare found.
func (r *Runner) start(_ context.Context, name string) (eventstore.Position, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.applied[name], nil
}

// watch compares, every CheckEvery, what Redis holds with what was
// applied, and starts over when Redis lost writes or another generation
// is served. The apply script refuses to write on top of lost writes;
// this notices them when no event comes.
func (r *Runner) watch(ctx context.Context) {
	t := time.NewTicker(r.CheckEvery)
	defer t.Stop()
	runID := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if why := r.check(ctx, &runID); why != "" {
			r.startOver(why)
			return
		}
	}
}

// check says what is wrong with the served generations, "" when nothing
// is or Redis cannot be reached (readiness reports that).
func (r *Runner) check(ctx context.Context, runID *string) string {
	r.mu.Lock()
	applied, gens := maps.Clone(r.applied), maps.Clone(r.gen)
	r.mu.Unlock()
	if id := serverRunID(ctx, r.rdb); id != "" {
		if *runID != "" && id != *runID {
			*runID = id
			return "redis restarted"
		}
		*runID = id
	}
	pipe := r.rdb.Pipeline()
	active, cps, markers := map[string]*redis.StringCmd{}, map[string]*redis.StringCmd{}, map[string]*redis.IntCmd{}
	for name, gen := range gens {
		active[name] = pipe.Get(ctx, ActiveKey(name))
		cps[name] = pipe.Get(ctx, CheckpointKey(GenPrefix(name, gen)))
		markers[name] = pipe.Exists(ctx, MarkerKey(GenPrefix(name, gen)))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return ""
	}
	for name, gen := range gens {
		switch cp := cps[name].Val(); {
		case active[name].Val() != gen:
			return fmt.Sprintf("%s: generation %q is served, not %s", name, active[name].Val(), gen)
		case markers[name].Val() == 0:
			return fmt.Sprintf("%s: the marker of generation %s is gone", name, gen)
		case applied[name] != eventstore.Start && cp < padPosition(applied[name]):
			return fmt.Sprintf("%s: redis holds position %q, %s was applied (redis lost writes)", name, strings.TrimLeft(cp, "0"), applied[name])
		}
	}
	return ""
}

// serverRunID is the run_id of the Redis server, "" when unknown (the
// in-process server does not tell it).
func serverRunID(ctx context.Context, rdb redis.UniversalClient) string {
	info, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "run_id:"); ok {
			return v
		}
	}
	return ""
}

// open restores the personal fields p reads in evs; an event that cannot
// be opened is skipped.
func (r *Runner) open(p Projector, evs []Event) {
	if r.opener == nil {
		return
	}
	for i, ev := range evs {
		if ev.Data == nil || !readsPersonal(ev.Type, p) {
			continue
		}
		if err := r.opener.Open(ev.Data); err != nil {
			r.log.Error("cannot open sealed data, event skipped", "projection", p.Name(), "position", ev.Position, "err", err)
			evs[i].Data = nil
		}
	}
}

// liveBatch is the most events a live runner applies in one script call
// when it is behind.
const liveBatch = 256

// liveLinger is how long a live runner's message waits for more events
// under a steady load (Subscriber.Linger).
const liveLinger = 2 * time.Millisecond

func (r *Runner) handler(p Projector) message.NoPublishHandlerFunc {
	name := p.Name()
	// the writes of a batch, kept from one to the next: the handler runs
	// one message at a time, and a batch sized by the last saves growing
	// its map again at every message
	w := newBatch(16, 16)
	return func(msg *message.Message) error {
		ctx := msg.Context()
		evs, err := messageEvents(msg, p)
		if evs == nil {
			return err
		}
		if err != nil {
			// A malformed event cannot be projected; skipping it keeps the
			// projection alive and the log is still there to inspect.
			r.log.Error("cannot decode events, skipped", "projection", name, "err", err)
		}
		r.open(p, evs)
		r.mu.Lock()
		prev, gen := r.applied[name], r.gen[name]
		r.mu.Unlock()
		last := evs[len(evs)-1].Position
		for last > prev {
			outcome, err := r.apply(ctx, p, gen, prev, evs, w)
			if err != nil {
				return fmt.Errorf("%s at %d: %w", name, last, err)
			}
			switch outcome {
			case staleWriter:
				r.startOver(fmt.Sprintf("%s: generation %s was replaced by a rebuild", name, gen))
				return fmt.Errorf("%s: generation %s was replaced by a rebuild", name, gen)
			case lostWrites:
				r.startOver(fmt.Sprintf("%s: redis is behind position %s that was applied (redis lost writes)", name, prev))
				return fmt.Errorf("%s at %d: redis lost writes", name, last)
			case overtaken:
				// fold again from where the other runner stopped
				if prev, err = Checkpoint(ctx, r.rdb, GenPrefix(name, gen)); err != nil {
					return fmt.Errorf("%s at %d: %w", name, last, err)
				}
				continue
			}
			prev = last
		}
		r.mu.Lock()
		if prev > r.applied[name] {
			r.applied[name] = prev
			r.changedLocked(name)
		}
		r.floor[name] = max(r.floor[name], prev)
		r.mu.Unlock()
		for _, ev := range evs {
			// by its type: a projection that does not fold a forget has
			// it undecoded, and applies it all the same
			if ev.Type == forgottenType {
				r.erased(ctx, ev.Position)
			}
		}
		return nil
	}
}

var forgottenType = domain.PupilForgotten{}.EventType()

// apply folds the events after prev into generation gen and writes them
// with the checkpoint of the last one, in one script call; w holds the
// writes meanwhile.
func (r *Runner) apply(ctx context.Context, p Projector, gen string, prev eventstore.Position, evs []Event, w *batch) (int, error) {
	// the documents of the batch, as its events change them
	src := &docCache{docs: map[string]cached{}, limit: math.MaxInt,
		read: redisDocs{ctx: ctx, View: View{RDB: r.rdb, Prefix: GenPrefix(p.Name(), gen)}, mget: r.MGet}.get}
	w.reset()
	for _, ev := range evs {
		if ev.Position <= prev || ev.Data == nil {
			continue
		}
		if err := project(p, ev, src, w); err != nil {
			return 0, err
		}
	}
	if err := w.finish(src); err != nil {
		return 0, err
	}
	keys, args := liveArgs(p.Name(), gen, prev, evs[len(evs)-1].Position, w)
	if r.Apply != nil {
		return r.Apply(ctx, keys, args)
	}
	return applyScript.Run(ctx, r.rdb, keys, args...).Int()
}

// Applied returns the last position each projection applied in this process.
func (r *Runner) Applied() map[string]eventstore.Position {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.applied)
}
