package readapi_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/redis/go-redis/v9"

	"passerelle/eventstore"
	"passerelle/eventstore/embedded"
	"passerelle/internal/route"
	"passerelle/internal/testsupport/eventgen"
	"passerelle/internal/testsupport/redistest"
	"passerelle/projections"
	"passerelle/readapi"
)

// progress stands for a runner's Progress, moved by the test.
type progress struct {
	mu      sync.Mutex
	applied eventstore.Position
	moved   chan struct{}
}

func (p *progress) get(string) (eventstore.Position, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.applied, p.moved
}

func (p *progress) set(pos eventstore.Position) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.applied = pos
	close(p.moved)
	p.moved = make(chan struct{})
}

// countReads counts the round trips that read a generation's checkpoint,
// once they are answered.
type countReads struct{ n atomic.Int64 }

func (h *countReads) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countReads) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.count([]redis.Cmder{cmd})
		return err
	}
}

func (h *countReads) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.count(cmds)
		return err
	}
}

func (h *countReads) count(cmds []redis.Cmder) {
	for _, c := range cmds {
		if key, ok := c.Args()[len(c.Args())-1].(string); c.Name() == "get" && ok && strings.HasSuffix(key, projections.CheckpointKey("")) {
			h.n.Add(1)
			return
		}
	}
}

// offersLog is an embedded store holding n offers posted by the employers
// of a generated world.
func offersLog(t *testing.T, seed uint64, n, employers int) eventstore.Store {
	t.Helper()
	s, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	w := eventgen.New(eventgen.Options{Seed: seed, Setup: eventgen.Population{Employers: employers}, Weights: map[string]int{"post_offer": 1}})
	if err := w.Run(context.Background(), s, n, 4); err != nil {
		t.Fatal(err)
	}
	return s
}

// serveRebuilt rebuilds p from s into rdb, and returns the generation
// served and its checkpoint.
func serveRebuilt(t *testing.T, s eventstore.Store, rdb *redis.Client, p projections.Projector) (string, eventstore.Position) {
	t.Helper()
	ctx := context.Background()
	projections.SwapGrace = 0
	if _, err := projections.RebuildAll(ctx, s, rdb, []projections.Projector{p}, projections.RebuildOptions{}); err != nil {
		t.Fatal(err)
	}
	prefix, _ := projections.ActivePrefix(ctx, rdb, p.Name())
	at, err := projections.Checkpoint(ctx, rdb, prefix)
	if err != nil || at == eventstore.Start {
		t.Fatalf("checkpoint %v: %v", at, err)
	}
	return prefix, at
}

