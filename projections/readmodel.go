package projections

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"passerelle/eventstore"
)

// Read models live under "rm:<projection>:<generation>:". The key
// "rm:<projection>:active" names the generation the API serves, so a
// rebuild can fill a fresh generation and swap it in at once.

// ActiveKey is the key naming a projection's served generation.
func ActiveKey(name string) string { return "rm:" + name + ":active" }

// GenPrefix is the key prefix of one generation of a projection.
func GenPrefix(name, gen string) string { return "rm:" + name + ":" + gen + ":" }

// CheckpointKey holds the last applied global position, zero-padded so
// positions compare as strings inside Lua without float precision loss.
func CheckpointKey(prefix string) string { return prefix + "checkpoint" }

func padPosition(p eventstore.Position) string { return fmt.Sprintf("%020d", uint64(p)) }

// ActivePrefix returns the key prefix of the served generation of a
// projection, or "" when the projection has never run.
func ActivePrefix(ctx context.Context, rdb redis.UniversalClient, name string) (string, error) {
	gen, err := activeGeneration(ctx, rdb, name)
	if gen == "" || err != nil {
		return "", err
	}
	return GenPrefix(name, gen), nil
}

// activeGeneration returns the served generation of a projection, or ""
// when the projection has never run.
func activeGeneration(ctx context.Context, rdb redis.UniversalClient, name string) (string, error) {
	gen, err := rdb.Get(ctx, ActiveKey(name)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return gen, err
}

// Checkpoint returns the last global position applied by the generation at
// prefix (Start when none).
func Checkpoint(ctx context.Context, rdb redis.UniversalClient, prefix string) (eventstore.Position, error) {
	if prefix == "" {
		return eventstore.Start, nil
	}
	return CheckpointOf(prefix, rdb.Get(ctx, CheckpointKey(prefix)))
}

// CheckpointOf is the checkpoint of the generation at prefix that a GET of
// its CheckpointKey answered (Start when none), for reads that send it in
// a pipeline with others.
func CheckpointOf(prefix string, get *redis.StringCmd) (eventstore.Position, error) {
	s, err := get.Result()
	if errors.Is(err, redis.Nil) {
		return eventstore.Start, nil
	}
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("checkpoint %s: %w", prefix, err)
	}
	return eventstore.Position(v), nil
}

// MarkerKey holds what a generation was built for: the layout version of
// its projector and the identity of the log (see LogIdentity). A
// generation without it, or with another, cannot be caught up and is
// rebuilt.
func MarkerKey(prefix string) string { return prefix + "marker" }

// applyScript runs a live runner's batch of Redis commands and moves the
// checkpoint, unless the checkpoint is already at or past the position:
// events already applied are skipped as a whole, which makes delivery
// at-least-once safe. The generation must still be the served one: a
// writer left behind by a rebuild's swap gets -1 and writes nothing.
//
// The writer also says what it applied last: its writes follow from
// there. A checkpoint behind it means Redis lost writes (restarted from an
// older snapshot, flushed): -2, and nothing is written on top of the hole.
// A checkpoint ahead of it but behind the position means another runner
// applied part of the events: -3, and the writer folds again from there.
// KEYS[1] = checkpoint, KEYS[2] = active pointer; ARGV[1] = padded
// position, ARGV[2] = generation, ARGV[3] = padded position applied last
// (zero for none), then for each command its argument count followed by
// its arguments. Each command is called with its slice of ARGV as it is:
// copying its arguments into a table first cost Redis a sixth more of its
// time for an offer's writes, a third more for four offers' at once.
var applyScript = redis.NewScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return -1 end
local cp = redis.call('GET', KEYS[1]) or '00000000000000000000'
if cp >= ARGV[1] then return 0 end
if cp ~= ARGV[3] then
  if cp < ARGV[3] then return -2 end
  return -3
end
local i, last = 4, #ARGV
while i <= last do
  local n = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
`)

// Outcomes of the apply script.
const (
	staleWriter = -1 // the generation is no longer served
	lostWrites  = -2 // the checkpoint is behind what the writer applied
	overtaken   = -3 // another writer applied part of the events
)

// liveArgs renders the apply script's keys and arguments: the writes w
// (nil: none) to generation gen of projection name, made on top of prev,
// and its checkpoint pos. The arguments are rendered into w's own slice,
// which the next batch of w renders over: they are good until then.
func liveArgs(name, gen string, prev, pos eventstore.Position, w *batch) ([]string, []any) {
	var args []any
	if w != nil {
		clear(w.args) // the last batch's, kept no longer
		args = slices.Grow(w.args[:0], 3+4*len(w.order))
	}
	args = append(args, padPosition(pos), gen, padPosition(prev))
	if w != nil {
		args = w.render(GenPrefix(name, gen), args)
		w.args = args
	}
	return []string{CheckpointKey(GenPrefix(name, gen)), ActiveKey(name)}, args
}

// View is a reader's handle on a generation of a read model.
type View struct {
	RDB    redis.UniversalClient
	Prefix string
}

// Key joins parts under the generation's prefix.
func (v View) Key(parts ...string) string { return v.Prefix + strings.Join(parts, ":") }

// redisDocs reads the documents of a generation from Redis (the live
// runner's source: its writes go through the apply script).
type redisDocs struct {
	ctx context.Context
	View
	mget func(ctx context.Context, keys []string) ([]any, error) // nil: MGET over RDB
}

func (r redisDocs) get(refs []Ref) ([]Doc, []string, error) {
	keys := make([]string, len(refs))
	for i, ref := range refs {
		keys[i] = r.Key(ref.Key)
	}
	var vals []any
	var err error
	if r.mget != nil {
		vals, err = r.mget(r.ctx, keys)
	} else {
		vals, err = r.RDB.MGet(r.ctx, keys...).Result()
	}
	if err != nil {
		return nil, nil, err
	}
	docs, raw := make([]Doc, len(refs)), make([]string, len(refs))
	for i, v := range vals {
		if s, ok := v.(string); ok {
			raw[i] = s
			if docs[i], err = decode(refs[i], s); err != nil {
				return nil, nil, err
			}
		}
	}
	return docs, raw, nil
}

func (redisDocs) put(string, Doc, string) {}
