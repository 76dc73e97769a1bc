package main

import (
	"bufio"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

// tuneGC sets the collector's target (as GOGC) and its soft memory limit
// (as GOMEMLIMIT; 0: none), each unless the environment sets it. restore
// puts back what it changed.
func tuneGC(percent int, limit int64) (restore func()) {
	var undo []func()
	if os.Getenv("GOGC") == "" {
		old := debug.SetGCPercent(percent)
		undo = append(undo, func() { debug.SetGCPercent(old) })
	}
	if os.Getenv("GOMEMLIMIT") == "" && limit > 0 {
		old := debug.SetMemoryLimit(limit)
		undo = append(undo, func() { debug.SetMemoryLimit(old) })
	}
	return func() {
		for _, u := range undo {
			u()
		}
	}
}

// serviceGC is the collector of serve, and of bench, which measures what
// serve does. Under load the service allocates about as much
// per second as it keeps live, so at GOGC=100 a collection ran every
// second or so, each marking for about 100 ms with a quarter of the
// processors, and requests arriving then queued behind it. Posting offers
// at 1,000/s on two cores (`passerelle bench --departement 94 --scale
// 0.05 --only http --rate 1000 --duration 10s`, eight runs each, in
// turn), GOGC=300 answered with a median p99 of 26 ms instead of 52 ms
// (lower in seven pairs of eight). The heap grows within a soft limit of
// half the machine's memory: near it the collector runs as often as it
// must. serve sets it once its read models are ready (see startingGC);
// `passerelle replay` was slower with it (in four runs of four); see
// replayGC.
//
// The collections still set that p99. In an execution trace of 12 s at
// 1,000 offers/s after the bench's closed loop (`--duration 30s`, p99
// 25.8 ms), eight of the store committer's ten longest busy spells
// (17.5 to 38 ms, against a median of 0.5 ms) fell within the one mark,
// of 0.6 s for a 224 MB heap. While the collector marks, its idle workers
// hold every idle processor and take no goroutine queued on a busy one,
// so the writers a commit answers wait for the committer's next merge
// step. The committer yielding after each group during a merge took most
// of those waits out of a trace, but not the p99 out of the bench (16.6
// and 21.8 ms against 19.8 and 21.1, two runs each): it does not yield.
// What would shorten the marks is fewer pointers to mark.
//
// Since then the collections set most of the p99, and the disk the rest.
// With the latency of each request of the bench's open loop at 1,000/s
// beside the collector's trace (GODEBUG=gctrace=1) and the store's slow
// syncs, a run had 74 to 229 requests over 10 ms, most of them within
// the marks (39 to 190; a mark lasted 62 to 146 ms for a live heap of
// about 140 MB, the desk's index of every posted offer the largest part)
// and the others behind write-ahead log syncs of 7 to 17 ms. A 10 s
// window held one or two marks at GOGC=300, and its p99 was over 10 ms
// whenever it held two. At 800 it held one or none. In runs taken in
// turn (`passerelle bench --only http --duration 10s --rate 1000`, five
// of each, two of them with the latencies traced), the p99 was 5.42,
// 6.88, 7.97, 9.38 and 9.82 ms against 6.24, 6.71, 8.68, 10.75, 11.57
// and 14.12 ms at 300. The closed loop posted a little less (median
// ×0.162 of chi against ×0.177, three untraced runs each) and near
// search a little more (×0.075 to ×0.079 against ×0.063 to ×0.075): the
// p99 is the goal the service was closer to. The heap may now grow to
// nine times what is live: about 1.3 GB there.
func serviceGC() { tuneGC(800, physicalMemory()/2) }

// startingGC is serve's collector until its read models are ready: Go's
// default. The embedded default rebuilds them at every start, and at
// serviceGC's target the heap it builds grew about 40 % larger, in fresh
// pages, each a page fault where the heap gets no huge pages (see
// README). `passerelle serve --data-dir D` until /readyz answered 200,
// three runs each in turn: over the 152,000 events, mostly offers, a whole
// bench leaves, 7.6 to 8.5 s at GOGC=100 against 8.7 to 9.1 at 800 (peak
// memory 2.0 to 2.2 GB against 3.0); over a season's 137,000 events,
// 2.67 to 2.83 s against 2.97 to 3.10 (0.63 GB against 0.85). GOGC=50
// was slower, 200 within the noise of 100.
func startingGC() (restore func()) { return tuneGC(100, physicalMemory()/2) }

// replayGC is the collector of replay, and of the bench's replay row,
// which measures it. A rebuild allocates its events, documents and
// commands as it goes and keeps little of them. Replaying 421,291 events
// (Paris and its inner suburbs seeded at scale 0.3) into a real Redis,
// five runs each in turn, GOGC=400 took 4.10–4.73 s (median 4.58) and
// 5.8–6.8 s of processor time, against 4.65–5.30 s (median 4.77) and
// 7.0–8.0 s at 100, with 1.39–1.53 GB of peak resident memory against
// 1.20–1.32. At 800 the replay was within the noise of 400, at 1.8 GB.
// The soft limit keeps a national replay, whose document caches hold up
// to 768 MiB, from growing its heap fivefold.
func replayGC() (restore func()) { return tuneGC(400, 2<<30) }

// serviceRuntime is the runtime's settings for bench, as serve has them
// once ready: the collector's above, and twice as many processors for
// goroutines as the machine has where it has fewer than four (see
// tuneProcs).
func serviceRuntime() {
	serviceGC()
	tuneProcs(4)
}

// tuneProcs doubles GOMAXPROCS when it is below few, unless the
// environment sets it. On two processors the collector's mark worker
// holds one of the two while it runs (and an idle one takes any other
// that falls idle, noticing new goroutines but not timers): a request
// arriving then, or the store's committer waking from its wait for a
// group, queues behind it. With more processors than the machine has,
// the system shares the machine between the mark worker and them
// instead. Posting offers at 1,000/s on two cores (`passerelle bench
// --only http --rate 1000 --duration 10s`, six runs of each in turn,
// GOMAXPROCS=2 then 4), the p99 was 14.3–26.7 ms (median 18.9) instead
// of 17.5–57.6 ms (median 37.1), lower in five pairs of six, with no
// loss of throughput (closed-loop median 5,671 offers/s against
// 5,538; near search 3,124 req/s against 2,896). Then a larger heap
// was no help: GOGC=1000 answered within the same spread (13.7–25.4 ms
// against 14.3–18.7 at 300, three pairs) and near search slower. seed
// keeps the machine's count: seeding département 59 at scale 0.5 with
// four took 0.99× and 0.95× the wall time (five, then eight pairs), too
// little to tell from the noise.
func tuneProcs(few int) {
	if n := runtime.GOMAXPROCS(0); os.Getenv("GOMAXPROCS") == "" && n < few {
		runtime.GOMAXPROCS(2 * n)
	}
}

// physicalMemory is the machine's memory in bytes, 0 where unknown (a
// container's own limit is not read: set GOMEMLIMIT under one).
func physicalMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer func() { _ = f.Close() }()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
