package main

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
)

// The service's collector settings apply unless the environment sets them.
func TestTuneGC(t *testing.T) {
	percent := debug.SetGCPercent(100)
	limit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(percent); debug.SetMemoryLimit(limit) })

	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	tuneGC(300, 1<<30)
	if got := debug.SetGCPercent(100); got != 300 {
		t.Errorf("GOGC unset: percent %d, want 300", got)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != 1<<30 {
		t.Errorf("GOMEMLIMIT unset: limit %d, want %d", got, 1<<30)
	}

	t.Setenv("GOGC", "100")
	t.Setenv("GOMEMLIMIT", "2GiB")
	tuneGC(300, 1<<30)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC=100: percent %d, want it left at 100", got)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != math.MaxInt64 {
		t.Errorf("GOMEMLIMIT set: limit %d, want it left alone", got)
	}
}

// A replay's collector settings are put back once it ends.
func TestTuneGCRestores(t *testing.T) {
	percent := debug.SetGCPercent(150)
	limit := debug.SetMemoryLimit(3 << 30)
	t.Cleanup(func() { debug.SetGCPercent(percent); debug.SetMemoryLimit(limit) })

	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	restore := replayGC()
	if got := debug.SetGCPercent(-1); got != 400 {
		t.Errorf("during a replay: percent %d, want 400", got)
	}
	debug.SetGCPercent(400)
	restore()
	if got := debug.SetGCPercent(-1); got != 150 {
		t.Errorf("after a replay: percent %d, want 150 back", got)
	}
	debug.SetGCPercent(150)
	if got := debug.SetMemoryLimit(-1); got != 3<<30 {
		t.Errorf("after a replay: limit %d, want %d back", got, 3<<30)
	}
}

// The service doubles the processors of a small machine unless the
// environment sets them.
func TestTuneProcs(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(procs) })

	t.Setenv("GOMAXPROCS", "")
	runtime.GOMAXPROCS(2)
	tuneProcs(4)
	if got := runtime.GOMAXPROCS(0); got != 4 {
		t.Errorf("2 processors, GOMAXPROCS unset: %d, want 4", got)
	}
	tuneProcs(4)
	if got := runtime.GOMAXPROCS(0); got != 4 {
		t.Errorf("4 processors: %d, want them left at 4", got)
	}

	t.Setenv("GOMAXPROCS", "2")
	runtime.GOMAXPROCS(2)
	tuneProcs(4)
	if got := runtime.GOMAXPROCS(0); got != 2 {
		t.Errorf("GOMAXPROCS=2 set: %d, want it left at 2", got)
	}
}

// The machine's memory is read where the system says it.
func TestPhysicalMemory(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("read from /proc/meminfo, on Linux only")
	}
	if m := physicalMemory(); m < 64<<20 || m > 1<<50 {
		t.Errorf("physical memory %d bytes: not a machine's", m)
	}
}
