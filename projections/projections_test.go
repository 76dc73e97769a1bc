package projections_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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

// scenario appends offers, seat holds and releases, and withdrawals at
// random, and returns the statistics a correct projection must show.
type expected struct {
	open, total, available int
	bySector               map[string][3]int
}

func scenario(t *testing.T, s eventstore.Store, rng *rand.Rand, n int, exp *expected) {
	t.Helper()
	type offer struct {
		id, sector string
		seats      int
		weeks      []string
		held       map[string]string // application -> week
		open       bool
	}
	var offers []*offer
	add := func(sector string, d [3]int) {
		v := exp.bySector[sector]
		for i := range v {
			v[i] += d[i]
		}
		exp.bySector[sector] = v
		exp.open, exp.total, exp.available = exp.open+d[0], exp.total+d[1], exp.available+d[2]
	}
	for i := 0; i < n; i++ {
		switch k := rng.IntN(10); {
		case k < 4 || len(offers) == 0:
			o := &offer{id: fmt.Sprintf("o%d-%d", i, rng.Int()), sector: "s" + strconv.Itoa(1+rng.IntN(5)), seats: 1 + rng.IntN(3),
				weeks: []string{"2026-W25", "2026-W26"}[:1+rng.IntN(2)], held: map[string]string{}, open: true}
			offers = append(offers, o)
			appendEvent(t, s, domain.OfferStream(o.id), &domain.OfferPosted{OfferID: o.id, Sector: o.sector, Department: "94",
				Grades: []domain.Grade{domain.Grade2de}, Weeks: o.weeks, Seats: o.seats, Lat: 48.8, Lon: 2.4, Title: "t"})
			sw := o.seats * len(o.weeks)
			add(o.sector, [3]int{1, sw, sw})
		case k < 8:
			o := offers[rng.IntN(len(offers))]
			w := o.weeks[rng.IntN(len(o.weeks))]
			n := 0
			for _, hw := range o.held {
				if hw == w {
					n++
				}
			}
			if n >= o.seats {
				continue
			}
			app := fmt.Sprintf("a%d", i)
			o.held[app] = w
			appendEvent(t, s, domain.OfferStream(o.id), &domain.SeatHeld{OfferID: o.id, ApplicationID: app, Weeks: []string{w}})
			if o.open {
				add(o.sector, [3]int{0, 0, -1})
			}
		case k < 9:
			o := offers[rng.IntN(len(offers))]
			for app, w := range o.held {
				delete(o.held, app)
				appendEvent(t, s, domain.OfferStream(o.id), &domain.SeatReleased{OfferID: o.id, ApplicationID: app, Weeks: []string{w}})
				if o.open {
					add(o.sector, [3]int{0, 0, 1})
				}
				break
			}
		default:
			o := offers[rng.IntN(len(offers))]
			if !o.open {
				continue
			}
			o.open = false
			appendEvent(t, s, domain.OfferStream(o.id), &domain.OfferWithdrawn{OfferID: o.id})
			sw := o.seats * len(o.weeks)
			add(o.sector, [3]int{-1, -sw, -(sw - len(o.held))})
		}
		// events of other categories move checkpoints but change nothing
		if rng.IntN(5) == 0 {
			appendEvent(t, s, "idempotency-"+strconv.Itoa(i), &domain.SchoolRegistered{UAI: "0941234A"})
		}
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

func checkStats(t *testing.T, rdb redis.UniversalClient, exp *expected) {
	t.Helper()
	h := counters(t, rdb)
	get := func(f string) int { n, _ := strconv.Atoi(h[f]); return n }
	if get("all:offers_open") != exp.open || get("all:seats_total") != exp.total || get("all:seats_available") != exp.available {
		t.Fatalf("totals: got open=%d total=%d available=%d, want %d %d %d",
			get("all:offers_open"), get("all:seats_total"), get("all:seats_available"), exp.open, exp.total, exp.available)
	}
	for sector, v := range exp.bySector {
		got := [3]int{get("sector:" + sector + ":offers_open"), get("sector:" + sector + ":seats_total"), get("sector:" + sector + ":seats_available")}
		if got != v {
			t.Fatalf("sector %s: got %v, want %v", sector, got, v)
		}
	}
}

// run starts a runner and returns a stop function.
func run(t *testing.T, s eventstore.Store, rdb redis.UniversalClient, ps ...projections.Projector) (stop func()) {
	t.Helper()
	r := projections.NewRunner(s, rdb, nil, ps...)
	ctx, cancel := context.WithCancel(context.Background())
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

// A projector restarted mid-stream resumes from its checkpoint: the
// counters equal a single application of every event.
func TestStatsResumeWithoutDoubleCounting(t *testing.T) {
	redistest.EachRedis(t, func(t *testing.T, r redistest.Redis) {
		s := openStore(t)
		rdb := r.Client(t)
		rng := rand.New(rand.NewPCG(1, 2))
		exp := &expected{bySector: map[string][3]int{}}

		scenario(t, s, rng, 150, exp)
		stop := run(t, s, rdb, projections.Stats{})
		head, _ := s.Head(context.Background())
		waitFor(t, rdb, projections.StatsName, head)
		checkStats(t, rdb, exp)

		// more events while the projector runs, then stop it part way
		scenario(t, s, rng, 150, exp)
		time.Sleep(5 * time.Millisecond)
		stop()
		scenario(t, s, rng, 100, exp)

		run(t, s, rdb, projections.Stats{})
		head, _ = s.Head(context.Background())
		waitFor(t, rdb, projections.StatsName, head)
		checkStats(t, rdb, exp)
	})
}

// failOnce fails the first write of each event (a Redis hiccup), so the
// router retries and, past its retries, the subscriber redelivers.
type failOnce struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (f *failOnce) DialHook(next redis.DialHook) redis.DialHook { return next }
func (f *failOnce) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (f *failOnce) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		if name := cmd.Name(); (name == "evalsha" || name == "eval") && len(args) > 5 {
			pos := fmt.Sprint(args[5]) // the apply script's position
			f.mu.Lock()
			first := !f.seen[pos]
			f.seen[pos] = true
			f.mu.Unlock()
			if first {
				return errors.New("transient failure")
			}
		}
		return next(ctx, cmd)
	}
}

func TestRetriedEventsAppliedOnce(t *testing.T) {
	s := openStore(t)
	rdb := redistest.Mini(t).Client(t)
	exp := &expected{bySector: map[string][3]int{}}
	scenario(t, s, rand.New(rand.NewPCG(3, 4)), 60, exp)
	rdb.AddHook(&failOnce{seen: map[string]bool{}})
	run(t, s, rdb, projections.Stats{})
	head, _ := s.Head(context.Background())
	waitFor(t, rdb, projections.StatsName, head)
	checkStats(t, rdb, exp)
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
	})
}

// Two runners on the same Redis (two service instances) apply every event
// once between them: the checkpoint comparison inside the atomic write
// rejects the second application.
func TestConcurrentRunnersApplyOnce(t *testing.T) {
	redistest.EachRedis(t, func(t *testing.T, r redistest.Redis) {
		s := openStore(t)
		rdb := r.Client(t)
		exp := &expected{bySector: map[string][3]int{}}
		rng := rand.New(rand.NewPCG(5, 6))
		scenario(t, s, rng, 100, exp)
		run(t, s, rdb, projections.Stats{})
		run(t, s, rdb, projections.Stats{})
		scenario(t, s, rng, 100, exp)
		head, _ := s.Head(context.Background())
		waitFor(t, rdb, projections.StatsName, head)
		checkStats(t, rdb, exp)
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
	rng := rand.New(rand.NewPCG(7, 8))
	exp := &expected{bySector: map[string][3]int{}}
	scenario(t, s, rng, 200, exp)
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
	scenario(t, s, rng, 200, exp)
	head, err := s.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, rdb, projections.StatsName, head)
	checkStats(t, rdb, exp)
}
