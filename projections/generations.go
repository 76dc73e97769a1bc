package projections

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"passerelle/eventstore"
)

// Keys of a projection's rebuild bookkeeping, beside its generations.
func generationsKey(name string) string { return "rm:" + name + ":generations" } // last generation allocated
func buildingKey(name string) string    { return "rm:" + name + ":building" }    // generation being rebuilt
func rebuildLockKey(name string) string { return "rm:" + name + ":rebuild-lock" }

const lockTTL = 30 * time.Second

var (
	// newGenerationScript allocates the next generation number, above the
	// served one ("1" by default, which the first live runner claims), the
	// last allocated one and an abandoned one.
	// KEYS: active, sequence, building.
	newGenerationScript = redis.NewScript(`
local n = math.max(tonumber(redis.call('GET', KEYS[1]) or '1') or 1,
                   tonumber(redis.call('GET', KEYS[2]) or '0') or 0,
                   tonumber(redis.call('GET', KEYS[3]) or '0') or 0) + 1
redis.call('SET', KEYS[2], n)
redis.call('SET', KEYS[3], n)
return n
`)
	// swapScript serves the new generation if the served one is still the
	// expected one (-1 otherwise) and the new one has applied at least as
	// far (0 otherwise), unless told the served one is foreign.
	// KEYS: active, new checkpoint, old checkpoint, building;
	// ARGV: new generation, expected old generation ("" for none),
	// "replace" when the old one is foreign.
	swapScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[2] then return -1 end
if cur ~= '' and ARGV[3] ~= 'replace' then
  local old = redis.call('GET', KEYS[3]) or ''
  local new = redis.call('GET', KEYS[2]) or ''
  if old > new then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[4])
return 1
`)
	renewLockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)
	releaseLockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)
)

// lockRebuilds takes the rebuild lock of each projection named and keeps it
// until the returned release is called.
func lockRebuilds(ctx context.Context, rdb redis.UniversalClient, names []string) (release func(), err error) {
	token := randomToken()
	ctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	var held []string
	release = func() {
		stop()
		<-done
		for _, name := range held {
			_ = releaseLockScript.Run(context.WithoutCancel(ctx), rdb, []string{rebuildLockKey(name)}, token).Err()
		}
	}
	for _, name := range names {
		ok, err := rdb.SetNX(ctx, rebuildLockKey(name), token, lockTTL).Result()
		if err == nil && !ok {
			err = fmt.Errorf("%s: %w", name, ErrRebuildRunning)
		}
		if err != nil {
			close(done)
			release()
			return nil, err
		}
		held = append(held, name)
	}
	go func() {
		defer close(done)
		t := time.NewTicker(lockTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				for _, name := range held {
					_ = renewLockScript.Run(ctx, rdb, []string{rebuildLockKey(name)}, token, lockTTL.Milliseconds()).Err()
				}
			}
		}
	}()
	return release, nil
}

func randomToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// DropGeneration deletes every key under prefix, a few hundred at a time
// (SCAN and UNLINK), so Redis keeps serving meanwhile. It returns the
// number of keys deleted.
func DropGeneration(ctx context.Context, rdb redis.UniversalClient, prefix string) (int64, error) {
	if !strings.HasPrefix(prefix, "rm:") || !strings.HasSuffix(prefix, ":") {
		return 0, fmt.Errorf("not a generation prefix: %q", prefix)
	}
	var deleted int64
	var cursor uint64
	match := globEscape(prefix) + "*"
	for {
		keys, next, err := rdb.Scan(ctx, cursor, match, 1000).Result()
		if err != nil {
			return deleted, err
		}
		for len(keys) > 0 {
			n := min(len(keys), 500)
			d, err := rdb.Unlink(ctx, keys[:n]...).Result()
			if err != nil {
				return deleted, err
			}
			deleted += d
			keys = keys[n:]
		}
		if cursor = next; cursor == 0 {
			return deleted, nil
		}
	}
}

func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// LogIdentity names the log the read models are built from: the ID of its
// first event ("" while it is empty). A Redis that holds generations of
// another log (a shared server, a backup restored to the wrong place) is
// told apart by it.
func LogIdentity(ctx context.Context, store eventstore.Store) (string, error) {
	evs, err := store.ReadAll(ctx, eventstore.Start, 1)
	if err != nil || len(evs) == 0 {
		return "", err
	}
	return evs[0].ID.String(), nil
}

// ErrNewerLayout says the served generation was written by a newer build.
// An older build, met during a rolling upgrade or a rollback, neither
// rebuilds it back to its own layout (the two would take turns) nor serves
// it: it waits, and says so, until the generation it can read is back.
var ErrNewerLayout = errors.New("the read model was built by a newer version")

// MarkerLayout returns the layout recorded for the generation at prefix,
// or 0 when it has no marker.
func MarkerLayout(ctx context.Context, rdb redis.UniversalClient, prefix string) (int, error) {
	v, err := rdb.HGet(ctx, MarkerKey(prefix), "layout").Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(v)
}

// LayoutOf is the layout this build writes for the projection named name
// (0 for a name it does not know).
func LayoutOf(name string) int {
	for _, p := range All() {
		if p.Name() == name {
			return p.Layout()
		}
	}
	return 0
}

// writeMarker records what the generation at prefix is built for.
func writeMarker(ctx context.Context, rdb redis.UniversalClient, store eventstore.Store, p Projector, prefix string) error {
	id, err := LogIdentity(ctx, store)
	if err != nil {
		return err
	}
	return rdb.HSet(ctx, MarkerKey(prefix), "layout", p.Layout(), "log", id).Err()
}

// fitsMarker says why the generation at prefix cannot be caught up by p
// (no marker, another layout), or "" when it can (see foreign for the log).
func fitsMarker(ctx context.Context, rdb redis.UniversalClient, p Projector, prefix string) (string, error) {
	m, err := rdb.HGetAll(ctx, MarkerKey(prefix)).Result()
	switch {
	case err != nil:
		return "", err
	case len(m) == 0:
		return "its generation has no marker (data lost or written before markers)", nil
	case m["layout"] != strconv.Itoa(p.Layout()):
		if l, err := strconv.Atoi(m["layout"]); err == nil && l > p.Layout() {
			return "", fmt.Errorf("%w: %s is served in layout %d, this build writes %d", ErrNewerLayout, p.Name(), l, p.Layout())
		}
		return fmt.Sprintf("its generation has layout %s, the code writes %d", m["layout"], p.Layout()), nil
	}
	return "", nil
}

// foreign says why the generation at prefix holds what this log does not
// ("" when nothing shows it): it was built from another log, or its
// checkpoint is past the end of this one (a log restored from an older backup beside
// a newer Redis). Its checkpoint then measures nothing here: the
// generation is replaced, neither caught up from it nor waited for.
func foreign(ctx context.Context, rdb redis.UniversalClient, store eventstore.Store, prefix, logID string) (string, error) {
	built, err := rdb.HGet(ctx, MarkerKey(prefix), "log").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", err
	}
	if built != "" && logID != "" && built != logID {
		return fmt.Sprintf("its generation was built from another log (first event %s, this one %s)", built, logID), nil
	}
	pos, err := Checkpoint(ctx, rdb, prefix)
	if err != nil {
		return "", err
	}
	// the head after the checkpoint: whatever a runner elsewhere applied
	// before this read was appended before it
	head, err := store.Head(ctx)
	if err != nil {
		return "", err
	}
	if pos > head {
		return fmt.Sprintf("its checkpoint %s is past the end of the log (%s): it holds events this log does not", pos, head), nil
	}
	return "", nil
}
