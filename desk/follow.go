package desk

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"passerelle/domain"
	"passerelle/eventstore"
)

// Opener restores the personal fields sealed in an event (the pupil's
// birth date, for the age rule).
type Opener interface{ Open(domain.Event) error }

// Follow reads the log up to its head, counts every pupil's eligible
// offers, then follows the log live until ctx ends, retrying failures of
// the store with a growing pause. Queries wait for it (Wait). With a
// snapshot (SnapshotTo), it starts from the snapshot and reads only the
// log after it, saves one after a long catch-up, and one as it stops
// when the log moved since the last.
func (ix *Index) Follow(ctx context.Context, store eventstore.Store, opener Opener, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	defer func() {
		if !ix.Ready() {
			return
		}
		ix.save(context.WithoutCancel(ctx), store, log)
	}()
	pause := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := ix.follow(ctx, store, opener, log)
		if ctx.Err() != nil {
			return
		}
		log.Warn("desk index: following the log failed, retrying", "err", err, "in", pause)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Second)
	}
}

func (ix *Index) follow(ctx context.Context, store eventstore.Store, opener Opener, log *slog.Logger) error {
	if !ix.Ready() {
		if err := ix.start(ctx, store, opener, log); err != nil {
			return err
		}
	}
	sub, err := store.SubscribeAll(ctx, ix.Position(), eventstore.Filter{})
	if err != nil {
		return err
	}
	defer func() { _ = sub.Close() }()
	events, failed := make(chan eventstore.RecordedEvent, 256), make(chan error, 1)
	go func() {
		for {
			re, err := sub.Recv(ctx)
			if err != nil {
				failed <- err
				return
			}
			select {
			case events <- re:
			case <-ctx.Done():
				failed <- ctx.Err()
				return
			}
		}
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-failed:
			return err
		case <-tick.C:
			ix.Tick()
		case re := <-events:
			batch := []Event{decode(re, opener)}
			for more := true; more && len(batch) < 256; {
				select {
				case re := <-events:
					batch = append(batch, decode(re, opener))
				default:
					more = false
				}
			}
			ix.Apply(batch...)
		}
	}
}

// start brings the index to the log's head, from its snapshot when there
// is a good one, saves a snapshot when it read many events, and counts.
func (ix *Index) start(ctx context.Context, store eventstore.Store, opener Opener, log *slog.Logger) error {
	if ix.Position() == 0 {
		t := time.Now()
		switch ok, err := ix.load(ctx, store); {
		case err != nil:
			log.Warn("desk index: snapshot not used, reading the log from its start", "err", err)
		case ok:
			log.Info("desk index: started from its snapshot", "position", ix.Position(), "took", time.Since(t).Round(time.Millisecond))
		}
	}
	n, err := ix.readToHead(ctx, store, opener)
	if err != nil {
		return err
	}
	if n >= saveAfter {
		ix.save(ctx, store, log)
	}
	ix.count()
	return nil
}

// save saves the snapshot, when the index keeps one, and says so.
func (ix *Index) save(ctx context.Context, store eventstore.Store, log *slog.Logger) {
	ix.mu.RLock()
	same := ix.pos == ix.savedAt
	ix.mu.RUnlock()
	if ix.snapFile == "" || same {
		return // none kept, or the one saved is current
	}
	t := time.Now()
	if err := ix.Save(ctx, store); err != nil {
		log.Warn("desk index: saving the snapshot failed", "err", err)
		return
	}
	log.Info("desk index: snapshot saved", "position", ix.Position(), "took", time.Since(t).Round(time.Millisecond))
}

// CatchUp folds the log up to its head, then counts every pupil's eligible
// offers: from then on the index is ready.
func (ix *Index) CatchUp(ctx context.Context, store eventstore.Store, opener Opener) error {
	if _, err := ix.readToHead(ctx, store, opener); err != nil {
		return err
	}
	ix.count()
	return nil
}

// readToHead folds the log from the index's position up to its head,
// and answers how many events it read.
func (ix *Index) readToHead(ctx context.Context, store eventstore.Store, opener Opener) (int, error) {
	read := 0
	for {
		evs, err := store.ReadAll(ctx, ix.Position(), 1000)
		if err != nil {
			return read, err
		}
		if len(evs) == 0 {
			return read, nil
		}
		read += len(evs)
		batch := make([]Event, len(evs))
		for i, re := range evs {
			batch[i] = decode(re, opener)
		}
		ix.Apply(batch...)
	}
}

// count counts every pupil's eligible offers: from then on the index is
// ready.
func (ix *Index) count() {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.weeks.advance(ix.clock())
	ix.countAll()
	ix.notify()
}

// Ready reports whether the index has read the log up to its head once.
func (ix *Index) Ready() bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.counted
}

// decode keeps the events the index folds; the others only move its
// position.
func decode(re eventstore.RecordedEvent, opener Opener) Event {
	out := Event{Position: re.Position}
	switch cat, _, _ := strings.Cut(re.Stream, "-"); cat {
	case "school", "pupil", "offer":
	case "application":
		if !applicationTypes[re.Type] {
			return out
		}
	default:
		return out
	}
	e, err := domain.Decode(re.Type, re.Data)
	if err != nil {
		return out // a type this version does not know
	}
	if pr, ok := e.(*domain.PupilRegistered); ok && opener != nil {
		if err := opener.Open(pr); err != nil {
			pr.BirthDate = "" // unreadable: the age rule cannot be checked, as for an erased pupil
		}
	}
	out.Data = e
	return out
}

// applicationTypes are the application events the index folds: a
// proposal made, and its answers.
var applicationTypes = map[string]bool{}

func init() {
	for _, e := range []domain.Event{domain.ApplicationSubmitted{}, domain.ApplicationAccepted{}, domain.ApplicationRejected{},
		domain.ApplicationWithdrawn{}, domain.ApplicationCancelled{}, domain.ApplicationExpired{}, domain.ApplicationOfferWithdrawn{}} {
		applicationTypes[e.EventType()] = true
	}
}

// ErrNotReady is returned by Wait: the index has not reached the position
// asked for, or not caught up with the log yet.
var ErrNotReady = errors.New("the desk index is not ready")

// Wait blocks until the index is ready and has applied want, at most
// maxWait.
func (ix *Index) Wait(ctx context.Context, want eventstore.Position, maxWait time.Duration) error {
	timer := time.NewTimer(maxWait)
	defer timer.Stop()
	for {
		ix.mu.RLock()
		done, changed := ix.counted && ix.pos >= want, ix.changed
		ix.mu.RUnlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return ErrNotReady
		case <-changed:
		}
	}
}
