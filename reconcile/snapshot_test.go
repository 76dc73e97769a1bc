package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/reconcile"
)

// countingStore counts the events read from the log.
type countingStore struct {
	eventstore.Store
	read int
}

func (c *countingStore) ReadAll(ctx context.Context, from eventstore.Position, max int) ([]eventstore.RecordedEvent, error) {
	evs, err := c.Store.ReadAll(ctx, from, max)
	c.read += len(evs)
	return evs, err
}

// The reconciler keeps its view in its snapshot: a new one (after a
// restart) starts from there and reads only the events since; a snapshot
// of another log, or a damaged one, is not used.
func TestSnapshotResumesWhereItWas(t *testing.T) {
	w := newWorld(t, 2)
	app := w.apply(0, "2026-W50")
	file := filepath.Join(t.TempDir(), "reconciler.snapshot")
	ctx, cancel := context.WithCancel(context.Background())
	r := reconcile.New(w.store, w.service(w.store), file, nil)
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for r.Unsettled() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the reconciler did not catch up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	head, _ := w.store.Head(context.Background())

	// one more application after the stop, interrupted after its
	// submission: the next reconciler must see it
	cs := &crashing{Store: w.store}
	cs.left.Store(1)
	if _, err := w.service(cs).Apply(context.Background(), w.meta(), applyInput(w, 1)); !errors.Is(err, errCrash) {
		t.Fatalf("apply: %v", err)
	}
	counting := &countingStore{Store: w.store}
	r2 := reconcile.New(counting, w.service(w.store), file, nil)
	n, err := r2.SettleAll(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("settled %d: %v", n, err)
	}
	after, _ := w.store.Head(context.Background())
	if counting.read > int(after-head)+2 {
		t.Fatalf("read %d events: the snapshot at %d was not used (head now %d)", counting.read, head, after)
	}
	if st := w.view().State(app); st.Status != domain.StatusSubmitted || !st.Tracked {
		t.Fatalf("first application %+v", st)
	}

	// a damaged snapshot: read the log from its start, still settle
	if err := os.WriteFile(file, []byte("not a snapshot"), 0o600); err != nil {
		t.Fatal(err)
	}
	counting = &countingStore{Store: w.store}
	if _, err := reconcile.New(counting, w.service(w.store), file, nil).SettleAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if counting.read < int(after) {
		t.Fatalf("read %d events of %d with a damaged snapshot", counting.read, after)
	}
}

// A placement the snapshot shows unsettled is settled by the next
// reconciler even when no event after the snapshot names it: what it
// shows unsettled once caught up is due, whether from the snapshot or
// from the log.
func TestSnapshotHoldingAnUnsettledPlacement(t *testing.T) {
	w := newWorld(t, 2)
	cs := &crashing{Store: w.store}
	cs.left.Store(1)
	if _, err := w.service(cs).Apply(context.Background(), w.meta(), applyInput(w, 0)); !errors.Is(err, errCrash) {
		t.Fatalf("apply: %v", err)
	}
	file := filepath.Join(t.TempDir(), "reconciler.snapshot")
	run := func(grace time.Duration, until func(r *reconcile.Reconciler) bool) {
		t.Helper()
		r := reconcile.New(w.store, w.service(w.store), file, nil)
		r.Grace = grace
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		}()
		for deadline := time.Now().Add(10 * time.Second); !until(r); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("unsettled %d, repairs %v", r.Unsettled(), fmt.Sprint(r.Repairs()))
			}
		}
	}
	// the first sees it and stops before its grace ends: the snapshot holds it
	run(time.Hour, func(r *reconcile.Reconciler) bool { return r.Unsettled() == 1 })
	if n := len(w.view().Unsettled()); n != 1 {
		t.Fatalf("%d unsettled in the log, want 1", n)
	}
	run(0, func(r *reconcile.Reconciler) bool { done, _ := r.Repairs(); return done == 1 && r.Unsettled() == 0 })
	if left := w.view().Unsettled(); len(left) > 0 {
		t.Fatalf("still unsettled: %v", left)
	}
}
