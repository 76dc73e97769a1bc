package projections

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"passerelle/eventstore"
)

// A Watch tells the readers of a process that runs no projection (an api
// process) how far the served generations have applied, as Runner.Progress
// does where the runner runs: one goroutine reads the checkpoints of the
// projections readers wait for, in one round trip, and wakes the readers
// of those that moved.
// However many reads wait for their own writes, the process asks Redis
// once every Every at most, where each waiting read used to poll it on its
// own; a lone read costs what its own polling did (a look after 2 ms,
// then twice as long each time).
type Watch struct {
	rdb   redis.UniversalClient
	names []string
	log   *slog.Logger
	// Every is the pause after a look that followed an ask (default
	// 2 ms); the pause doubles at each look without one, up to Idle
	// (default 100 ms). While no reader holds a channel there is none.
	Every, Idle time.Duration

	mu      sync.Mutex
	applied map[string]eventstore.Position
	prefix  map[string]string        // served generation, as last read
	moved   map[string]chan struct{} // closed when applied changes
	asked   time.Time                // last call of Progress
	wake    chan struct{}            // a Progress call since the last look
}

// NewWatch watches the named projections in rdb; Run makes it look.
func NewWatch(rdb redis.UniversalClient, log *slog.Logger, names ...string) *Watch {
	if log == nil {
		log = slog.Default()
	}
	return &Watch{rdb: rdb, names: names, log: log, Every: 2 * time.Millisecond, Idle: 100 * time.Millisecond,
		applied: map[string]eventstore.Position{}, prefix: map[string]string{}, moved: map[string]chan struct{}{},
		wake: make(chan struct{}, 1)}
}

// Progress is the checkpoint of the projection's served generation as
// last read, and a channel closed when that changes.
func (w *Watch) Progress(name string) (eventstore.Position, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.asked = time.Now()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	ch, ok := w.moved[name]
	if !ok {
		ch = make(chan struct{})
		w.moved[name] = ch
	}
	return w.applied[name], ch
}

// Run looks until ctx ends: while a reader holds a channel, Every after a
// look that followed an ask (or after an ask), and twice as long after
// each look without one, up to Idle; while none holds one, at the next
// ask.
func (w *Watch) Run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	var (
		ticking  = true // the timer is set; else the watch waits for an ask
		pause    = w.Every
		lastLook time.Time
		failing  bool // the last look failed
	)
	for {
		if ticking {
			select {
			case <-ctx.Done():
				return
			case <-w.wake: // a new reader: soon, but not before Every
				pause = w.Every
				timer.Reset(max(0, w.Every-time.Since(lastLook)))
				continue
			case <-timer.C:
			}
		} else {
			select {
			case <-ctx.Done():
				return
			case <-w.wake:
			}
		}
		looked := time.Now()
		failing = w.lookLogged(ctx, failing)
		w.mu.Lock()
		asked, holding := w.asked.After(lastLook), len(w.moved) > 0
		w.mu.Unlock()
		lastLook = looked
		if asked {
			pause = w.Every
		} else {
			pause = min(2*pause, w.Idle)
		}
		if ticking = holding; ticking {
			timer.Reset(pause)
		}
		select { // the asks so far are answered by this look
		case <-w.wake:
		default:
		}
	}
}

// lookLogged looks, and logs a failure once per outage rather than at
// every look; it reports whether this look failed.
func (w *Watch) lookLogged(ctx context.Context, failing bool) bool {
	err := w.look(ctx)
	switch {
	case err != nil && !failing && ctx.Err() == nil:
		w.log.Warn("reading the read models' checkpoints failed", "err", err)
	case err == nil && failing:
		w.log.Info("reading the read models' checkpoints again")
	}
	return err != nil
}

// look reads the served generation of each projection a reader waits for
// and, in the same round trip, the checkpoint of the one last read, and
// wakes the readers of those that moved.
func (w *Watch) look(ctx context.Context) error {
	var names, prefixes []string // those a reader waits for
	w.mu.Lock()
	for _, name := range w.names {
		if _, ok := w.moved[name]; ok {
			names, prefixes = append(names, name), append(prefixes, w.prefix[name])
		}
	}
	w.mu.Unlock()
	if len(names) == 0 {
		return nil
	}
	pipe := w.rdb.Pipeline()
	gens := make([]*redis.StringCmd, len(names))
	cps := make([]*redis.StringCmd, len(names))
	for i, name := range names {
		gens[i] = pipe.Get(ctx, ActiveKey(name))
		if prefixes[i] != "" {
			cps[i] = pipe.Get(ctx, CheckpointKey(prefixes[i]))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, name := range names {
		prefix := ""
		if gen, err := gens[i].Result(); err == nil {
			prefix = GenPrefix(name, gen)
		}
		if prefix != prefixes[i] {
			// another generation: its checkpoint at the next look
			w.prefix[name] = prefix
			continue
		}
		if prefix == "" {
			continue
		}
		pos, err := CheckpointOf(prefix, cps[i])
		if err != nil {
			return err
		}
		if pos == w.applied[name] {
			continue
		}
		w.applied[name] = pos
		if ch, ok := w.moved[name]; ok {
			close(ch)
			delete(w.moved, name)
		}
	}
	return nil
}
