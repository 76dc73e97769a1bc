package projections_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"passerelle/internal/testsupport/eventgen"
	"passerelle/internal/testsupport/redistest"
	"passerelle/projections"
)

// A rebuild cancelled in the middle of a batch, part of the batch's writes
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
	opts := projections.RebuildOptions{Batch: 64, Grace: -1}
	if m != nil {
		opts.Write = projections.InProcess(m)
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
	at := 1 + rand.New(rand.NewPCG(seed, 0)).IntN(int(head)/opts.Batch-1) // a batch before the last
	t.Logf("cancelling at batch %d (seed %d)", at, seed)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := 0
	// halfway: the k-th batch writes the first half of its commands, then
	// the rebuild is cancelled
	halfway := func(write func(cmds int) error, cmds int) error {
		if batches++; batches != at {
			return write(cmds)
		}
		err := write(cmds / 2)
		cancel()
		return errors.Join(err, context.Canceled)
	}
	cut := opts
	if m != nil {
		inProcess := projections.InProcess(m)
		cut.Write = func(ctx context.Context, cmds [][]any) error {
			return halfway(func(n int) error { return inProcess(ctx, cmds[:n]) }, len(cmds))
		}
	} else {
		rdb.AddHook(pipelineHook(func(ctx context.Context, cmds []redis.Cmder, next redis.ProcessPipelineHook) error {
			if cctx.Err() != nil || !isRebuildBatch(cmds) {
				return next(ctx, cmds)
			}
			return halfway(func(n int) error { return next(ctx, cmds[:n]) }, len(cmds))
		}))
	}
	if _, err := projections.RebuildAll(cctx, store, rdb, projections.All(), cut); !errors.Is(err, context.Canceled) {
		t.Fatalf("the interrupted rebuild returned %v, want it cancelled", err)
	}
	if batches != at {
		t.Fatalf("%d batches written, want the rebuild cancelled at batch %d", batches, at)
	}
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
		if cp, _ := projections.Checkpoint(ctx, rdb, left); cp >= head {
			t.Fatalf("%s: the interrupted generation reached the head (%d)", b.Name, cp)
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

// isRebuildBatch tells a rebuild's batch: plain writes ending with a
// generation's checkpoint.
func isRebuildBatch(cmds []redis.Cmder) bool {
	args := cmds[len(cmds)-1].Args()
	if len(cmds) < 2 || len(args) != 3 || cmds[len(cmds)-1].Name() != "set" {
		return false
	}
	key, _ := args[1].(string)
	return strings.HasSuffix(key, ":checkpoint")
}

// pipelineHook runs f around every pipeline of a client.
type pipelineHook func(ctx context.Context, cmds []redis.Cmder, next redis.ProcessPipelineHook) error

func (h pipelineHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h pipelineHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h pipelineHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { return h(ctx, cmds, next) }
}
