package reconcile

import (
	"context"

	"passerelle/eventstore"
)

// Step folds one event and rechecks, as Run's fold and its next tick
// do, and returns how many placements Unsettled then reports.
func (r *Reconciler) Step(ctx context.Context, re eventstore.RecordedEvent) int {
	r.caughtUp()
	r.fold(ctx, re)
	r.recheck()
	return int(r.nUnsettled.Load())
}
