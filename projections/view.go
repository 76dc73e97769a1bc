package projections

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// overlayClient is the Redis a projector reads during a rebuild: strings,
// sets and the members of sorted sets come from the rebuild's overlay,
// which holds the writes of the events handled but not yet sent. Other
// reads fail: a projector that needs one must read it through these.
type overlayClient struct {
	redis.UniversalClient
	ov *overlay
}

var errRebuildRead = errors.New("projectors read strings (GET), sets (SMEMBERS) and whole sorted sets (ZRANGE 0 -1) only: a rebuild answers no other read")

func (c overlayClient) Get(ctx context.Context, key string) *redis.StringCmd {
	s, ok, err := c.ov.get(ctx, c.UniversalClient, key)
	if err == nil && !ok {
		err = redis.Nil
	}
	return redis.NewStringResult(s, err)
}

func (c overlayClient) SMembers(ctx context.Context, key string) *redis.StringSliceCmd {
	m, err := c.ov.members(ctx, c.UniversalClient, key, false)
	slices.Sort(m)
	return redis.NewStringSliceResult(m, err)
}

// ZRange answers whole sorted sets, members only: ordered by member, not
// by score.
func (c overlayClient) ZRange(ctx context.Context, key string, start, stop int64) *redis.StringSliceCmd {
	if start != 0 || stop != -1 {
		return redis.NewStringSliceResult(nil, errRebuildRead)
	}
	m, err := c.ov.members(ctx, c.UniversalClient, key, true)
	slices.Sort(m)
	return redis.NewStringSliceResult(m, err)
}

func (c overlayClient) HGet(ctx context.Context, key, field string) *redis.StringCmd {
	return redis.NewStringResult("", errRebuildRead)
}

func (c overlayClient) HGetAll(ctx context.Context, key string) *redis.MapStringStringCmd {
	return redis.NewMapStringStringResult(nil, errRebuildRead)
}

func (c overlayClient) SIsMember(ctx context.Context, key string, member any) *redis.BoolCmd {
	return redis.NewBoolResult(false, errRebuildRead)
}

func (c overlayClient) SCard(ctx context.Context, key string) *redis.IntCmd {
	return redis.NewIntResult(0, errRebuildRead)
}

func (c overlayClient) Exists(ctx context.Context, keys ...string) *redis.IntCmd {
	return redis.NewIntResult(0, errRebuildRead)
}

func (c overlayClient) MGet(ctx context.Context, keys ...string) *redis.SliceCmd {
	return redis.NewSliceResult(nil, errRebuildRead)
}

func (c overlayClient) ZScore(ctx context.Context, key, member string) *redis.FloatCmd {
	return redis.NewFloatResult(0, errRebuildRead)
}

// overlay is what a rebuild knows of its generation beyond what Redis
// holds: every string, set and sorted set (its members) written so far while the generation started
// empty ("fresh"), so handling an event costs no Redis read at all. Past
// its memory bound it forgets everything and falls back to reading Redis,
// overlaid with the writes not yet flushed.
type overlay struct {
	fresh bool
	strs  map[string]*string             // nil: known to be absent
	sets  map[string]map[string]struct{} // complete membership of sets and sorted sets
	// pending holds, for sets not in sets, the membership changes not yet
	// flushed (true: added). Only used once not fresh.
	pending map[string]map[string]bool
	size    int // approximate bytes held
	limit   int
	// sync waits until every write handed to Redis has landed, before the
	// overlay reads Redis.
	sync func() error
}

func newOverlay(limit int, sync func() error) *overlay {
	o := &overlay{fresh: true, limit: limit, sync: sync}
	o.reset()
	return o
}

func (o *overlay) reset() {
	o.strs = map[string]*string{}
	o.sets = map[string]map[string]struct{}{}
	o.pending = map[string]map[string]bool{}
	o.size = 0
}

