package bench

import (
	"bufio"
	"context"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// cpuMark is the processor time used up to a moment: by this process (the
// service under load and its load generator, which share it) and by the
// Redis server the read models are written to. A closed loop's rate is
// what the machine's processors carry; the time each operation takes of
// them says where a ratio comes from.
type cpuMark struct {
	proc, redis     time.Duration
	hasProc, hasRed bool
	// calls is the time the Redis server spent executing each command
	// (INFO commandstats): what its processor time went to; nil when it
	// could not be read
	calls map[string]time.Duration
}

// markCPU reads the processor time used so far; rdb nil: Redis is not
// another process (the in-process server's time is this process's).
func markCPU(ctx context.Context, rdb redis.UniversalClient) cpuMark {
	var m cpuMark
	m.proc, m.hasProc = processCPU()
	if rdb != nil {
		m.redis, m.hasRed = redisCPU(ctx, rdb)
		if m.hasRed {
			m.calls = commandTimes(ctx, rdb)
		}
	}
	return m
}

// cpuSpent sums the processor time of several runs, each from one mark
// to another.
type cpuSpent struct {
	cpuMark
	runs int
	// hasCalls: every mark read the command times; a run without them
	// would make the others' sums read low beside the processor time
	hasCalls bool
}

// add adds the time used from mark from to mark to.
func (s *cpuSpent) add(from, to cpuMark) {
	if s.runs == 0 {
		s.hasProc, s.hasRed, s.hasCalls = true, true, true
	}
	s.runs++
	s.proc += to.proc - from.proc
	s.redis += to.redis - from.redis
	s.hasProc = s.hasProc && from.hasProc && to.hasProc
	s.hasRed = s.hasRed && from.hasRed && to.hasRed
	s.hasCalls = s.hasCalls && from.calls != nil && to.calls != nil
	for c, d := range to.calls {
		if s.calls == nil {
			s.calls = map[string]time.Duration{}
		}
		s.calls[c] += d - from.calls[c]
	}
}

// perOp adds to detail the processor time spent for each of n
// operations, in microseconds, under the given prefix: cpu_us_per_op for
// this process, redis_cpu_us_per_op for the Redis server, and
// redis_<command>_us_per_op for each command that took it at least
// minCommandUS an operation (a script's includes the commands it called).
func (s cpuSpent) perOp(n int, prefix string, detail map[string]float64) {
	if n <= 0 || s.runs == 0 {
		return
	}
	us := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
	if s.hasProc {
		detail[prefix+"cpu_us_per_op"] = us(s.proc)
	}
	if s.hasRed {
		detail[prefix+"redis_cpu_us_per_op"] = us(s.redis)
	}
	if s.hasRed && s.hasCalls {
		for c, d := range s.calls {
			if v := us(d); v >= minCommandUS {
				detail[prefix+"redis_"+c+"_us_per_op"] = v
			}
		}
	}
}

// minCommandUS is the least time a command must take an operation, in
// microseconds, to be named in a row's detail.
const minCommandUS = 0.5

// commandTimes is the time the Redis server spent executing each command
// since its statistics were last reset, from INFO commandstats
// ("cmdstat_geoadd:calls=9465,usec=1887411,…"), by command in lower case
// (a subcommand's as "config_resetstat"); nil when it cannot be read.
func commandTimes(ctx context.Context, rdb redis.UniversalClient) map[string]time.Duration {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil
	}
	return parseCommandStats(info)
}

func parseCommandStats(info string) map[string]time.Duration {
	times := map[string]time.Duration{}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		name, stats, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		name, found := strings.CutPrefix(name, "cmdstat_")
		if !ok || !found {
			continue
		}
		for f := range strings.SplitSeq(stats, ",") {
			if v, ok := strings.CutPrefix(f, "usec="); ok {
				if us, err := strconv.ParseInt(v, 10, 64); err == nil {
					times[strings.ReplaceAll(strings.ToLower(name), "|", "_")] = time.Duration(us) * time.Microsecond
				}
				break
			}
		}
	}
	return times
}

// redisCPU is the processor time the Redis server used since it started,
// from INFO cpu (user and system, in seconds).
func redisCPU(ctx context.Context, rdb redis.UniversalClient) (time.Duration, bool) {
	info, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, false
	}
	var total float64
	found := 0
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok || (k != "used_cpu_user" && k != "used_cpu_sys") {
			continue
		}
		s, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, false
		}
		total += s
		found++
	}
	return time.Duration(total * float64(time.Second)), found == 2
}

// processCPU is the processor time this process used so far, user and
// system.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}

// quiet waits until this process uses less than a tenth of a processor
// over half a second, at most quietAtMost, or until ctx ends.
func quiet(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, quietAtMost)
	defer cancel()
	last, ok := processCPU()
	for ok {
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
		now, _ := processCPU()
		if now-last < 50*time.Millisecond {
			return
		}
		last = now
	}
}

// quietAtMost bounds quiet: a process that stays busy is measured as it
// is rather than waited for.
const quietAtMost = time.Minute
