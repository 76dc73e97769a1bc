package projections

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"passerelle/domain"
	"passerelle/eventstore"
)

// Progress of a rebuild.
type Progress struct {
	Projection string
	Events     int64               // events read so far
	Position   eventstore.Position // last position applied
	Head       eventstore.Position // head of the log when the rebuild started
	Elapsed    time.Duration
}

// SwapGrace is how long a rebuild waits after the swap before deleting the
// replaced generation, so that readers that resolved it just before finish.
var SwapGrace = 2 * time.Second

// generationsKey counts the generations ever made of a projection.
func generationsKey(name string) string { return "rm:" + name + ":generations" }

// Rebuild replays the whole log into a fresh generation of projection p
// while the served generation keeps answering, then swaps the fresh one in
// at once and deletes the old one. A live runner still writing the old
// generation notices the swap and resubscribes from the new checkpoint.
func Rebuild(ctx context.Context, store eventstore.Store, rdb redis.UniversalClient, opener interface{ Open(domain.Event) error }, p Projector, report func(Progress)) (string, error) {
	name := p.Name()
	old, err := rdb.Get(ctx, ActiveKey(name)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", err
	}
	gen, err := newGeneration(ctx, rdb, name, old)
	if err != nil {
		return "", err
	}
	prefix := GenPrefix(name, gen)
	if err := deleteKeys(ctx, rdb, prefix); err != nil { // leftovers of an aborted rebuild
		return "", err
	}
	head, err := store.Head(ctx)
	if err != nil {
		return "", err
	}
	start := time.Now()
	prog := Progress{Projection: name, Head: head}
	view := View{RDB: rdb, Prefix: prefix}
	from := eventstore.Start
	lastReport := time.Time{}
	for {
		page, err := store.ReadAll(ctx, from, 512)
		if err != nil {
			return "", err
		}
		if len(page) == 0 {
			break // caught up with the log as it is now
		}
		for _, re := range page {
			from = re.Position
			ev := Event{Position: re.Position, Stream: re.Stream, Type: re.Type, OccurredAt: re.Created}
			if md, err := eventstore.DecodeMetadata(re.Metadata); err == nil && !md.OccurredAt.IsZero() {
				ev.OccurredAt = md.OccurredAt
			}
			if d, err := domain.Decode(re.Type, re.Data); err == nil {
				if opener == nil || opener.Open(d) == nil {
					ev.Data = d
				}
			}
			var cmds []Cmd
			if ev.Data != nil {
				if cmds, err = p.Handle(ctx, view, ev); err != nil {
					return "", fmt.Errorf("rebuild %s at %d: %w", name, re.Position, err)
				}
			}
			if _, err := applyAtomically(ctx, rdb, name, gen, false, re.Position, cmds); err != nil {
				return "", fmt.Errorf("rebuild %s at %d: %w", name, re.Position, err)
			}
			prog.Events++
			prog.Position = re.Position
		}
		if report != nil && time.Since(lastReport) > 200*time.Millisecond {
			prog.Elapsed = time.Since(start)
			report(prog)
			lastReport = time.Now()
		}
	}
	if err := rdb.Set(ctx, ActiveKey(name), gen, 0).Err(); err != nil {
		return "", err
	}
	prog.Elapsed = time.Since(start)
	if report != nil {
		report(prog)
	}
	if old != "" && old != gen {
		// readers that resolved the old generation just before the swap
		// finish their request first
		select {
		case <-ctx.Done():
			return gen, ctx.Err()
		case <-time.After(SwapGrace):
		}
		if err := deleteKeys(ctx, rdb, GenPrefix(name, old)); err != nil {
			return gen, fmt.Errorf("delete generation %s: %w", old, err)
		}
	}
	return gen, nil
}

// newGeneration allocates a generation number above every one in use.
func newGeneration(ctx context.Context, rdb redis.UniversalClient, name, active string) (string, error) {
	if n, err := strconv.ParseInt(active, 10, 64); err == nil {
		// generations made before the counter existed
		if err := rdb.SetNX(ctx, generationsKey(name), n, 0).Err(); err != nil {
			return "", err
		}
	}
	n, err := rdb.Incr(ctx, generationsKey(name)).Result()
	if err != nil {
		return "", err
	}
	if a, _ := strconv.ParseInt(active, 10, 64); n <= a {
		if n, err = rdb.IncrBy(ctx, generationsKey(name), a-n+1).Result(); err != nil {
			return "", err
		}
	}
	return strconv.FormatInt(n, 10), nil
}

// deleteKeys removes every key under prefix, in batches.
func deleteKeys(ctx context.Context, rdb redis.UniversalClient, prefix string) error {
	var cursor uint64
	for {
		keys, next, err := rdb.Scan(ctx, cursor, prefix+"*", 1000).Result()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			if err := rdb.Unlink(ctx, keys...).Err(); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// Dump reads every key under prefix, with the prefix removed, as a
// type-tagged, order-independent rendering: two generations built from the
// same log dump the same.
func Dump(ctx context.Context, rdb redis.UniversalClient, prefix string) (map[string]string, error) {
	out := map[string]string{}
	var cursor uint64
	for {
		keys, next, err := rdb.Scan(ctx, cursor, prefix+"*", 1000).Result()
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			v, err := dumpKey(ctx, rdb, k)
			if err != nil {
				return nil, err
			}
			out[k[len(prefix):]] = v
		}
		if next == 0 {
			return out, nil
		}
		cursor = next
	}
}

func dumpKey(ctx context.Context, rdb redis.UniversalClient, k string) (string, error) {
	typ, err := rdb.Type(ctx, k).Result()
	if err != nil {
		return "", err
	}
	switch typ {
	case "string":
		v, err := rdb.Get(ctx, k).Result()
		return "string:" + v, err
	case "hash":
		v, err := rdb.HGetAll(ctx, k).Result()
		return "hash:" + sortedPairs(v), err
	case "set":
		v, err := rdb.SMembers(ctx, k).Result()
		return "set:" + sortedList(v), err
	case "zset":
		v, err := rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
		m := map[string]string{}
		for _, z := range v {
			m[fmt.Sprint(z.Member)] = strconv.FormatFloat(z.Score, 'f', -1, 64)
		}
		return "zset:" + sortedPairs(m), err
	}
	return "", fmt.Errorf("key %s: type %s not dumped", k, typ)
}

func sortedList(v []string) string {
	sort.Strings(v)
	return strings.Join(v, "\x1f")
}

func sortedPairs(m map[string]string) string {
	pairs := make([]string, 0, len(m))
	for k, v := range m {
		pairs = append(pairs, k+"="+v)
	}
	return sortedList(pairs)
}
