package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/eventstore/embedded"
	"passerelle/eventstore/personal"
	"passerelle/internal/app"
	"passerelle/internal/testsupport/eventgen"
)

// BenchmarkStartEmbedded measures how long the embedded default (no Redis
// URL) takes from Open to a GET /readyz answering 200, over logs of
// PASSERELLE_BENCH_START_EVENTS events (default "10000,100000"), personal
// data sealed as the service seals it. Each log is generated once into
// $TMPDIR/passerelle-start-bench-<events> and reused by later runs; delete
// the directory to generate it again.
func BenchmarkStartEmbedded(b *testing.B) {
	sizes := os.Getenv("PASSERELLE_BENCH_START_EVENTS")
	if sizes == "" {
		sizes = "10000,100000"
	}
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			b.Fatalf("PASSERELLE_BENCH_START_EVENTS: %q is not a number of events", s)
		}
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("passerelle-start-bench-%d", n))
		head := startBenchLog(b, dir, n)
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			cpu := cpuTime(b)
			for b.Loop() {
				startUntilReady(b, dir)
			}
			b.ReportMetric(float64(head)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s-to-ready")
			// on a shared machine, the CPU time varies less than the elapsed time
			b.ReportMetric((cpuTime(b)-cpu).Seconds()/float64(b.N), "cpu-s/op")
		})
	}
}

// cpuTime is the CPU time this process used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startUntilReady opens the service over dir with its read models in
// process, starts it and waits for /readyz to answer 200.
func startUntilReady(b *testing.B, dir string) {
	a, err := app.Open(app.Config{DataDir: dir, Logger: slog.New(slog.DiscardHandler), SealEvery: -1, ExpiryEvery: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	if err := a.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if err := a.WaitReady(ctx); err != nil {
		b.Fatal(err)
	}
}

// startBenchLog generates a log of at least n events into dir's embedded
// store unless a finished one is there, and returns its head.
func startBenchLog(b *testing.B, dir string, n int) eventstore.Position {
	ctx := context.Background()
	done := filepath.Join(dir, "generated")
	if _, err := os.Stat(done); err != nil {
		if err := os.RemoveAll(dir); err != nil { // an unfinished generation
			b.Fatal(err)
		}
	}
	store, err := embedded.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	head, err := store.Head(ctx)
	if err != nil || head > 0 {
		if err != nil {
			b.Fatal(err)
		}
		return head
	}
	keys, err := personal.OpenDir(filepath.Join(dir, "keys"))
	if err != nil {
		b.Fatal(err)
	}
	cipher := personal.NewCipher(keys)
	w := eventgen.New(eventgen.Options{Seed: 11})
	start := time.Now()
	for w.Events() < n {
		cmds := w.Generate(min(w.Events()+100_000, n))
		var forgotten []string
		for _, c := range cmds {
			for _, a := range c.Appends {
				for i, e := range a.Events {
					if f, ok := e.(*domain.PupilForgotten); ok {
						forgotten = append(forgotten, f.PupilID)
					}
					if a.Events[i], err = cipher.Seal(e); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
		if err := eventgen.Write(ctx, store, cmds, 8); err != nil {
			b.Fatal(err)
		}
		for _, id := range forgotten {
			if err := cipher.Forget(id); err != nil {
				b.Fatal(err)
			}
		}
	}
	head, err = store.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(done, nil, 0o600); err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %d events into %s in %v", w.Events(), dir, time.Since(start).Round(time.Second))
	return head
}
