package reconcile

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkUnsettled measures what the metric of unsettled placements
// costs on a view of -apps applications: the view's own list (each
// placement's state, before), the count the reconciler keeps (now), and
// the recheck of each tick, here of every placement the random view
// leaves unsettled (a running service has few):
//
//	go test -run XXX -bench BenchmarkUnsettled ./reconcile [-args -apps 1000000]
func BenchmarkUnsettled(b *testing.B) {
	v := randomView(rand.New(rand.NewPCG(1, 2)), *benchApps)
	r := New(nil, nil, "", nil)
	r.view = v
	for _, id := range v.Unsettled() {
		r.unsettled[id] = true
	}
	r.recheck()
	r.caught.Store(true)
	b.Run("view-list", func(b *testing.B) {
		for b.Loop() {
			_ = len(v.Unsettled())
		}
	})
	b.Run("counted", func(b *testing.B) {
		for b.Loop() {
			_ = r.Unsettled()
		}
	})
	b.Run("recheck", func(b *testing.B) {
		for b.Loop() {
			r.recheck()
		}
		b.ReportMetric(float64(len(r.unsettled)), "unsettled")
	})
}
