package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"passerelle/commands"
	"passerelle/eventstore"
)

// Settler is what the reconciler repairs with: the command layer.
type Settler interface {
	// Settle runs the placement process's steps for an application
	// until it is settled.
	Settle(ctx context.Context, m commands.Meta, applicationID string) (commands.Result, error)
	// SettleBooking makes the applications of a group booking the offer
	// decided, and settles them.
	SettleBooking(ctx context.Context, m commands.Meta, offerID, bookingID string) (commands.Result, error)
	// DestroyKey is the second step of a forget.
	DestroyKey(pupilID string) error
}

// filter selects the events the view folds.
var filter = eventstore.Filter{Categories: Categories}

// Actor is who the reconciler's repairs name in the log.
var Actor = eventstore.Actor{Role: "system", Subject: "reconciler"}

// Reconciler follows the log and settles every placement left unsettled
// for longer than Grace: a command interrupted between its steps. It keeps
// its view and position in a snapshot file, so a restart catches up from
// where it was rather than from the start of the log.
type Reconciler struct {
	store eventstore.Store
	svc   Settler
	file  string // the snapshot; "" keeps none
	log   *slog.Logger

	// Grace leaves a command under way the time to finish its own steps
	// before the reconciler takes them (default 1 s).
	Grace time.Duration
	// SnapshotEvery is how often the snapshot is written when the view
	// changed (default 10 s), or less often when a save takes long (see
	// saveIfChanged); it is also written when Run ends.
	SnapshotEvery time.Duration
	// Clock dates the repairs (default time.Now).
	Clock func() time.Time

	// view, due and unsettled are Run's alone (or CatchUp's, for a
	// process alone on the log): other goroutines read only the counts
	view *View
	due  map[string]time.Time // application -> when to look at it
	// unsettled are the applications found unsettled at the last
	// recheck and those events touched since, and nUnsettled their
	// count, which Unsettled reads from any goroutine: the view's own
	// list walks every application (1.1 s at a million:
	// BenchmarkUnsettled), and Run is busy for seconds saving a
	// national view
	unsettled  map[string]bool
	nUnsettled atomic.Int64
	// tracking: due and unsettled follow each event folded. Not during a
	// catch-up, which would track every application of the log (millions
	// nationally) and recheck those tracked every tick: both are computed
	// from the view once it reaches the head (caughtUp).
	tracking bool
	repairs  atomic.Int64
	failed   atomic.Int64
	caught   atomic.Bool // the view has reached the head of the log once
	started  bool        // the snapshot was loaded
	// the last save made by saveIfChanged: when it ended, how long it took
	savedAt  time.Time
	saveTook time.Duration
}

// saveSpacing is how many times its own length the reconciler waits after
// a save before the next.
const saveSpacing = 20

// New builds a reconciler; file is where its snapshot is kept.
func New(store eventstore.Store, svc Settler, file string, log *slog.Logger) *Reconciler {
	if log == nil {
		log = slog.Default()
	}
	return &Reconciler{store: store, svc: svc, file: file, log: log, Grace: time.Second,
		SnapshotEvery: 10 * time.Second, Clock: time.Now, view: NewView(), due: map[string]time.Time{},
		unsettled: map[string]bool{}}
}

// Repairs is how many placements the reconciler settled (failed: tries
// that failed and will be retried).
func (r *Reconciler) Repairs() (done, failed int64) { return r.repairs.Load(), r.failed.Load() }

// Unsettled is how many placements the log shows unsettled (those under
// way included), or -1 before the view reached the log's head. Until the
// reconciler's next tick (every 200 ms) it also counts those the events
// since the last touched, settled or not: it may count too many for that
// long, never too few.
func (r *Reconciler) Unsettled() int {
	if !r.caught.Load() {
		return -1
	}
	return int(r.nUnsettled.Load())
}

