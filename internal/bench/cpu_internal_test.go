package bench

import (
	"maps"
	"testing"
	"time"
)

// INFO commandstats is read as each command's time, a subcommand's
// under a name of its own; lines of other sections or without a time are
// left out.
func TestParseCommandStats(t *testing.T) {
	info := "# Commandstats\r\n" +
		"cmdstat_geoadd:calls=9465,usec=1887411,usec_per_call=199.41,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_config|resetstat:calls=1,usec=220,usec_per_call=220.00,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_get:calls=3\r\n" +
		"used_cpu_user:1.5\r\n"
	want := map[string]time.Duration{"geoadd": 1887411 * time.Microsecond, "config_resetstat": 220 * time.Microsecond}
	if got := parseCommandStats(info); !maps.Equal(got, want) {
		t.Fatalf("%v, want %v", got, want)
	}
}

// A command's time an operation is what it took between the marks of
// every run, summed; one that took less than minCommandUS an operation is
// not named, nor any without a Redis of its own.
func TestCommandTimesPerOp(t *testing.T) {
	mark := func(redis time.Duration, calls map[string]time.Duration) cpuMark {
		return cpuMark{hasProc: true, hasRed: true, redis: redis, calls: calls}
	}
	var s cpuSpent
	s.add(mark(0, map[string]time.Duration{"sadd": time.Second}), mark(time.Millisecond, map[string]time.Duration{"sadd": time.Second + 300*time.Microsecond, "evalsha": time.Millisecond}))
	s.add(mark(time.Second, map[string]time.Duration{"sadd": 2 * time.Second, "evalsha": time.Second, "get": 0}),
		mark(time.Second+time.Millisecond, map[string]time.Duration{"sadd": 2*time.Second + 100*time.Microsecond, "evalsha": time.Second + time.Millisecond, "get": 10 * time.Microsecond}))
	detail := map[string]float64{}
	s.perOp(100, "", detail)
	want := map[string]float64{"cpu_us_per_op": 0, "redis_cpu_us_per_op": 20, "redis_sadd_us_per_op": 4, "redis_evalsha_us_per_op": 20}
	if !maps.Equal(detail, want) {
		t.Fatalf("%v, want %v", detail, want)
	}
	// a run whose marks could not read the command times: none named,
	// the processor times still given
	s.add(mark(2*time.Second, map[string]time.Duration{"sadd": 3 * time.Second}), mark(2*time.Second+time.Millisecond, nil))
	detail = map[string]float64{}
	s.perOp(150, "", detail)
	want = map[string]float64{"cpu_us_per_op": 0, "redis_cpu_us_per_op": 20}
	if !maps.Equal(detail, want) {
		t.Fatalf("after a run without command times: %v, want %v", detail, want)
	}
	detail = map[string]float64{}
	(cpuSpent{cpuMark: cpuMark{hasProc: true}, runs: 1}).perOp(100, "", detail)
	if len(detail) != 1 {
		t.Fatalf("%v, want the process's time alone", detail)
	}
}
