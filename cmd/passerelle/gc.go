package main

import (
	"bufio"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// tuneGC sets the collector's target (as GOGC) and its soft memory limit
// (as GOMEMLIMIT; 0: none), each unless the environment sets it.
func tuneGC(percent int, limit int64) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(percent)
	}
	if os.Getenv("GOMEMLIMIT") == "" && limit > 0 {
		debug.SetMemoryLimit(limit)
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
// (lower in seven pairs of eight). The heap may grow to four times what
// is live, within a soft limit of half the machine's memory: near it the
// collector runs as often as it must. The embedded default's start-up,
// which rebuilds its read models, was faster too (137,000 events: ready
// in 2.0–2.2 s instead of 2.3–2.6 s, three runs each); `passerelle
// replay` was slower (in four runs of four), a short process whose
// growing heap costs more in fresh pages than in collections, and keeps
// the default.
func serviceGC() { tuneGC(300, physicalMemory()/2) }

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