// recheck keeps, of the applications tracked, those unsettled now, and
// counts them. The view returns with each event every application the
// event may have unsettled, and fold tracks them, so those tracked hold
// every unsettled one; an event that settles one may not name it.
func (r *Reconciler) recheck() {
	for id := range r.unsettled {
		if _, ok := r.view.State(id).Next(); !ok {
			delete(r.unsettled, id)
		}
	}
	r.nUnsettled.Store(int64(len(r.unsettled)))
}

// Run follows the log until ctx ends, then writes its snapshot. Failures
// of the store are retried with a growing pause.
func (r *Reconciler) Run(ctx context.Context) error {
	r.start(ctx)
	defer func() {
		if err := r.save(context.WithoutCancel(ctx)); err != nil {
			r.log.Warn("reconciler snapshot not written", "err", err)
		}
	}()
	pause := 100 * time.Millisecond
	for {
		err := r.follow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		r.log.Warn("reconciler: following the log failed, retrying", "err", err, "in", pause)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Second)
	}
}

// follow subscribes after the view's position and folds events, settling
// what is due every tick, until the subscription fails or ctx ends.
func (r *Reconciler) follow(ctx context.Context) error {
	head, err := r.store.Head(ctx)
	if err != nil {
		return err
	}
	// every event, not only the placements': the view's position must
	// reach the head of the log, whatever the last event is (a seal, an
	// idempotency record), for the reconciler to know it caught up
	sub, err := r.store.SubscribeAll(ctx, r.view.Position, eventstore.Filter{})
	if err != nil {
		return err
	}
	defer func() { _ = sub.Close() }()
	events, failed := make(chan eventstore.RecordedEvent, 256), make(chan error, 1)
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		for {
			re, err := sub.Recv(rctx)
			if err != nil {
				failed <- err
				return
			}
			select {
			case events <- re:
			case <-rctx.Done():
				failed <- rctx.Err()
				return
			}
		}
	}()
	tick, snap := time.NewTicker(200*time.Millisecond), time.NewTicker(r.snapshotEvery())
	defer tick.Stop()
	defer snap.Stop()
	saved := r.view.Position
	for {
		if r.view.Position >= head {
			r.caughtUp()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-failed:
			return err
		case re := <-events:
			r.fold(ctx, re)
		case <-tick.C:
			r.tick(ctx)
		case <-snap.C:
			saved = r.saveIfChanged(ctx, saved)
		}
	}
}

// tick settles what is due, once the view has reached where the log was
// when it started following: during a long catch-up, what looks unsettled
// may be settled further on.
func (r *Reconciler) tick(ctx context.Context) {
	if !r.caught.Load() {
		if h, err := r.store.Head(ctx); err != nil || h != r.view.Position {
			return
		}
		r.caughtUp()
	}
	r.recheck()
	r.settleDue(ctx)
}

// caughtUp starts tracking, once the view has reached the head of the
// log: every placement it shows unsettled is due after the grace (a
// command under way when the log was read may still finish its steps),
// and counted.
func (r *Reconciler) caughtUp() {
	if !r.tracking {
		r.tracking = true
		clear(r.unsettled)
		when := time.Now().Add(r.Grace)
		for _, id := range r.view.Unsettled() {
			r.unsettled[id] = true
			r.due[id] = when
		}
		r.nUnsettled.Store(int64(len(r.unsettled)))
	}
	r.caught.Store(true)
}

// saveIfChanged writes the snapshot when the view moved since saved, and
// returns the position saved.
//
// The follower waits for a save, which writes the whole view: a national
// season's takes seconds (three million applications). So a save comes
// no sooner than twenty times what the last one took after it, which
// leaves the follower at least 95 % of its time.
func (r *Reconciler) saveIfChanged(ctx context.Context, saved eventstore.Position) eventstore.Position {
	if r.view.Position == saved || time.Since(r.savedAt) < saveSpacing*r.saveTook {
		return saved
	}
	start := time.Now()
	err := r.save(ctx)
	r.savedAt, r.saveTook = time.Now(), time.Since(start)
	if err != nil {
		r.log.Warn("reconciler snapshot not written", "err", err)
		return saved
	}
	return r.view.Position
}

