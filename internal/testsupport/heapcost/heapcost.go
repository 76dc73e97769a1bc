// Package heapcost reports, in a benchmark, what a structure kept in
// memory costs the collector: the objects and bytes it keeps live, and a
// full collection's wall time and processor time with it and without it.
// The collector's work grows with the pointers it follows, which object
// and byte counts only approximate.
package heapcost

import (
	"runtime"
	"runtime/metrics"
	"slices"
	"testing"
	"time"
)

// Report builds the structure with build, which returns it, and reports
// build-ms (the time build took), objects and MiB (what it keeps live),
// gc-ms and gc-cpu-ms (a full
// collection with it: wall time and the collector's processor time, its
// idle workers' included) and gc-base-ms (a full collection before it was
// built: what the benchmark keeps live besides).
func Report(b *testing.B, build func() any) {
	b.Helper()
	var before, after runtime.MemStats
	base, _ := collect()
	runtime.ReadMemStats(&before)
	start := time.Now()
	kept := build()
	took := time.Since(start)
	with, withCPU := collect()
	runtime.ReadMemStats(&after)
	b.ReportMetric(ms(took), "build-ms")
	b.ReportMetric(float64(int64(after.HeapObjects)-int64(before.HeapObjects)), "objects")
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20), "MiB")
	b.ReportMetric(ms(with), "gc-ms")
	b.ReportMetric(ms(withCPU), "gc-cpu-ms")
	b.ReportMetric(ms(base), "gc-base-ms")
	runtime.KeepAlive(kept)
}

// collect runs five full collections and returns the medians of their
// wall time and of the collector's processor time.
func collect() (wall, cpu time.Duration) {
	sample := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	walls, cpus := make([]time.Duration, 5), make([]time.Duration, 5)
	for i := range walls {
		metrics.Read(sample)
		c0, t0 := sample[0].Value.Float64(), time.Now()
		runtime.GC()
		walls[i] = time.Since(t0)
		metrics.Read(sample)
		cpus[i] = time.Duration((sample[0].Value.Float64() - c0) * float64(time.Second))
	}
	slices.Sort(walls)
	slices.Sort(cpus)
	return walls[2], cpus[2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
