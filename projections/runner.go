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
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/redis/go-redis/v9"

	"passerelle/domain"
	"passerelle/eventstore"
)

// Runner runs projectors as Watermill handlers.
type Runner struct {
	store      eventstore.Store
	rdb        redis.UniversalClient
	projectors []Projector
	log        *slog.Logger

	// opener restores sealed personal data in events (nil: none sealed)
	opener interface{ Open(domain.Event) error }

	mu      sync.Mutex
	applied map[string]eventstore.Position
	gen     map[string]string // served generation of each projection
	restart context.CancelFunc
	swapped bool // a rebuild swapped a generation in: resubscribe
}

// NewRunner prepares the projectors over store and rdb.
func NewRunner(store eventstore.Store, rdb redis.UniversalClient, log *slog.Logger, ps ...Projector) *Runner {
	if log == nil {
		log = slog.Default()
	}
	return &Runner{store: store, rdb: rdb, projectors: ps, log: log,
		applied: map[string]eventstore.Position{}, gen: map[string]string{}}
}

// WithOpener makes projectors see personal data restored from its seal, or
// marked erased when the person was forgotten.
func (r *Runner) WithOpener(o interface{ Open(domain.Event) error }) *Runner {
	r.opener = o
	return r
}

// Run builds the router and runs it until ctx ends. running is closed once
// every handler is subscribed. When a rebuild swaps in a new generation,
// the router is rebuilt and resubscribes from that generation's checkpoint.
func (r *Runner) Run(ctx context.Context, running chan<- struct{}) error {
	for {
		runCtx, cancel := context.WithCancel(ctx)
		r.mu.Lock()
		r.restart, r.swapped = cancel, false
		r.mu.Unlock()
		err := r.run(runCtx, running)
		cancel()
		r.mu.Lock()
		swapped := r.swapped
		r.mu.Unlock()
		if ctx.Err() != nil || !swapped {
			return err
		}
		r.log.Info("a rebuilt read model was swapped in: resubscribing")
		running = nil // closed by the first run
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

// start activates generation 1 of a projection that never ran and returns
// the checkpoint of the served generation.
func (r *Runner) start(ctx context.Context, name string) (eventstore.Position, error) {
	if err := r.rdb.SetNX(ctx, ActiveKey(name), "1", 0).Err(); err != nil {
		return 0, err
	}
	gen, err := r.rdb.Get(ctx, ActiveKey(name)).Result()
	if err != nil {
		return 0, err
	}
	pos, err := Checkpoint(ctx, r.rdb, GenPrefix(name, gen))
	if err != nil {
		return 0, err
	}
	r.mu.Lock()
	r.applied[name], r.gen[name] = pos, gen
	r.mu.Unlock()
	return pos, nil
}

func (r *Runner) handler(p Projector) message.NoPublishHandlerFunc {
	name := p.Name()
	return func(msg *message.Message) error {
		ctx := msg.Context()
		pos, err := strconv.ParseUint(msg.Metadata.Get(MetaPosition), 10, 64)
		if err != nil {
			return fmt.Errorf("message %s without position: %w", msg.UUID, err)
		}
		r.mu.Lock()
		done := eventstore.Position(pos) <= r.applied[name]
		gen := r.gen[name]
		r.mu.Unlock()
		if done {
			return nil
		}
		ev, err := decodeMessage(msg, eventstore.Position(pos))
		if err == nil && ev.Data != nil && r.opener != nil {
			err = r.opener.Open(ev.Data)
		}
		if err != nil {
			// A malformed event cannot be projected; skipping it keeps the
			// projection alive and the log is still there to inspect.
			r.log.Error("cannot decode event, skipped", "projection", name, "position", pos, "err", err)
		}
		w := newBatch(16)
		if ev.Data != nil {
			src := redisDocs{ctx: ctx, View: View{RDB: r.rdb, Prefix: GenPrefix(name, gen)}}
			if err := project(p, ev, src, w); err != nil {
				return fmt.Errorf("%s at %d: %w", name, pos, err)
			}
		}
		outcome, err := applyAtomically(ctx, r.rdb, name, gen, true, ev.Position, w)
		if err != nil {
			return fmt.Errorf("%s at %d: %w", name, pos, err)
		}
		if outcome == staleWriter {
			r.mu.Lock()
			r.swapped = true
			r.restart()
			r.mu.Unlock()
			return fmt.Errorf("%s: generation %s was replaced by a rebuild", name, gen)
		}
		r.mu.Lock()
		r.applied[name] = ev.Position
		r.mu.Unlock()
		return nil
	}
}

// Applied returns the last position each projection applied in this process.
func (r *Runner) Applied() map[string]eventstore.Position {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]eventstore.Position, len(r.applied))
	for k, v := range r.applied {
		out[k] = v
	}
	return out
}
