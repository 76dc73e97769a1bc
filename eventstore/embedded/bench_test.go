package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"passerelle/eventstore"
)

// benchEvent is about the size of a typical Passerelle event.
func benchEvent() eventstore.EventData {
	return eventstore.EventData{
		ID:   uuid.New(),
		Type: "ApplicationSubmitted",
		Data: []byte(`{"application_id":"0b5c6a3e-1f2d-4c59-9a51-7d0c2f6a8e11","offer_id":"9d1f0c2a-6f1d-4c59-9a51-7d0c2f6a8e11","pupil_id":"3e2a1b0c-6f1d-4c59-9a51-7d0c2f6a8e11","week":"2025-W25","motivation":"Je voudrais découvrir le métier."}`),
		Metadata: eventstore.Metadata{
			CommandID: uuid.NewString(), CorrelationID: uuid.NewString(),
			Actor: eventstore.Actor{Role: "pupil", Subject: "3e2a1b0c"}, OccurredAt: time.Now().UTC(),
		}.Encode(),
	}
}

func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			benchAppend(b, writers)
		})
	}
}

// benchAppend runs b.N single-event appends spread over writers
// goroutines, each on its own stream.
func benchAppend(b *testing.B, writers int, opts ...Option) {
	ctx := context.Background()
	spread(b, writers, "events/s", func(s *Store, w, _ int) error {
		_, err := s.Append(ctx, "bench-"+strconv.Itoa(w), eventstore.Any, benchEvent())
		return err
	}, opts...)
}

// BenchmarkReadThenAppend is a command's use of the store under load: many
// workers each read a stream, then append two events after its last
// revision. Readers hold the recent index's read lock while the committer
// publishes a group's entries.
func BenchmarkReadThenAppend(b *testing.B) {
	ctx := context.Background()
	for _, workers := range []int{64, 1024} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			spread(b, workers, "commands/s", func(s *Store, w, i int) error {
				stream := fmt.Sprintf("bench-%d-%d", w, i%50)
				evs, err := s.ReadStream(ctx, stream, eventstore.Forwards, 0, 1000)
				if err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
					return err
				}
				exp := eventstore.NoStream
				if len(evs) > 0 {
					exp = eventstore.Exact(evs[len(evs)-1].Revision)
				}
				_, err = s.Append(ctx, stream, exp, benchEvent(), benchEvent())
				return err
			})
		})
	}
}

// spread runs b.N operations over workers goroutines on a new store, op
// being the i-th of worker w, and reports how many ran a second, in unit.
func spread(b *testing.B, workers int, unit string, op func(s *Store, w, i int) error, opts ...Option) {
	s, err := Open(b.TempDir(), opts...)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var (
		left  atomic.Int64
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	left.Store(int64(b.N))
	b.ResetTimer()
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			for i := 0; left.Add(-1) >= 0; i++ {
				if err := op(s, w, i); err != nil {
					errMu.Lock()
					first = err
					errMu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if first != nil {
		b.Fatal(first)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), unit)
}

// BenchmarkRawFdatasync is the floor of a durable write on this disk: one
// small appended write and an fdatasync per operation.
func BenchmarkRawFdatasync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 512)
	fd := int(f.Fd())
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := syscall.Fdatasync(fd); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "writes/s")
}

// BenchmarkAppendVsRaw alternates short runs of Append (writers
// concurrent writers, each on its own stream) with the raw write+fdatasync
// loop of BenchmarkRawFdatasync, on the same disk in the same run, so that
// the ratio holds even while other processes load the disk. It reports
// both rates over all rounds and their ratio.
func BenchmarkAppendVsRaw(b *testing.B) {
	const rounds, slice = 4, 500 * time.Millisecond
	for _, writers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			dir := b.TempDir()
			s, err := Open(dir)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			f, err := os.Create(filepath.Join(dir, "raw"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			var events, writes int64
			var appendTime, rawTime time.Duration
			for b.Loop() {
				for range rounds {
					n, d := appendFor(b, s, writers, slice)
					events, appendTime = events+n, appendTime+d
					n, d = rawFor(b, f, slice)
					writes, rawTime = writes+n, rawTime+d
				}
			}
			rate, raw := float64(events)/appendTime.Seconds(), float64(writes)/rawTime.Seconds()
			b.ReportMetric(rate, "events/s")
			b.ReportMetric(raw, "raw-writes/s")
			b.ReportMetric(rate/raw, "×raw")
			b.ReportMetric(float64(events)/float64(s.commits.Load()), "events/commit")
		})
	}
}

