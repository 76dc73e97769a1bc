package projections

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"passerelle/domain"
	"passerelle/eventstore"
)

// Rebuild rebuilds projection p (see RebuildAll) and returns the generation
// now served.
func Rebuild(ctx context.Context, store eventstore.Store, rdb redis.UniversalClient, opener interface{ Open(domain.Event) error }, p Projector, report func(Progress)) (string, error) {
	out, err := RebuildAll(ctx, store, rdb, []Projector{p}, RebuildOptions{Opener: opener, Progress: report})
	if len(out) == 0 {
		return "", err
	}
	return out[0].Generation, err
}

// memDocs is a docSource in memory, as JSON.
type memDocs map[string]string

func (m memDocs) get(refs []Ref) ([]Doc, []string, error) {
	docs, raw := make([]Doc, len(refs)), make([]string, len(refs))
	for i, r := range refs {
		raw[i] = m[r.Key]
		var err error
		if docs[i], err = decode(r, raw[i]); err != nil {
			return nil, nil, err
		}
	}
	return docs, raw, nil
}

func (m memDocs) put(k string, _ Doc, b string) { m[k] = b }

// Cmd is one Redis command.
type Cmd []any

// LiveCommands returns, for each event of the log, the commands the live
// runners of ps write to the generations at prefixes (one per projector).
func LiveCommands(ctx context.Context, store eventstore.Store, ps []Projector, prefixes []string) ([][]Cmd, error) {
	srcs := make([]memDocs, len(ps))
	for i := range srcs {
		srcs[i] = memDocs{}
	}
	var out [][]Cmd
	for from := eventstore.Start; ; {
		page, err := store.ReadAll(ctx, from, 1000)
		if err != nil || len(page) == 0 {
			return out, err
		}
		for _, re := range page {
			ev, err := decodeRecorded(re)
			if err != nil {
				return nil, err
			}
			var cmds []Cmd
			for i, p := range ps {
				w := newBatch(16, 16)
				if ev.Data != nil {
					if err := project(p, ev, srcs[i], w); err != nil {
						return nil, err
					}
					if err := w.finish(srcs[i]); err != nil {
						return nil, err
					}
				}
				args := w.render(prefixes[i], nil)
				for len(args) > 0 {
					n := args[0].(int)
					cmds, args = append(cmds, Cmd(args[1:1+n])), args[1+n:]
				}
			}
			out = append(out, cmds)
			from = re.Position
		}
	}
}

// ServeEmpty serves an empty generation 1 of each projector not served
// yet: a runner that finds it follows the log from its start on the live
// path, where it would otherwise rebuild first.
func ServeEmpty(ctx context.Context, rdb redis.UniversalClient, store eventstore.Store, ps ...Projector) error {
	for _, p := range ps {
		ok, err := rdb.SetNX(ctx, ActiveKey(p.Name()), "1", 0).Result()
		if err == nil && ok {
			err = writeMarker(ctx, rdb, store, p, GenPrefix(p.Name(), "1"))
		}
		if err != nil {
			return err
		}
	}
	return nil
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
			if k == MarkerKey(prefix) {
				continue // who built the generation, not what it holds
			}
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

// freshFolds is a fresh document cache and an empty batch for each of n
// projections, as a rebuild starts them.
func freshFolds(n int) ([]*docCache, []*batch) {
	caches := make([]*docCache, n)
	ws := make([]*batch, n)
	for i := range n {
		caches[i] = &docCache{docs: map[string]cached{}, fresh: true, limit: 1 << 30}
		ws[i] = newBatch(0, 0)
	}
	return caches, ws
}

// FoldAll folds the whole log as a rebuild does, into fresh caches and
// batches of 500 events, without Redis; it returns the number of
// arguments of the apply scripts it would send.
func FoldAll(ctx context.Context, store eventstore.Store, ps []Projector) (int, error) {
	caches, ws := freshFolds(len(ps))
	n := 0
	for from := eventstore.Start; ; {
		page, err := store.ReadAll(ctx, from, 1000)
		if err != nil || len(page) == 0 {
			return n, err
		}
		for _, re := range page {
			ev, err := decodeRecorded(re)
			if err != nil {
				return 0, err
			}
			for i, p := range ps {
				if ev.Data != nil {
					if err := project(p, ev, caches[i], ws[i]); err != nil {
						return 0, err
					}
				}
			}
			from = re.Position
			if from%500 == 0 {
				for i := range ws {
					if err := ws[i].finish(caches[i]); err != nil {
						return 0, err
					}
					n += len(ws[i].render("rm:x:1:", nil))
					ws[i].reset()
				}
			}
		}
	}
}

// SharedTarget folds the whole log as FoldAll does, in batches of span
// events, and returns the first member, field or point two writes of a
// finished batch are about (finish appends those without looking them
// up: each has one contributor), with its projection; "" when none is.
func SharedTarget(ctx context.Context, store eventstore.Store, ps []Projector, span int) (string, error) {
	caches, ws := freshFolds(len(ps))
	folded := 0
	finish := func() (string, error) {
		for i, w := range ws {
			if err := w.finish(caches[i]); err != nil {
				return "", err
			}
			seen := map[target]bool{}
			for _, t := range w.order {
				if t.kind == docKind || t.kind == Counter {
					continue
				}
				if seen[t] {
					return ps[i].Name() + ": " + t.key + " " + t.member, nil
				}
				seen[t] = true
			}
			w.reset()
		}
		return "", nil
	}
	for from := eventstore.Start; ; {
		page, err := store.ReadAll(ctx, from, 1000)
		if err != nil {
			return "", err
		}
		if len(page) == 0 {
			return finish()
		}
		for _, re := range page {
			ev, err := decodeRecorded(re)
			if err != nil {
				return "", err
			}
			for i, p := range ps {
				if ev.Data != nil {
					if err := project(p, ev, caches[i], ws[i]); err != nil {
						return "", err
					}
				}
			}
			from = re.Position
			if folded++; folded%span == 0 {
				if shared, err := finish(); shared != "" || err != nil {
					return shared, err
				}
			}
		}
	}
}

// UnsettledTouches folds the whole log as FoldAll does and, before each
// event's fold, asks each projector's Touches once more with the
// documents loaded for it: what it names then that load did not load is
// a document named by another whose Ref lacks Names. It returns the
// first such key, with the event's type, and the number of events folded
// of each type.
func UnsettledTouches(ctx context.Context, store eventstore.Store, ps []Projector) (string, map[string]int, error) {
	caches, ws := freshFolds(len(ps))
	types := map[string]int{}
	for from := eventstore.Start; ; {
		page, err := store.ReadAll(ctx, from, 1000)
		if err != nil || len(page) == 0 {
			return "", types, err
		}
		for _, re := range page {
			from = re.Position
			ev, err := decodeRecorded(re)
			if err != nil || ev.Data == nil {
				continue
			}
			types[ev.Type]++
			for i, p := range ps {
				docs, _, err := load(p, ev, caches[i], ws[i])
				if err != nil {
					return "", nil, err
				}
				for _, r := range p.Touches(ev, docs) {
					if _, ok := docs[r.Key]; !ok {
						return ev.Type + " " + r.Key, types, nil
					}
				}
				if err := project(p, ev, caches[i], ws[i]); err != nil {
					return "", nil, err
				}
			}
		}
	}
}

// Purged is the position of the last forget every projection has applied,
// whose erasure Redis's files were then rewritten for.
func (r *Runner) Purged() eventstore.Position {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.purged
}
