package ratelimit

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// gcra spends one request of a client's allowance in Redis, so that every
// process sharing the Redis shares the allowance (the generic cell rate
// algorithm: one key per client, its theoretical arrival time).
// KEYS[1]: the client's key. ARGV: now, the interval between requests at
// the rate, and the burst's tolerance, in microseconds. Returns {1, 0} when
// allowed, else {0, microseconds to wait}.
var gcra = redis.NewScript(`
local now = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
if tat < now then tat = now end
local next = tat + tonumber(ARGV[2])
local wait = next - tonumber(ARGV[3]) - now
if wait > 0 then return {0, wait} end
redis.call('SET', KEYS[1], next, 'PX', math.ceil((next - now) / 1000) + 1)
return {1, 0}
`)

// Shared keeps the allowances in rdb, shared by every API process; when
// Redis does not answer, each process falls back to its own buckets.
func (l *Limiter) Shared(rdb redis.UniversalClient) *Limiter {
	l.rdb = rdb
	return l
}

// takeShared is take against the shared allowance.
func (l *Limiter) takeShared(ctx context.Context, client [32]byte) (bool, time.Duration, error) {
	interval := time.Duration(float64(time.Second) / l.rate)
	tolerance := time.Duration(l.burst * float64(interval))
	res, err := gcra.Run(ctx, l.rdb, []string{fmt.Sprintf("ratelimit:%g:%g:%s", l.rate, l.burst, hex.EncodeToString(client[:]))},
		l.now().UnixMicro(), interval.Microseconds(), tolerance.Microseconds()).Int64Slice()
	if err != nil || len(res) != 2 {
		return false, 0, err
	}
	return res[0] == 1, time.Duration(res[1]) * time.Microsecond, nil
}