// appendFor appends single events from writers goroutines for about d and
// returns how many it appended and how long it took.
func appendFor(b testing.TB, s *Store, writers int, d time.Duration) (int64, time.Duration) {
	var (
		n  atomic.Int64
		wg sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for w := range writers {
		wg.Go(func() {
			stream := fmt.Sprintf("bench-%d", w)
			for time.Now().Before(deadline) {
				if _, err := s.Append(context.Background(), stream, eventstore.Any, benchEvent()); err != nil {
					b.Error(err)
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return n.Load(), time.Since(start)
}

// rawFor runs the raw write+fdatasync loop for about d.
func rawFor(b testing.TB, f *os.File, d time.Duration) (int64, time.Duration) {
	buf := make([]byte, 512)
	start := time.Now()
	var n int64
	for time.Since(start) < d {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
		n++
	}
	return n, time.Since(start)
}

// BenchmarkAppendOpenLoop appends one event on a stream of its own at
// openLoopRate a second for openLoopFor into a store that already holds
// openLoopPrefill events, each append sent at its scheduled time
// whatever the ones before it, and reports the latency from that time:
// what a command waits for the store at a steady load, checkpoints
// included (a few of them fall in the run). The raw write+fdatasync loop
// at the same rate, on the same disk before it, is the baseline
// (raw-p99-ms). Events are of a typical size, or of an offer's (about
// 2 KB), whose pages events.db writes back more often.
func BenchmarkAppendOpenLoop(b *testing.B) {
	for _, size := range []struct {
		name    string
		padding int
	}{{"typical", 0}, {"offer", 1500}} {
		b.Run(size.name, func(b *testing.B) { benchAppendOpenLoop(b, size.padding) })
	}
}

func benchAppendOpenLoop(b *testing.B, padding int) {
	const (
		openLoopRate    = 1000
		openLoopFor     = 15 * time.Second
		openLoopPrefill = 100_000
	)
	dir := b.TempDir()
	s, err := Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for done := 0; done < openLoopPrefill; done += 500 {
		parts := make([]eventstore.StreamAppend, 500)
		for i := range parts {
			parts[i] = eventstore.StreamAppend{Stream: "prefill-" + uuid.NewString(), Expected: eventstore.NoStream, Events: []eventstore.EventData{benchEvent()}}
		}
		if _, err := s.AppendMulti(ctx, parts...); err != nil {
			b.Fatal(err)
		}
	}
	f, err := os.Create(filepath.Join(dir, "raw"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var failed atomic.Int64
	raw := openLoopLatencies(openLoopRate, 3*time.Second, func() {
		if _, err := f.Write(make([]byte, 512)); err != nil || syscall.Fdatasync(int(f.Fd())) != nil {
			failed.Add(1)
		}
	})
	b.ResetTimer()
	lat := openLoopLatencies(openLoopRate, openLoopFor, func() {
		e := benchEvent()
		e.Data = append(e.Data, bytes.Repeat([]byte(" "), padding)...)
		if _, err := s.Append(ctx, "open-"+uuid.NewString(), eventstore.NoStream, e); err != nil {
			failed.Add(1)
		}
	})
	b.StopTimer()
	if failed.Load() > 0 {
		b.Fatalf("%d writes failed", failed.Load())
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(raw[len(raw)*99/100]), "raw-p99-ms")
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)*999/1000]), "p999-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
}

// openLoopLatencies runs op rate times a second for d, each from its
// scheduled time on a goroutine of its own (at most 1,000 at once), and
// returns the latencies from those times, sorted.
func openLoopLatencies(rate int, d time.Duration, op func()) []time.Duration {
	n := int(d.Seconds() * float64(rate))
	lat := make([]time.Duration, n)
	slots := make(chan struct{}, 1000)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		at := start.Add(time.Duration(i) * time.Second / time.Duration(rate))
		time.Sleep(time.Until(at))
		slots <- struct{}{}
		wg.Go(func() {
			op()
			lat[i] = time.Since(at)
			<-slots
		})
	}
	wg.Wait()
	slices.Sort(lat)
	return lat
}

// BenchmarkReadStream reads whole streams of six events, each written in
// a different round among 20,000 streams (as a pupil's applications are),
// all merged into bbolt: a cache miss of a command in a seeded season.
func BenchmarkReadStream(b *testing.B) {
	const streams, rounds = 20_000, 6
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for range rounds {
		var wg sync.WaitGroup
		for w := range 32 {
			wg.Go(func() {
				for i := w; i < streams; i += 32 {
					if _, err := s.Append(ctx, fmt.Sprintf("pupil-%d", i), eventstore.Any, benchEvent()); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	if err := s.flush(); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		i = (i + 7919) % streams
		evs, err := s.ReadStream(ctx, fmt.Sprintf("pupil-%d", i), eventstore.Forwards, 0, 0)
		if err != nil || len(evs) != rounds {
			b.Fatalf("%d events, %v", len(evs), err)
		}
	}
}

// BenchmarkReadAll reads a log of 50,000 events from its start in pages of
// 500, as a rebuild does.
func BenchmarkReadAll(b *testing.B) {
	const events, page = 50_000, 500
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for i := range events / 100 {
		batch := make([]eventstore.EventData, 100)
		for j := range batch {
			batch[j] = benchEvent()
		}
		if _, err := s.Append(ctx, fmt.Sprintf("application-%d", i), eventstore.Any, batch...); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		for from := eventstore.Start; ; {
			evs, err := s.ReadAll(ctx, from, page)
			if err != nil {
				b.Fatal(err)
			}
			if len(evs) == 0 {
				break
			}
			n += len(evs)
			from = evs[len(evs)-1].Position
		}
		if n != events {
			b.Fatalf("read %d events of %d", n, events)
		}
	}
	b.ReportMetric(float64(events*b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkTailsLast looks up the last revisions of streams among two
// full generations of tails, as a national seed's checks of cached
// aggregates do: a quarter of the streams looked up are in the newer
// generation, half in the older one, a quarter in neither.
func BenchmarkTailsLast(b *testing.B) {
	const perGen = tailsPerGeneration
	tl := newTails(perGen)
	names := make([]string, 2*perGen+perGen/2)
	for i := range names {
		names[i] = fmt.Sprintf("application-%08x-%d", i*2654435761, i)
	}
	for i := 0; i < 2*perGen; i += 512 {
		written := make([]streamRev, 512)
		for j := range written {
			written[j] = streamRev{names[i+j], uint64(j)}
		}
		tl.record(written)
	}
	order := rand.Perm(len(names))
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, ok := tl.last(names[order[i%len(order)]]); ok != (order[i%len(order)] < 2*perGen) {
			b.Fatal("a stream's tail not found, or one found that was never written")
		}
		i++
	}
}
