package commands_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"passerelle/commands"
	"passerelle/domain"
	"passerelle/domain/refdata"
	"passerelle/eventstore"
)

// watched counts the reads of pupils' streams, and fails every append
// once left is spent, as a process killed between two steps of a command.
type watched struct {
	eventstore.Store
	pupilReads atomic.Int64
	left       atomic.Int64
}

var errKilled = errors.New("killed")

func (w *watched) ReadStream(ctx context.Context, stream string, dir eventstore.Direction, from uint64, max int) ([]eventstore.RecordedEvent, error) {
	if strings.HasPrefix(stream, "pupil-") {
		w.pupilReads.Add(1)
	}
	return w.Store.ReadStream(ctx, stream, dir, from, max)
}

func (w *watched) Append(ctx context.Context, stream string, exp eventstore.ExpectedRevision, evs ...eventstore.EventData) (eventstore.AppendResult, error) {
	if w.left.Add(-1) < 0 {
		return eventstore.AppendResult{}, errKilled
	}
	return w.Store.Append(ctx, stream, exp, evs...)
}

// An application that ends without ever being accepted settles without
// reading its pupil's stream: the pupil holds nothing for it. One
// accepted, whose confirmation was cut short after the pupil's weeks were
// reserved, still gives them back when it expires.
func TestEndedApplicationSettlesFromWhatItHeld(t *testing.T) {
	f := newFixture(t)
	offerID, apps := f.offerWithPupils(2, 3)
	w := &watched{Store: f.store}
	w.left.Store(1 << 30)
	svc := commands.NewService(w, refdata.MustLoad()).WithCacheSize(0) // every aggregate read from its stream
	ctx := context.Background()

	before := w.pupilReads.Load()
	f.ok(svc.Reject(ctx, f.meta(), apps[0], "complet"))
	expiry := f.meta()
	expiry.Now = expiry.Now.Add(domain.AnswerWithin + time.Hour)
	f.ok(svc.Expire(ctx, expiry, apps[1]))
	if n := w.pupilReads.Load() - before; n != 0 {
		t.Errorf("a rejection and an expiry of applications never accepted read pupils' streams %d times", n)
	}
	for _, id := range apps[:2] {
		if a := f.application(id); !domain.Ended(a.Status) || a.MayHoldWeeks() {
			t.Errorf("application %s: %s, may hold weeks: %v", id, a.Status, a.MayHoldWeeks())
		}
	}

	// accepted, then the confirmation dies after the pupil's weeks are
	// reserved: the application is still accepted, the weeks held
	id := apps[2]
	f.ok(svc.Accept(ctx, f.meta(), id))
	w.left.Store(1)
	if _, err := svc.Confirm(ctx, f.meta(), id); !errors.Is(err, errKilled) {
		t.Fatalf("confirm cut short: %v", err)
	}
	w.left.Store(1 << 30)
	pupil := &domain.Pupil{}
	f.load(domain.PupilStream(f.pupilOf(id)), pupil)
	if _, held := pupil.Reserved[id]; !held || f.application(id).Status != domain.StatusAccepted {
		t.Fatalf("after the cut: weeks held %v, application %s", held, f.application(id).Status)
	}
	late := f.meta()
	late.Now = late.Now.Add(domain.ConfirmWithin + time.Hour)
	f.ok(svc.Expire(ctx, late, id))
	pupil = &domain.Pupil{}
	f.load(domain.PupilStream(f.pupilOf(id)), pupil)
	if a := f.application(id); a.Status != domain.StatusExpired || !a.MayHoldWeeks() {
		t.Errorf("application %s: %s, may hold weeks: %v", id, a.Status, a.MayHoldWeeks())
	}
	if _, held := pupil.Reserved[id]; held {
		t.Error("the expired application still holds the pupil's weeks")
	}
	if f.offer(offerID).Holds(id) {
		t.Error("the expired application still holds its seat")
	}
}