// TestMinPositionWaitsForTheRunner: a query waiting for a position its
// process's runner has not applied asks Redis once, then waits for the
// runner rather than polling, even while Redis already holds the position
// (written by another process's runner); once the runner here has applied
// it, the query answers at once. Without Progress it polls, as before.
func TestMinPositionWaitsForTheRunner(t *testing.T) {
	s := offersLog(t, 5, 40, 3)
	ctx := context.Background()
	redistest.EachRedis(t, func(t *testing.T, r redistest.Redis) {
		other := r.Client(t)
		prefix, at := serveRebuilt(t, s, other, projections.Offers{})
		saved, _ := other.Get(ctx, projections.CheckpointKey(prefix)).Result()
		defer other.Set(ctx, projections.CheckpointKey(prefix), saved, 0)
		id, _ := other.SRandMember(ctx, prefix+projections.OfferIndexOpen()).Result()
		want := at + 1
		path := "/v1/offers/" + id + "?min_position=" + want.String()

		for _, withProgress := range []bool{true, false} {
			// Redis is behind want until the test moves it
			if err := other.Set(ctx, projections.CheckpointKey(prefix), saved, 0).Err(); err != nil {
				t.Fatal(err)
			}
			opts, _ := redis.ParseURL(r.URL)
			rdb := redis.NewClient(opts)
			reads := &countReads{}
			rdb.AddHook(reads)
			a := readapi.New(rdb)
			a.MaxWait = time.Minute
			p := &progress{applied: at, moved: make(chan struct{})}
			if withProgress {
				a.Progress = p.get
			} else {
				a.PollEvery = 5 * time.Millisecond
			}
			router := chi.NewRouter()
			route.Mount(router, a.Routes())
			answered := make(chan *httptest.ResponseRecorder, 1)
			go func() {
				rec := httptest.NewRecorder()
				router.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
				answered <- rec
			}()
			for reads.n.Load() == 0 { // its first look
				time.Sleep(time.Millisecond)
			}
			// another process's runner applies want
			if err := other.Set(ctx, projections.CheckpointKey(prefix), fmt.Sprintf("%020d", uint64(want)), 0).Err(); err != nil {
				t.Fatal(err)
			}
			if !withProgress {
				if rec := <-answered; rec.Code != http.StatusOK {
					t.Fatalf("without progress: %d %s", rec.Code, rec.Body)
				}
				if reads.n.Load() < 2 {
					t.Fatalf("without progress, the query read the checkpoint %d times: it did not poll", reads.n.Load())
				}
				rdb.Close()
				continue
			}
			select { // a few times PollEvery: no look at Redis meanwhile
			case rec := <-answered:
				t.Fatalf("answered %d %s before the runner here applied the position", rec.Code, rec.Body)
			case <-time.After(3 * a.PollEvery):
			}
			p.set(at) // the runner moves, not yet far enough
			select {
			case rec := <-answered:
				t.Fatalf("answered %d %s before the runner here applied the position", rec.Code, rec.Body)
			case <-time.After(50 * time.Millisecond):
			}
			if n := reads.n.Load(); n != 1 {
				t.Fatalf("the query read the checkpoint %d times while the runner here was behind, want once", n)
			}
			p.set(want)
			select {
			case rec := <-answered:
				if rec.Code != http.StatusOK {
					t.Fatalf("%d %s", rec.Code, rec.Body)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the query did not answer once the runner applied the position")
			}
			if n := reads.n.Load(); n != 2 {
				t.Fatalf("the query read the checkpoint %d times, want twice", n)
			}
			rdb.Close()
		}
	})
}

// TestStatsStreamLooksWhenTheRunnerMoves: the statistics stream asks
// Redis once, then only when this process's runner has moved: ticks while
// it stands still cost no round trip, and the first tick after it moved
// pushes what changed.
func TestStatsStreamLooksWhenTheRunnerMoves(t *testing.T) {
	s := offersLog(t, 5, 40, 3)
	ctx := context.Background()
	redistest.EachRedis(t, func(t *testing.T, r redistest.Redis) {
		other := r.Client(t)
		prefix, at := serveRebuilt(t, s, other, projections.Stats{})
		opts, _ := redis.ParseURL(r.URL)
		rdb := redis.NewClient(opts)
		defer rdb.Close()
		reads := &countReads{}
		rdb.AddHook(reads)
		a := readapi.New(rdb)
		a.StreamEvery = 5 * time.Millisecond
		p := &progress{applied: at, moved: make(chan struct{})}
		a.Progress = p.get
		router := chi.NewRouter()
		route.Mount(router, a.Routes())
		srv := httptest.NewServer(router)
		defer srv.Close()
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(sctx, "GET", srv.URL+"/v1/stats/stream", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		ids := make(chan string, 16)
		go func() {
			defer close(ids)
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
					ids <- id
				}
			}
		}()
		if id := <-ids; id != at.String() {
			t.Fatalf("first push at %s, want %s", id, at)
		}
		time.Sleep(100 * time.Millisecond) // about twenty ticks
		if n := reads.n.Load(); n != 1 {
			t.Fatalf("the stream read the checkpoint %d times while the runner stood still, want once", n)
		}
		// the runner here applies another offer: a counter and the
		// checkpoint move in Redis, then its progress
		head := at + 1
		if err := other.HIncrBy(ctx, prefix+projections.StatsCountersKey(), "all:offers_open", 1).Err(); err != nil {
			t.Fatal(err)
		}
		if err := other.Set(ctx, projections.CheckpointKey(prefix), fmt.Sprintf("%020d", uint64(head)), 0).Err(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		if n := reads.n.Load(); n != 1 {
			t.Fatalf("the stream read the checkpoint %d times before the runner moved, want once", n)
		}
		p.set(head)
		select {
		case id := <-ids:
			if id != head.String() {
				t.Fatalf("pushed %s, want %s", id, head)
			}
		case <-sctx.Done():
			t.Fatal("nothing pushed after the runner moved")
		}
	})
}
