package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"passerelle/internal/bench"
	"passerelle/internal/seed"
	"passerelle/internal/testsupport/redistest"
)

// A short run produces the whole table, every row with numbers, with the
// in-process Redis (the default) and with a real one.
func TestSmoke(t *testing.T) {
	t.Run("in-process", func(t *testing.T) { smoke(t, "") })
	if os.Getenv(redistest.RedisEnv) != "" {
		t.Run("redis-server", func(t *testing.T) { smoke(t, redistest.Real(t).URL) })
	}
}

func smoke(t *testing.T, url string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := bench.Run(ctx, bench.Config{Seed: seed.Options{Departments: []string{"75"}, Scale: 0.01, Seed: 1},
		Duration: 300 * time.Millisecond, MaxOps: 2000, Clients: 8, Rate: 50, RedisURL: url})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"near search, 8 clients", "near search open loop", "POST /v1/offers, 8 clients", "open loop", "durable append, 1 ", "durable append, 8 ",
		"durable append, 64 ", "amend offer", "replay", "start-up"}
	if len(res.Rows) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(res.Rows), len(want), res.Rows)
	}
	for i, r := range res.Rows {
		if !strings.Contains(r.Name, want[i]) {
			t.Errorf("row %d is %q, want %q", i, r.Name, want[i])
		}
		for _, v := range []float64{r.Path, r.Baseline, r.Ratio} {
			if !(v > 0) || math.IsInf(v, 0) {
				t.Errorf("%s: %v / %v = %v: not a positive number", r.Name, r.Path, r.Baseline, r.Ratio)
			}
		}
	}
	for _, k := range []string{"projection_lag_p50_ms", "capacity_per_s", "at_50_pct_capacity_p99_ms", "at_80_pct_capacity_p99_ms", "disk_sync_p50_ms", "disk_sync_p99_ms", "send_lag_p99_ms", "cpu_us_per_op"} {
		if v := res.Rows[3].Detail[k]; !(v > 0) {
			t.Errorf("open loop: %s %v, want a measured one: %+v", k, v, res.Rows[3].Detail)
		}
	}
	for _, k := range []string{"gc_cycles", "log_syncs_over_10ms", "log_syncs_over_100ms", "sched_waits_over_1ms", "sched_waits_over_10ms"} {
		if _, ok := res.Rows[3].Detail[k]; !ok {
			t.Errorf("open loop: no %s: %+v", k, res.Rows[3].Detail)
		}
	}
	for i, r := range res.Rows[4:7] {
		d := r.Detail
		if v := d["appends_per_log_sync"]; i == 0 && math.Abs(v-1) > 0.01 || i == 2 && !(v > 1) {
			t.Errorf("%s: %v appends a log sync, want 1 for one writer, more for 64: %+v", r.Name, v, d)
		}
		for _, k := range []string{"log_sync_mean_us", "baseline_sync_mean_us", "committer_busy_share"} {
			if v := d[k]; !(v > 0) || math.IsInf(v, 0) {
				t.Errorf("%s: %s %v, want a measured one: %+v", r.Name, k, v, d)
			}
		}
		if v := d["committer_busy_share"]; v > 1.1 {
			t.Errorf("%s: committer busy %v of the time, more than all of it: %+v", r.Name, v, d)
		}
	}
	if v := res.Rows[1].Detail["achieved_per_s"]; !(v > 0) {
		t.Errorf("near search, open loop: achieved %v a second, want a measured rate: %+v", v, res.Rows[1].Detail)
	}
	for _, r := range res.Rows[:2] {
		if v := r.Detail["offers_in_radius"]; !(v > 0) {
			t.Errorf("%s: %v offers to choose from, want the seeded ones near Paris counted: %+v", r.Name, v, r.Detail)
		}
	}
	for _, r := range []bench.Row{res.Rows[0], res.Rows[2], res.Rows[8]} {
		keys := []string{"cpu_us_per_op", "baseline_cpu_us_per_op"}
		if url != "" {
			keys = append(keys, "redis_cpu_us_per_op")
		}
		for _, k := range keys {
			if v := r.Detail[k]; !(v > 0) || math.IsInf(v, 0) {
				t.Errorf("%s: %s %v, want a measured one: %+v", r.Name, k, v, r.Detail)
			}
		}
		if v := r.Detail["rounds"]; v < 2 {
			t.Errorf("%s: %v rounds, want its runs alternated with the baseline's: %+v", r.Name, v, r.Detail)
		}
		if _, ok := r.Detail["redis_cpu_us_per_op"]; ok && url == "" {
			t.Errorf("%s: a Redis processor time for the in-process Redis, whose time is the process's: %+v", r.Name, r.Detail)
		}
	}
	// what Redis spent its time on: the live runner's apply script, for
	// commands
	for _, r := range res.Rows[2:4] {
		_, timed := r.Detail["redis_cpu_us_per_op"]
		if v := r.Detail["redis_evalsha_us_per_op"]; url != "" && !(v > 0) || url == "" && timed {
			t.Errorf("%s: Redis's time, and the apply script's among its commands, want them with a redis-server alone: %+v", r.Name, r.Detail)
		}
	}
	if v := res.Rows[8].Detail["ratio_to_final_contents"]; !(v > 0) {
		t.Errorf("replay: ratio to its final contents %v, want a measured one: %+v", v, res.Rows[8].Detail)
	}
	var out bytes.Buffer
	res.Table(&out)
	if lines := strings.Count(out.String(), "\n"); lines < len(want)+2 {
		t.Errorf("table of %d lines:\n%s", lines, out.String())
	}
	if b, err := json.Marshal(res); err != nil || !bytes.Contains(b, []byte(`"ratio"`)) {
		t.Errorf("json: %s %v", b, err)
	}
	t.Logf("\n%s", out.String())
}

// A working directory that already holds a seeded instance is refused
// before anything is written, in words that say what to do.
func TestDirAlreadySeeded(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data", "events.db"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := bench.Run(context.Background(), bench.Config{Seed: seed.Options{Departments: []string{"75"}, Scale: 0.01, Seed: 1},
		Dir: dir, Only: []string{"appends"}})
	if err == nil || !strings.Contains(err.Error(), "already holds") || !strings.Contains(err.Error(), "empty or new directory") {
		t.Fatalf("err %v, want a refusal naming the directory", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "data", "events.db")); string(b) != "x" {
		t.Errorf("events.db changed to %q", b)
	}
}
