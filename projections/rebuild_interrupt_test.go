package projections_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"passerelle/internal/testsupport/eventgen"
	"passerelle/internal/testsupport/redistest"
	"passerelle/projections"
)

// A rebuild cancelled in the middle of a write, part of its commands
// landed and not its checkpoint, leaves the served generations as they
// were; the next rebuild deletes what it left and makes, key by key, the
// read models a clean rebuild makes. Through a pipeline to either server,
// and through the in-process writes of the embedded default.
func TestRebuildInterruptedMidBatch(t *testing.T) {
	redistest.EachRedis(t, func(t *testing.T, r redistest.Redis) {
		interruptedRebuild(t, r.Client(t), nil)
	})
	t.Run("in-process", func(t *testing.T) {
		m := miniredis.RunT(t)
		interruptedRebuild(t, redistest.Redis{URL: "redis://" + m.Addr()}.Client(t), m)
	})
}

// interruptedRebuild runs the scenario on rdb; with m, the rebuilds write
// in process (projections.InProcess).
func interruptedRebuild(t *testing.T, rdb *redis.Client, m *miniredis.Miniredis) {
	ctx := context.Background()
	store := newMemStore()
	generate(t, store, eventgen.New(eventgen.Options{Seed: 31}), 3000)
	head, _ := store.Head(ctx)
	// small spans: many writes, each projection's in its own round trips
	opts := projections.RebuildOptions{Batch: 64, Span: 100, Grace: -1}
	var (
		mu     sync.Mutex
		writes int // round trips of the rebuild under way
		at     int // the one cut short, 0: none
		cut    string
	)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// halfway: the at-th round trip writes the first half of its commands,
	// then the rebuild is cancelled
	halfway := func(write func(cmds int) error, cmds int, key string) error {
		mu.Lock()
		writes++
		if writes != at {
			mu.Unlock()
			return write(cmds)
		}
		cut = key
		mu.Unlock()
		var err error
		if cmds > 1 {
			err = write(cmds / 2)
		}
		cancel()
		return errors.Join(err, context.Canceled)
	}
	if m != nil {
		inProcess := projections.InProcess(m)
		opts.Write = func(ctx context.Context, cmds [][]any) error {
			key, _ := cmds[0][1].(string)
			return halfway(func(n int) error { return inProcess(ctx, cmds[:n]) }, len(cmds), key)
		}
	} else {
		rdb.AddHook(pipelineHook(func(ctx context.Context, cmds []redis.Cmder, next redis.ProcessPipelineHook) error {
			// the client's own, on a new connection, are not the rebuild's
			key, _ := cmds[0].Args()[1].(string)
			if !strings.HasPrefix(key, "rm:") {
				return next(ctx, cmds)
			}
			return halfway(func(n int) error { return next(ctx, cmds[:n]) }, len(cmds), key)
		}))
	}
	clean, err := projections.RebuildAll(ctx, store, rdb, projections.All(), opts)
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]map[string]string{}
	for _, b := range clean {
		served[b.Name] = dump(t, rdb, projections.GenPrefix(b.Name, b.Generation))
	}

	seed := uint64(time.Now().UnixNano())
	mu.Lock()
	if writes < 10 {
		t.Fatalf("the rebuild wrote in %d round trips, want many", writes)
	}
	at = 1 + rand.New(rand.NewPCG(seed, 0)).IntN(writes-1) // one before the last
	t.Logf("cancelling at write %d of %d (seed %d)", at, writes, seed)
	writes = 0
	mu.Unlock()
	if _, err := projections.RebuildAll(cctx, store, rdb, projections.All(), opts); !errors.Is(err, context.Canceled) {
		t.Fatalf("the interrupted rebuild returned %v, want it cancelled", err)
	}
	mu.Lock()
	if cut == "" {
		t.Fatalf("%d writes, want the rebuild cancelled at write %d", writes, at)
	}
	at = 0 // the next rebuild runs whole
	mu.Unlock()
	var abandoned []string
	for _, b := range clean {
		if prefix, _ := projections.ActivePrefix(ctx, rdb, b.Name); prefix != projections.GenPrefix(b.Name, b.Generation) {
			t.Fatalf("%s: served %q after the interrupted rebuild, want generation %s", b.Name, prefix, b.Generation)
		}
		sameDump(t, b.Name, served[b.Name], dump(t, rdb, projections.GenPrefix(b.Name, b.Generation)))
		gen, err := rdb.Get(ctx, "rm:"+b.Name+":building").Result()
		if err != nil {
			t.Fatalf("%s: no abandoned generation recorded: %v", b.Name, err)
		}
		left := projections.GenPrefix(b.Name, gen)
		if cp, _ := projections.Checkpoint(ctx, rdb, left); strings.HasPrefix(cut, left) && cp >= head {
			t.Fatalf("%s: the generation cut short reached the head (%d)", b.Name, cp)
		}
		abandoned = append(abandoned, left)
	}

	again, err := projections.RebuildAll(ctx, store, rdb, projections.All(), opts)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range again {
		if b.Position != head || b.Previous != clean[i].Generation {
			t.Fatalf("%s: rebuilt %+v, want position %d over generation %s", b.Name, b, head, clean[i].Generation)
		}
		sameDump(t, b.Name, served[b.Name], dump(t, rdb, projections.GenPrefix(b.Name, b.Generation)))
	}
	for _, prefix := range abandoned {
		if left := dump(t, rdb, prefix); len(left) != 0 {
			t.Fatalf("%d keys of the abandoned generation %s left", len(left), prefix)
		}
	}
}

// pipelineHook runs f around every pipeline of a client.
type pipelineHook func(ctx context.Context, cmds []redis.Cmder, next redis.ProcessPipelineHook) error

func (h pipelineHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h pipelineHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h pipelineHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { return h(ctx, cmds, next) }
}
