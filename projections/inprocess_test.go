package projections_test

import (
	"context"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"passerelle/internal/testsupport/eventgen"
	"passerelle/projections"
)

// Two runners reading and writing live batches straight into the
// in-process server, and a third through the apply script, apply every
// event once between them: the in-process writes are as atomic as the
// script.
func TestInProcessApplyOnce(t *testing.T) {
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	s := openStore(t)
	w := eventgen.New(eventgen.Options{Seed: 9, Setup: eventgen.Population{Employers: 5, Schools: 5, Pupils: 40, Offers: 20}})
	generate(t, s, w, 200)
	inProcess := func(r *projections.Runner) {
		r.Apply, r.MGet = projections.InProcessApply(m), projections.InProcessMGet(m)
	}
	runWith(t, s, rdb, inProcess, projections.Stats{})
	runWith(t, s, rdb, inProcess, projections.Stats{})
	run(t, s, rdb, projections.Stats{})
	generate(t, s, w, 600)
	head, _ := s.Head(context.Background())
	waitFor(t, rdb, projections.StatsName, head)
	checkStats(t, rdb, w)
}