// flushed is called once every write so far has landed in Redis; past the
// memory bound the overlay then forgets what Redis now holds anyway.
func (o *overlay) flushed() {
	clear(o.pending)
	if o.size > o.limit {
		o.reset()
		o.fresh = false
	}
}

func (o *overlay) get(ctx context.Context, rdb redis.UniversalClient, key string) (string, bool, error) {
	if s, ok := o.strs[key]; ok {
		if s == nil {
			return "", false, nil
		}
		return *s, true, nil
	}
	if o.fresh {
		return "", false, nil
	}
	if err := o.sync(); err != nil {
		return "", false, err
	}
	s, ok, err := redisGet(ctx, rdb, key)
	if err != nil {
		return "", false, err
	}
	if ok {
		o.strs[key] = &s
		o.size += len(key) + len(s)
	} else {
		o.strs[key] = nil
	}
	return s, ok, nil
}

// members reads a set's members, or a sorted set's (sorted).
func (o *overlay) members(ctx context.Context, rdb redis.UniversalClient, key string, sorted bool) ([]string, error) {
	set, ok := o.sets[key]
	if !ok && !o.fresh {
		if err := o.sync(); err != nil {
			return nil, err
		}
		var members []string
		var err error
		if sorted {
			members, err = rdb.ZRange(ctx, key, 0, -1).Result()
		} else {
			members, err = rdb.SMembers(ctx, key).Result()
		}
		if err != nil {
			return nil, err
		}
		set = make(map[string]struct{}, len(members))
		for _, m := range members {
			set[m] = struct{}{}
			o.size += len(m)
		}
		for m, added := range o.pending[key] {
			if added {
				set[m] = struct{}{}
			} else {
				delete(set, m)
			}
		}
		delete(o.pending, key)
		o.sets[key] = set
		o.size += len(key)
	}
	out := make([]string, 0, len(set))
	for m := range set {
		out = append(out, m)
	}
	return out, nil
}

// apply records the effect of cmds on the strings and sets projectors read.
func (o *overlay) apply(cmds []Cmd) {
	for _, c := range cmds {
		if len(c) < 2 {
			continue
		}
		op, _ := c[0].(string)
		key, _ := c[1].(string)
		switch strings.ToUpper(op) {
		case "SET":
			if len(c) == 3 {
				s := argString(c[2])
				o.strs[key] = &s
				o.size += len(key) + len(s)
			}
		case "DEL", "UNLINK":
			for _, k := range c[1:] {
				ks, _ := k.(string)
				o.strs[ks] = nil
				o.sets[ks] = map[string]struct{}{}
				delete(o.pending, ks)
			}
		case "SADD", "SREM", "ZADD", "ZREM":
			add := strings.EqualFold(op, "SADD") || strings.EqualFold(op, "ZADD")
			members := c[2:]
			if strings.EqualFold(op, "ZADD") {
				// score member pairs: the members only
				members = nil
				for i := 3; i < len(c); i += 2 {
					members = append(members, c[i])
				}
			}
			set, ok := o.sets[key]
			if !ok && o.fresh {
				// fresh: a set never written is empty
				set = map[string]struct{}{}
				o.sets[key] = set
				o.size += len(key)
				ok = true
			}
			for _, m := range members {
				ms := argString(m)
				switch {
				case ok && add:
					if _, had := set[ms]; !had {
						set[ms] = struct{}{}
						o.size += len(ms)
					}
				case ok:
					delete(set, ms)
				default:
					p := o.pending[key]
					if p == nil {
						p = map[string]bool{}
						o.pending[key] = p
					}
					p[ms] = add
				}
			}
		}
	}
}

// argString renders a command argument as go-redis sends it.
func argString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		if x {
			return "1"
		}
		return "0"
	default:
		return fmt.Sprint(x)
	}
}

func redisGet(ctx context.Context, rdb redis.UniversalClient, key string) (string, bool, error) {
	s, err := rdb.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	return s, err == nil, err
}
