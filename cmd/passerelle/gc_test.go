package main

import (
	"math"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"passerelle/internal/testsupport/httpclient"
	"passerelle/internal/testsupport/redistest"
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

// serve runs Go's collector until its read models are ready and the
// service's once they are: an API process started over a log that no
// projector has projected yet is not ready and keeps the default; it takes
// GOGC=800 once the projector has built them.
func TestServeSetsItsCollectorOnceReady(t *testing.T) {
	t.Setenv("GOGC", "") // the children's collector is serve's to set
	r := redistest.Real(t)
	es := startStoreServer(t)
	common := []string{"--eventstore", es, "--redis-url", r.URL, "--data-dir", t.TempDir(), "--auth=false", "--log-level", "warn"}
	first := startChild(t, append([]string{"serve", "--role", "api"}, common...)...)
	first.must(t, 201, "POST", "/v1/schools", map[string]any{"uai": "0941234A", "name": "Collège Danton", "kind": "college",
		"commune_code": "94081", "education_priority": "rep_plus", "qpv": false})
	first.stop(t)
	api := startChild(t, append([]string{"serve", "--role", "api"}, common...)...)
	t.Cleanup(func() { api.stop(t) })
	if st, _ := api.do("GET", "/readyz", nil); st != 503 {
		t.Fatalf("an API process without its projector answers /readyz %d, want 503", st)
	}
	if got := gogc(t, api); got != "100" {
		t.Fatalf("before the read models are ready, GOGC is %s, want 100", got)
	}
	projector := startChild(t, append([]string{"serve", "--role", "projector"}, common...)...)
	t.Cleanup(func() { projector.stop(t) })
	deadline := time.Now().Add(30 * time.Second)
	for got := gogc(t, api); got != "800"; got = gogc(t, api) {
		if time.Now().After(deadline) {
			st, _ := api.do("GET", "/readyz", nil)
			t.Fatalf("30 s after the projector started, GOGC is %s (/readyz %d), want 800", got, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st, _ := api.do("GET", "/readyz", nil); st != 200 {
		t.Fatalf("GOGC=800 before /readyz answers 200 (%d)", st)
	}
}

// gogc is the collector's target as a process's /metrics reports it.
func gogc(t *testing.T, c *child) string {
	t.Helper()
	text := httpclient.New(t, c.base).Do("GET", "/metrics", nil).Raw
	for line := range strings.Lines(text) {
		if v, ok := strings.CutPrefix(line, "go_gc_gogc_percent "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no go_gc_gogc_percent in /metrics:\n%s", text)
	return ""
}