func (r *Reconciler) snapshotEvery() time.Duration {
	if r.SnapshotEvery > 0 {
		return r.SnapshotEvery
	}
	return 10 * time.Second
}

// fold applies one event to the view and schedules the placements it
// touched.
func (r *Reconciler) fold(ctx context.Context, re eventstore.RecordedEvent) {
	if !filter.Match(re.Stream, re.Type) {
		r.view.Position = max(r.view.Position, re.Position)
		return
	}
	touched, forgotten := r.view.Apply(re)
	if r.tracking {
		when := time.Now().Add(r.Grace)
		for _, id := range r.view.IDs(touched) {
			r.due[id] = when
			r.unsettled[id] = true
		}
		r.nUnsettled.Store(int64(len(r.unsettled)))
	}
	if forgotten != "" {
		// idempotent: a forget interrupted before its key was destroyed
		// is finished here
		if err := r.svc.DestroyKey(forgotten); err != nil && ctx.Err() == nil {
			r.log.Warn("reconciler: destroying a forgotten pupil's key failed", "pupil", forgotten, "err", err)
		}
	}
}

// settleDue settles each placement whose grace has passed and that the
// view shows unsettled.
func (r *Reconciler) settleDue(ctx context.Context) {
	now := time.Now()
	for id, at := range r.due {
		if now.Before(at) {
			continue
		}
		if _, ok := r.view.State(id).Next(); !ok {
			delete(r.due, id)
			continue
		}
		if err := r.repair(ctx, id); err != nil {
			if ctx.Err() != nil {
				return
			}
			r.failed.Add(1)
			r.log.Warn("reconciler: settling a placement failed, retrying", "application", id, "err", err)
			r.due[id] = now.Add(2 * time.Second)
			continue
		}
		r.repairs.Add(1)
		// its own events bring it back to be checked once the view has them
		delete(r.due, id)
	}
}

// repair settles one placement through the command layer. The command ID
// derives from the application and the last event the view holds of it,
// so two reconcilers repairing the same state write the same event IDs,
// and the store keeps one.
func (r *Reconciler) repair(ctx context.Context, id string) error {
	p, _ := r.view.lookUp(id)
	cid := fmt.Sprintf("reconcile/%s/%d", id, p.Last)
	clock := r.Clock
	if clock == nil {
		clock = time.Now
	}
	m := commands.Meta{CommandID: cid, CorrelationID: cid, Actor: Actor, Now: clock().UTC()}
	if p.Status == "" && p.Booking != "" {
		// a booking interrupted before it made this application
		_, err := r.svc.SettleBooking(ctx, m, p.Offer, p.Booking)
		return err
	}
	_, err := r.svc.Settle(ctx, m, id)
	return err
}

// start loads the snapshot, once.
func (r *Reconciler) start(ctx context.Context) {
	if r.started {
		return
	}
	r.started = true
	if err := r.load(ctx); err != nil {
		r.log.Warn("reconciler snapshot not used: reading the log from its start", "err", err)
	}
}

// CatchUp folds the log up to its head into the view, starting from the
// snapshot when there is one.
func (r *Reconciler) CatchUp(ctx context.Context) error {
	r.start(ctx)
	for {
		evs, err := r.store.ReadAll(ctx, r.view.Position, 1000)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			r.caughtUp()
			return nil
		}
		for _, re := range evs {
			r.fold(ctx, re)
		}
	}
}

// SettleAll catches up with the log and settles at once every placement
// it shows unsettled, without waiting for any grace: for a process that
// is alone on the log (a check after a crash, tests). It returns how many
// it settled.
func (r *Reconciler) SettleAll(ctx context.Context) (int, error) {
	if err := r.CatchUp(ctx); err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, id := range r.view.Unsettled() {
		if err := r.repair(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("application %s: %w", id, err))
			continue
		}
		n++
	}
	if err := errors.Join(errs...); err != nil {
		return n, err
	}
	if err := r.CatchUp(ctx); err != nil {
		return n, err
	}
	return n, r.save(ctx)
}
