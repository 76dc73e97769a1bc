package projections_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/eventstore/embedded"
	"passerelle/eventstore/esdb"
	"passerelle/eventstore/esdbserver/esdbtest"
	"passerelle/internal/testsupport/eventgen"
	"passerelle/internal/testsupport/redistest"
	"passerelle/projections"
)

func openStoreAt(dir string) (eventstore.Store, error) { return embedded.Open(dir) }

func openStore(t *testing.T) eventstore.Store {
	t.Helper()
	s, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func appendEvent(t *testing.T, s eventstore.Store, stream string, e domain.Event) eventstore.Position {
	t.Helper()
	b, err := domain.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	md := eventstore.Metadata{CommandID: "test", Actor: eventstore.Actor{Role: "backoffice"}, OccurredAt: time.Now().UTC()}.Encode()
	res, err := s.Append(context.Background(), stream, eventstore.Any, eventstore.EventData{
		ID: eventstore.EventID(fmt.Sprintf("%s/%d", stream, rand.Int64()), 0), Type: e.EventType(), Data: b, Metadata: md,
	})
	if err != nil {
		t.Fatal(err)
	}
	return res.Position
}

// generate appends a world's commands until at least n events in all.
func generate(t testing.TB, s eventstore.Store, w *eventgen.World, n int) {
	t.Helper()
	if err := w.Run(context.Background(), s, n, 8); err != nil {
		t.Fatal(err)
	}
}

func counters(t *testing.T, rdb redis.UniversalClient) map[string]string {
	t.Helper()
	prefix, err := projections.ActivePrefix(context.Background(), rdb, projections.StatsName)
	if err != nil {
		t.Fatal(err)
	}
	h, err := rdb.HGetAll(context.Background(), prefix+projections.StatsCountersKey()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// checkStats compares the counters with the figures of the world's own
// aggregates: open offers and their seats, nationally, by sector and by
// week, and applications and conventions by status.
func checkStats(t *testing.T, rdb redis.UniversalClient, w *eventgen.World) {
	t.Helper()
	want := map[string]int{}
	for _, o := range w.Offers() {
		if !o.Open() {
			continue
		}
		total, free := 0, 0
		for _, week := range o.Posted.Weeks {
			total, free = total+o.Posted.Seats, free+o.Free(week)
			want["week:"+week+":offers_open"]++
			want["week:"+week+":seats_total"] += o.Posted.Seats
			want["week:"+week+":seats_available"] += o.Free(week)
		}
		for _, scope := range []string{"all", "sector:" + o.Posted.Sector} {
			want[scope+":offers_open"]++
			want[scope+":seats_total"] += total
			want[scope+":seats_available"] += free
		}
	}
	for _, a := range w.Applications() {
		want["applications:"+a.Status]++
	}
	for _, c := range w.Conventions() {
		want["conventions:"+c.Status()]++
	}
	got := counters(t, rdb)
	for field, n := range want {
		if g, _ := strconv.Atoi(got[field]); g != n {
			t.Fatalf("%s: got %d, want %d", field, g, n)
		}
	}
	if want["all:offers_open"] == 0 || want["applications:submitted"]+want["applications:read"] == 0 {
		t.Fatalf("the world has too little to count: %v", want)
	}
}

// run starts a runner and returns a stop function.
func run(t *testing.T, s eventstore.Store, rdb redis.UniversalClient, ps ...projections.Projector) (stop func()) {
	t.Helper()
	return runWith(t, s, rdb, func(*projections.Runner) {}, ps...)
}

// runWith is run with the runner set up by with.
func runWith(t *testing.T, s eventstore.Store, rdb redis.UniversalClient, with func(*projections.Runner), ps ...projections.Projector) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if err := projections.ServeEmpty(ctx, rdb, s, ps...); err != nil {
		t.Fatal(err)
	}
	r := projections.NewRunner(s, rdb, nil, ps...)
	with(r)
	done := make(chan error, 1)
	running := make(chan struct{})
	go func() { done <- r.Run(ctx, running) }()
	select {
	case <-running:
	case err := <-done:
		t.Fatalf("runner stopped: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("runner did not start")
	}
	var once atomic.Bool
	stop = func() {
		if once.CompareAndSwap(false, true) {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("runner: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	return stop
}

func waitFor(t *testing.T, rdb redis.UniversalClient, name string, pos eventstore.Position) {
	t.Helper()
	waitWithin(t, rdb, name, pos, 20*time.Second)
}

func waitWithin(t *testing.T, rdb redis.UniversalClient, name string, pos eventstore.Position, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		prefix, err := projections.ActivePrefix(context.Background(), rdb, name)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := projections.Checkpoint(context.Background(), rdb, prefix)
		if err != nil {
			t.Fatal(err)
		}
		if cp >= pos {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s stuck at %d, want %d", name, cp, pos)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A projector stopped mid-stream resumes from its checkpoint: the counters
// equal a single application of every event.
func TestStatsResumeWithoutDoubleCounting(t *testing.T) {
	redistest.EachRedis(t, func(t *testing.T, r redistest.Redis) {
		ctx := context.Background()
		s := openStore(t)
		rdb := r.Client(t)
		w := eventgen.New(eventgen.Options{Seed: 1, Setup: eventgen.Population{Employers: 5, Schools: 5, Pupils: 40, Offers: 20}})
		generate(t, s, w, 300)
		stop := run(t, s, rdb, projections.Stats{})
		first, _ := s.Head(ctx)
		waitFor(t, rdb, projections.StatsName, first)
		checkStats(t, rdb, w)
		stop()

		// more events, and the runner stopped while it applies the middle one
		generate(t, s, w, w.Events()+300)
		second, _ := s.Head(ctx)
		gate := &pauseAt{pos: (first + second) / 2, reached: make(chan struct{})}
		gated := r.Client(t)
		gated.AddHook(gate)
		stop = run(t, s, gated, projections.Stats{})
		select {
		case <-gate.reached:
		case <-time.After(20 * time.Second):
			t.Fatal("the runner never reached the middle of the new events")
		}
		stop()
		prefix, _ := projections.ActivePrefix(ctx, rdb, projections.StatsName)
		if cp, _ := projections.Checkpoint(ctx, rdb, prefix); cp < first || cp >= gate.pos {
			t.Fatalf("stopped at %d: not part way between %d and %d", cp, first, gate.pos)
		}
		generate(t, s, w, w.Events()+200)

		run(t, s, rdb, projections.Stats{})
		head, _ := s.Head(ctx)
		waitFor(t, rdb, projections.StatsName, head)
		checkStats(t, rdb, w)
	})
}

// scriptHook calls f with the position of every apply script run; an
// error from f fails that run.
type scriptHook func(ctx context.Context, pos eventstore.Position) error

func (h scriptHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h scriptHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h scriptHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		if name := cmd.Name(); (name == "evalsha" || name == "eval") && len(args) > 5 {
			pos, _ := strconv.ParseUint(fmt.Sprint(args[5]), 10, 64) // the apply script's position
			if err := h(ctx, eventstore.Position(pos)); err != nil {
				return err
			}
		}
		return next(ctx, cmd)
	}
}

// pauseAt holds the write of the event at pos until the runner stops.
type pauseAt struct {
	pos     eventstore.Position
	reached chan struct{}
	once    sync.Once
}

func (p *pauseAt) DialHook(next redis.DialHook) redis.DialHook { return next }
func (p *pauseAt) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (p *pauseAt) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return scriptHook(func(ctx context.Context, pos eventstore.Position) error {
		if pos < p.pos {
			return nil // events are applied in batches: hold the one that reaches pos
		}
		p.once.Do(func() { close(p.reached) })
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Second):
			return errors.New("the runner was not stopped")
		}
	}).ProcessHook(next)
}

// failOnce fails the first write of each event (a Redis hiccup), so the
// router retries and, past its retries, the subscriber redelivers.
func failOnce() scriptHook {
	var mu sync.Mutex
	seen := map[eventstore.Position]bool{}
	return func(_ context.Context, pos eventstore.Position) error {
		mu.Lock()
		defer mu.Unlock()
		if !seen[pos] {
			seen[pos] = true
			return errors.New("transient failure")
		}
		return nil
	}
}

func TestRetriedEventsAppliedOnce(t *testing.T) {
	s := openStore(t)
	rdb := redistest.Mini(t).Client(t)
	w := eventgen.New(eventgen.Options{Seed: 3, Setup: eventgen.Population{Employers: 3, Schools: 3, Pupils: 20, Offers: 10}})
	generate(t, s, w, 150)
	rdb.AddHook(failOnce())
	run(t, s, rdb, projections.Stats{})
	head, _ := s.Head(context.Background())
	waitFor(t, rdb, projections.StatsName, head)
	checkStats(t, rdb, w)
}

// Live events reach the read model without a restart, and the offer search
// model follows seat changes.
func TestOffersFollowSeats(t *testing.T) {
	redistest.EachRedis(t, func(t *testing.T, r redistest.Redis) {
		s := openStore(t)
		rdb := r.Client(t)
		run(t, s, rdb, projections.Offers{})
		ctx := context.Background()
		appendEvent(t, s, domain.OfferStream("x"), &domain.OfferPosted{OfferID: "x", Sector: "s3", Department: "75", CommuneCode: "75101",
			Grades: []domain.Grade{domain.Grade3e}, Weeks: []string{"2026-W10"}, Seats: 1, Lat: 48.86, Lon: 2.34, Title: "t"})
		pos := appendEvent(t, s, domain.OfferStream("x"), &domain.SeatHeld{OfferID: "x", ApplicationID: "a", Weeks: []string{"2026-W10"}})
		waitFor(t, rdb, projections.OffersName, pos)
		prefix, _ := projections.ActivePrefix(ctx, rdb, projections.OffersName)
		if ok, _ := rdb.SIsMember(ctx, prefix+projections.OfferIndexAvailable(), "x").Result(); ok {
			t.Fatal("a full offer is still in the available index")
		}
		if ok, _ := rdb.SIsMember(ctx, prefix+projections.OfferIndex("grade", "3e"), "x").Result(); !ok {
			t.Fatal("a full offer left the grade index")
		}
		for _, geo := range offerGeoSets {
			if pos, _ := rdb.GeoPos(ctx, prefix+geo, "x").Result(); len(pos) != 1 || pos[0] == nil || math.Abs(pos[0].Latitude-48.86) > 1e-4 {
				t.Fatalf("an open offer is not on the map %s: %v", geo, pos)
			}
		}
		if ids, _ := rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: prefix + projections.OfferIDs(), Start: "-", Stop: "+", ByLex: true}).Result(); !slices.Equal(ids, []string{"x"}) {
			t.Fatalf("open offers in id order: %v", ids)
		}
		pos = appendEvent(t, s, domain.OfferStream("x"), &domain.SeatReleased{OfferID: "x", ApplicationID: "a", Weeks: []string{"2026-W10"}})
		waitFor(t, rdb, projections.OffersName, pos)
		if ok, _ := rdb.SIsMember(ctx, prefix+projections.OfferIndex("available", "2026-W10"), "x").Result(); !ok {
			t.Fatal("a released seat did not bring the offer back")
		}
		pos = appendEvent(t, s, domain.OfferStream("x"), &domain.OfferWithdrawn{OfferID: "x"})
		waitFor(t, rdb, projections.OffersName, pos)
		if n, _ := rdb.SCard(ctx, prefix+projections.OfferIndexOpen()).Result(); n != 0 {
			t.Fatal("a withdrawn offer is still open")
		}
		if n, _ := rdb.Exists(ctx, prefix+projections.OfferGeoIndex("grade", "4e")).Result(); n != 0 {
			t.Fatal("an offer for 3e only is on the map of 4e offers")
		}
		for _, key := range append([]string{projections.OfferIDs()}, offerGeoSets...) {
			if n, _ := rdb.ZCard(ctx, prefix+key).Result(); n != 0 {
				t.Fatalf("a withdrawn offer is still in %s", key)
			}
		}
	})
}

// offerGeoSets are the geo sets an open offer of TestOffersFollowSeats is
// on: all offers', and those of its grade and places.
var offerGeoSets = []string{projections.OfferGeo(), projections.OfferGeoIndex("grade", "3e"),
	projections.OfferGeoIndex("sector", "s3"), projections.OfferGeoIndex("department", "75"), projections.OfferGeoIndex("commune", "75101")}

// Two runners on the same Redis (two service instances) apply every event
// once between them: the checkpoint comparison inside the atomic write
// rejects the second application.
func TestConcurrentRunnersApplyOnce(t *testing.T) {
	redistest.EachRedis(t, func(t *testing.T, r redistest.Redis) {
		s := openStore(t)
		rdb := r.Client(t)
		w := eventgen.New(eventgen.Options{Seed: 7, Setup: eventgen.Population{Employers: 5, Schools: 5, Pupils: 40, Offers: 20}})
		generate(t, s, w, 200)
		run(t, s, rdb, projections.Stats{})
		run(t, s, rdb, projections.Stats{})
		generate(t, s, w, 400)
		head, _ := s.Head(context.Background())
		waitFor(t, rdb, projections.StatsName, head)
		checkStats(t, rdb, w)
	})
}

// The projection's subscription drops when the EventStoreDB server stops
// mid-stream; after the restart it resumes with no event lost or applied
// twice.
func TestResumeAcrossEventStoreRestart(t *testing.T) {
	srv := esdbtest.Start(t)
	s, err := esdb.Open(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	rdb := redistest.Mini(t).Client(t)
	w := eventgen.New(eventgen.Options{Seed: 7, Setup: eventgen.Population{Employers: 5, Schools: 5, Pupils: 40, Offers: 20}})
	generate(t, s, w, 300)
	run(t, s, rdb, projections.Stats{})
	time.Sleep(20 * time.Millisecond) // let the projection get part way
	srv.Restart(t)
	// writers wait for the server to answer again; the projection must
	// find its own way back
	deadline := time.Now().Add(10 * time.Second)
	for s.Ping(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the restarted server does not answer")
		}
		time.Sleep(50 * time.Millisecond)
	}
	generate(t, s, w, 600)
	head, err := s.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, rdb, projections.StatsName, head)
	checkStats(t, rdb, w)
}

// olderStats is the stats projector of a build one layout behind.
type olderStats struct{ projections.Stats }

func (olderStats) Layout() int { return projections.Stats{}.Layout() - 1 }

// During a rolling upgrade (or a rollback) a runner of an older build
// meets a generation written by a newer one: it neither rebuilds it back
// to its own layout nor writes to it; it waits. The newer build then
// carries on where it was.
func TestOlderBuildLeavesANewerLayoutAlone(t *testing.T) {
	redistest.EachRedis(t, func(t *testing.T, r redistest.Redis) {
		ctx := context.Background()
		s := openStore(t)
		rdb := r.Client(t)
		w := eventgen.New(eventgen.Options{Seed: 11, Setup: eventgen.Population{Employers: 5, Schools: 5, Pupils: 40, Offers: 20}})
		generate(t, s, w, 200)
		stop := run(t, s, rdb, projections.Stats{})
		head, _ := s.Head(ctx)
		waitFor(t, rdb, projections.StatsName, head)
		stop()
		prefix, err := projections.ActivePrefix(ctx, rdb, projections.StatsName)
		if err != nil || prefix == "" {
			t.Fatalf("served generation: %q %v", prefix, err)
		}
		generate(t, s, w, 400)

		older := projections.NewRunner(s, rdb, nil, olderStats{})
		runCtx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
		defer cancel()
		if err := older.Run(runCtx, nil); err != nil {
			t.Fatalf("older runner: %v", err)
		}
		after, _ := projections.ActivePrefix(ctx, rdb, projections.StatsName)
		layout, _ := projections.MarkerLayout(ctx, rdb, after)
		pos, _ := projections.Checkpoint(ctx, rdb, after)
		if after != prefix || layout != (projections.Stats{}).Layout() || pos != head {
			t.Fatalf("the older build touched the newer generation: served %s (was %s), layout %d, checkpoint %s (was %s)", after, prefix, layout, pos, head)
		}

		run(t, s, rdb, projections.Stats{})
		head, _ = s.Head(ctx)
		waitFor(t, rdb, projections.StatsName, head)
		if now, _ := projections.ActivePrefix(ctx, rdb, projections.StatsName); now != prefix {
			t.Fatalf("the newer build rebuilt (%s, was %s) instead of catching up", now, prefix)
		}
		checkStats(t, rdb, w)
	})
}

// A document the event creates is not read before it is written: posting
// an offer reads nothing from Redis, in the search nor in the statistics;
// a later event of the offer reads its documents, and finds them whole.
func TestCreatedDocumentsAreNotRead(t *testing.T) {
	redistest.EachRedis(t, func(t *testing.T, r redistest.Redis) {
		s := openStore(t)
		rdb := r.Client(t)
		var mu sync.Mutex
		var read []string
		runWith(t, s, rdb, func(run *projections.Runner) {
			run.MGet = func(ctx context.Context, keys []string) ([]any, error) {
				mu.Lock()
				read = append(read, keys...)
				mu.Unlock()
				return rdb.MGet(ctx, keys...).Result()
			}
		}, projections.Offers{}, projections.Stats{})
		reads := func() []string {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(read)
		}
		pos := appendEvent(t, s, domain.OfferStream("x"), &domain.OfferPosted{OfferID: "x", Sector: "s3", Department: "75", CommuneCode: "75101",
			Grades: []domain.Grade{domain.Grade3e}, Weeks: []string{"2026-W10"}, Seats: 2, Lat: 48.86, Lon: 2.34, Title: "t"})
		waitFor(t, rdb, projections.OffersName, pos)
		waitFor(t, rdb, projections.StatsName, pos)
		if got := reads(); len(got) != 0 {
			t.Fatalf("posting an offer read %v", got)
		}
		pos = appendEvent(t, s, domain.OfferStream("x"), &domain.SeatHeld{OfferID: "x", ApplicationID: "a", Weeks: []string{"2026-W10"}})
		waitFor(t, rdb, projections.OffersName, pos)
		waitFor(t, rdb, projections.StatsName, pos)
		if got := reads(); len(got) != 2 {
			t.Fatalf("holding a seat read %v, want the offer's two documents", got)
		}
		ctx := context.Background()
		prefix, _ := projections.ActivePrefix(ctx, rdb, projections.OffersName)
		b, err := rdb.Get(ctx, prefix+projections.OfferDocKey("x")).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		var d projections.OfferDoc
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		if d.Title != "t" || d.SeatsByWeek["2026-W10"].Available != 1 {
			t.Fatalf("the offer after a seat held: %s", b)
		}
	})
}

// slowOffers is the offers' projector taking its time over an offer posted
// in slowStream.
type slowOffers struct{ projections.Offers }

const slowStream = "offer-slow"

func (p slowOffers) Touches(ev projections.Event, docs projections.Docs) []projections.Ref {
	if ev.Stream == slowStream {
		time.Sleep(500 * time.Millisecond)
	}
	return p.Offers.Touches(ev, docs)
}

// A forget counts as applied by every projection once each has passed it,
// those that do not fold it (and leave it undecoded) included: the last
// to pass it here is the offers', which only passes it over, and the
// erasure is then complete.
func TestForgetAppliedByProjectionsThatDoNotFoldIt(t *testing.T) {
	s := openStore(t)
	rdb := redistest.Mini(t).Client(t)
	var r *projections.Runner
	defer runWith(t, s, rdb, func(run *projections.Runner) { r = run }, projections.Placements{}, slowOffers{}, projections.Stats{})()
	appendEvent(t, s, slowStream, &domain.OfferPosted{OfferID: "slow", Sector: "s3", Department: "75", CommuneCode: "75101",
		Grades: []domain.Grade{domain.Grade3e}, Weeks: []string{"2026-W10"}, Seats: 1, Lat: 48.86, Lon: 2.34, Title: "t"})
	pos := appendEvent(t, s, domain.PupilStream("p1"), &domain.PupilForgotten{PupilID: "p1"})
	for _, name := range []string{projections.PlacementsName, projections.OffersName, projections.StatsName} {
		waitFor(t, rdb, name, pos)
	}
	deadline := time.Now().Add(5 * time.Second)
	for r.Purged() < pos {
		if time.Now().After(deadline) {
			t.Fatalf("every projection applied the forget at %d; the erasure counts as applied up to %d", pos, r.Purged())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
