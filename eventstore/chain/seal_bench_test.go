package chain_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"passerelle/commands"
	"passerelle/eventstore/chain"
	"passerelle/eventstore/embedded"
	"passerelle/internal/seed"
)

// BenchmarkSealAll seals a seeded campaign's log (Val-de-Marne at a
// tenth) from its start, as a seed's sealer does while the commands go
// on; it reports the events walked per second.
func BenchmarkSealAll(b *testing.B) {
	src := b.TempDir()
	ctx := context.Background()
	plan, err := seed.NewPlan(seed.Options{Departments: []string{"94"}, Scale: 0.1, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	store, err := embedded.Open(src, seed.StoreOptions...)
	if err != nil {
		b.Fatal(err)
	}
	keys, err := seed.OpenBulkKeys(filepath.Join(src, "keys"))
	if err != nil {
		b.Fatal(err)
	}
	rep, err := seed.Run(ctx, plan, seed.RunConfig{Store: store, Keys: keys, Workers: 64})
	_ = keys.Close()
	if err = errors.Join(err, store.Close()); err != nil || rep.Failed > 0 {
		b.Fatalf("seeding: %v, %d commands failed", err, rep.Failed)
	}
	var walked time.Duration
	for b.Loop() {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), "copy")
		if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
			b.Fatal(err)
		}
		s, err := embedded.Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		n, err := chain.NewSealer(s, commands.Chained, nil).SealAll(ctx)
		walked += time.Since(start)
		b.StopTimer()
		if err != nil || n == 0 {
			b.Fatalf("%d seals: %v", n, err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(rep.Events)*float64(b.N)/walked.Seconds(), "events/s")
}
