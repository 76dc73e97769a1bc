package projections

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"passerelle/domain"
	"passerelle/eventstore"
)

// A rebuild replays the whole log into a fresh generation of each
// projection while the served generation keeps answering (and keeps
// following the log, if a service runs). It batches: events are handled in
// order against an in-memory overlay of the generation, and each batch of
// events goes to Redis as one apply script per projection, in one
// pipelined round trip, the next batch being handled while the previous
// one is written. Once past the head of the log as it was at the start and
// past what the served generation has applied, the active pointer swaps to
// the new generation atomically (a script that checks both); live runners
// notice at their next event and resubscribe from its checkpoint. The old
// generation is then deleted, a few hundred keys at a time.

// RebuildOptions tunes RebuildAll; zero values take the defaults.
type RebuildOptions struct {
	// Batch is the number of events per Redis round trip (default 500).
	Batch int
	// CacheBytes bounds the overlay of each projection (default 256 MiB);
	// past it the rebuild reads Redis again.
	CacheBytes int
	// Grace is the pause between the swap and the deletion of the old
	// generation, for queries that resolved it just before (default
	// SwapGrace; negative: none).
	Grace time.Duration
	// KeepOld leaves the old generation in place.
	KeepOld bool
	// Progress, when set, is called about every ProgressEvery (default
	// 250 ms) and once at the end, from the rebuilding goroutine.
	Progress      func(Progress)
	ProgressEvery time.Duration
	Log           *slog.Logger
	// Opener restores sealed personal data as the live runners do
	// (Runner.WithOpener); nil when nothing is sealed.
	Opener interface{ Open(domain.Event) error }
}

// SwapGrace is how long a rebuild waits after the swap before deleting the
// replaced generation, so that readers that resolved it just before finish.
var SwapGrace = 2 * time.Second

// Keys of a projection's rebuild bookkeeping, beside its generations.
func generationsKey(name string) string { return "rm:" + name + ":generations" } // last generation allocated
func buildingKey(name string) string    { return "rm:" + name + ":building" }    // generation being rebuilt
func rebuildLockKey(name string) string { return "rm:" + name + ":rebuild-lock" }

func activeGeneration(ctx context.Context, rdb redis.UniversalClient, name string) (string, error) {
	gen, err := rdb.Get(ctx, ActiveKey(name)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return gen, err
}

// applyArgs renders the apply script's ARGV for a batch of commands.
func applyArgs(pos eventstore.Position, gen string, cmds []Cmd) []any {
	n := 2
	for _, c := range cmds {
		n += 1 + len(c)
	}
	args := make([]any, 0, n)
	args = append(args, padPosition(pos), gen)
	for _, c := range cmds {
		args = append(args, len(c))
		args = append(args, c...)
	}
	return args
}

// Progress of a rebuild.
type Progress struct {
	Projection string              // the projections rebuilt, separated by commas
	Events     int64               // events read so far
	Position   eventstore.Position // of the last event read
	Head       eventstore.Position // of the log, as last seen
	Elapsed    time.Duration
	Phase      string // "replaying", "swapping", "done", "deleting old generations"
}

// Fraction is how far through the log the rebuild is, by position.
func (p Progress) Fraction() float64 {
	if p.Head == 0 {
		return 1
	}
	return min(float64(p.Position)/float64(p.Head), 1)
}

// Rate is the number of events replayed per second.
func (p Progress) Rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Events) / p.Elapsed.Seconds()
}

// ETA estimates the time left from the pace so far.
func (p Progress) ETA() time.Duration {
	f := p.Fraction()
	if f <= 0 || f >= 1 {
		return 0
	}
	return time.Duration(float64(p.Elapsed) * (1 - f) / f)
}

// Rebuilt describes one rebuilt projection.
type Rebuilt struct {
	Name       string              `json:"name"`
	Generation string              `json:"generation"`
	Previous   string              `json:"previous,omitempty"` // "" when the projection had never run
	Position   eventstore.Position `json:"position"`
	Deleted    int64               `json:"deleted_keys"` // keys of the previous generation deleted
}

// ErrRebuildRunning: another rebuild of the projection holds its lock.
var ErrRebuildRunning = errors.New("a rebuild of this projection is already running")

const (
	lockTTL      = 30 * time.Second
	readPageSize = 1000
)

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
	// far (0 otherwise).
	// KEYS: active, new checkpoint, old checkpoint, building;
	// ARGV: new generation, expected old generation ("" for none).
	swapScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[2] then return -1 end
if cur ~= '' then
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

// build is one projection being rebuilt.
type build struct {
	p       Projector
	name    string
	gen     string
	prefix  string
	ov      *overlay
	cmds    []Cmd
	last    eventstore.Position // last event handled, not yet flushed
	pending int                 // events handled since the last flush
	swapped bool
	result  Rebuilt
}

// writeUnit is one projection's share of a flushed batch.
type writeUnit struct {
	name, gen string
	pos       eventstore.Position
	cmds      []Cmd
}

// rebuild is the state of one Rebuild call.
type rebuild struct {
	store  eventstore.Store
	rdb    redis.UniversalClient
	opt    RebuildOptions
	builds []*build

	jobs     chan []writeUnit
	inFlight sync.WaitGroup
	errMu    sync.Mutex
	err      error
	last     Progress // last reported
}

// Rebuild rebuilds projection p (see RebuildAll) and returns the generation
// now served.
func Rebuild(ctx context.Context, store eventstore.Store, rdb redis.UniversalClient, opener interface{ Open(domain.Event) error }, p Projector, report func(Progress)) (string, error) {
	out, err := RebuildAll(ctx, store, rdb, []Projector{p}, RebuildOptions{Opener: opener, Progress: report})
	if len(out) == 0 {
		return "", err
	}
	return out[0].Generation, err
}

// RebuildAll rebuilds the projections ps from the whole log, in one pass,
// into fresh generations and swaps them in. It returns once every
// projection is served from its new generation and the old ones are
// deleted.
func RebuildAll(ctx context.Context, store eventstore.Store, rdb redis.UniversalClient, ps []Projector, opt RebuildOptions) ([]Rebuilt, error) {
	if opt.Batch <= 0 {
		opt.Batch = 500
	}
	if opt.CacheBytes <= 0 {
		opt.CacheBytes = 256 << 20
	}
	if opt.Grace == 0 {
		opt.Grace = SwapGrace
	}
	if opt.ProgressEvery <= 0 {
		opt.ProgressEvery = 250 * time.Millisecond
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if len(ps) == 0 {
		return nil, errors.New("no projection to rebuild")
	}
	if err := applyScript.Load(ctx, rdb).Err(); err != nil {
		return nil, fmt.Errorf("load the apply script: %w", err)
	}
	rb := &rebuild{store: store, rdb: rdb, opt: opt, jobs: make(chan []writeUnit, 1)}

	token := randomToken()
	lockCtx, stopLocks := context.WithCancel(ctx)
	var locks sync.WaitGroup
	defer func() {
		stopLocks()
		locks.Wait()
		for _, b := range rb.builds {
			_ = releaseLockScript.Run(context.WithoutCancel(ctx), rdb, []string{rebuildLockKey(b.name)}, token).Err()
		}
	}()
	for _, p := range ps {
		name := p.Name()
		ok, err := rdb.SetNX(ctx, rebuildLockKey(name), token, lockTTL).Result()
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%s: %w", name, ErrRebuildRunning)
		}
		b := &build{p: p, name: name}
		rb.builds = append(rb.builds, b)
		locks.Add(1)
		go func() {
			defer locks.Done()
			renewLock(lockCtx, rdb, rebuildLockKey(name), token)
		}()
		if err := rb.prepare(ctx, b); err != nil {
			return nil, err
		}
	}

	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for units := range rb.jobs {
			if rb.failed() == nil {
				rb.fail(rb.write(ctx, units))
			}
			rb.inFlight.Done()
		}
	}()
	defer func() {
		close(rb.jobs)
		<-writerDone
	}()

	if err := rb.replay(ctx); err != nil {
		return nil, err
	}
	out := make([]Rebuilt, 0, len(rb.builds))
	for _, b := range rb.builds {
		out = append(out, b.result)
	}
	if opt.KeepOld {
		return out, nil
	}
	final := rb.last
	final.Phase = "deleting old generations"
	rb.report(final)
	if opt.Grace > 0 {
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-time.After(opt.Grace):
		}
	}
	for i, b := range rb.builds {
		if b.result.Previous == "" {
			continue
		}
		n, err := DropGeneration(ctx, rdb, GenPrefix(b.name, b.result.Previous))
		out[i].Deleted = n
		if err != nil {
			return out, fmt.Errorf("%s: delete generation %s: %w", b.name, b.result.Previous, err)
		}
	}
	return out, nil
}

// prepare deletes what an abandoned rebuild left and allocates a fresh
// generation.
func (rb *rebuild) prepare(ctx context.Context, b *build) error {
	active, err := activeGeneration(ctx, rb.rdb, b.name)
	if err != nil {
		return err
	}
	stale, err := rb.rdb.Get(ctx, buildingKey(b.name)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	if stale != "" && stale != active {
		n, err := DropGeneration(ctx, rb.rdb, GenPrefix(b.name, stale))
		if err != nil {
			return err
		}
		rb.opt.Log.Info("deleted an abandoned rebuild", "projection", b.name, "generation", stale, "keys", n)
	}
	n, err := newGenerationScript.Run(ctx, rb.rdb, []string{ActiveKey(b.name), generationsKey(b.name), buildingKey(b.name)}).Int64()
	if err != nil {
		return err
	}
	b.gen = fmt.Sprint(n)
	b.prefix = GenPrefix(b.name, b.gen)
	// a generation number is never reused, but a crashed rebuild of the
	// same number may have left keys behind
	if _, err := DropGeneration(ctx, rb.rdb, b.prefix); err != nil {
		return err
	}
	b.ov = newOverlay(rb.opt.CacheBytes, rb.sync)
	b.result = Rebuilt{Name: b.name, Generation: b.gen}
	rb.opt.Log.Info("rebuilding", "projection", b.name, "generation", b.gen, "served", active)
	return nil
}

func (rb *rebuild) replay(ctx context.Context) error {
	start := time.Now()
	head, err := rb.store.Head(ctx)
	if err != nil {
		return err
	}
	var (
		from       eventstore.Position
		events     int64
		lastReport = start
		sinceFlush int
		behind     int
	)
	names := make([]string, len(rb.builds))
	for i, b := range rb.builds {
		names[i] = b.name
	}
	progress := func(phase string) Progress {
		return Progress{Projection: strings.Join(names, ","), Events: events, Position: from, Head: max(head, from),
			Elapsed: time.Since(start), Phase: phase}
	}
	for {
		page, err := rb.store.ReadAll(ctx, from, readPageSize)
		if err != nil {
			return err
		}
		for _, re := range page {
			ev, err := decodeRecorded(re)
			if err == nil && ev.Data != nil && rb.opt.Opener != nil {
				err = rb.opt.Opener.Open(ev.Data)
			}
			if err != nil {
				rb.opt.Log.Error("cannot decode event, skipped", "position", re.Position, "err", err)
			}
			for _, b := range rb.builds {
				if b.swapped {
					continue
				}
				if ev.Data != nil {
					cmds, err := b.p.Handle(ctx, View{RDB: overlayClient{rb.rdb, b.ov}, Prefix: b.prefix}, ev)
					if err != nil {
						return fmt.Errorf("%s at %d: %w", b.name, re.Position, err)
					}
					b.ov.apply(cmds)
					b.cmds = append(b.cmds, cmds...)
				}
				b.last = re.Position
				b.pending++
			}
			from = re.Position
			events++
			if sinceFlush++; sinceFlush >= rb.opt.Batch {
				if err := rb.flush(false); err != nil {
					return err
				}
				sinceFlush = 0
			}
			if events&255 == 0 && time.Since(lastReport) >= rb.opt.ProgressEvery {
				lastReport = time.Now()
				rb.report(progress("replaying"))
			}
		}
		// Caught up once past the head of the log as it was at the start
		// and past what the served generation applied: events appended
		// since are the live runners' to apply to the new generation.
		if from < head {
			continue
		}
		if ready, err := rb.pastServed(ctx, from); err != nil || !ready {
			if err != nil {
				return err
			}
			if len(page) == 0 {
				// at the end of the log and still behind the served generation: a
				// live runner is applying events this read has not seen yet
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(10 * time.Millisecond):
				}
			}
			continue
		}
		if err := rb.flush(true); err != nil {
			return err
		}
		rb.report(progress("swapping"))
		done := true
		for _, b := range rb.builds {
			if b.swapped {
				continue
			}
			ok, err := rb.swap(ctx, b, from)
			if err != nil {
				return err
			}
			done = done && ok
		}
		if done {
			rb.report(progress("done"))
			return nil
		}
		// the served generation applied events appended since: read them
		if behind++; behind > 1000 {
			return errors.New("the rebuild cannot catch up with the served generation")
		}
	}
}

// pastServed reports whether pos is at or past the checkpoint of the
// served generation of every projection not swapped yet.
func (rb *rebuild) pastServed(ctx context.Context, pos eventstore.Position) (bool, error) {
	for _, b := range rb.builds {
		if b.swapped {
			continue
		}
		prefix, err := ActivePrefix(ctx, rb.rdb, b.name)
		if err != nil {
			return false, err
		}
		served, err := Checkpoint(ctx, rb.rdb, prefix)
		if err != nil || served > pos {
			return false, err
		}
	}
	return true, nil
}

// swap serves b's generation if it has applied at least as far as the
// served one; it reports whether it did.
func (rb *rebuild) swap(ctx context.Context, b *build, pos eventstore.Position) (bool, error) {
	// the checkpoint must name the last event read, even one no
	// projector wrote for
	if err := applyScript.Run(ctx, rb.rdb, []string{CheckpointKey(b.prefix), ActiveKey(b.name)}, applyArgs(pos, "", nil)...).Err(); err != nil {
		return false, err
	}
	for range 3 {
		old, err := activeGeneration(ctx, rb.rdb, b.name)
		if err != nil {
			return false, err
		}
		oldCheckpoint := ActiveKey(b.name) // unused when there is no served generation
		if old != "" {
			oldCheckpoint = CheckpointKey(GenPrefix(b.name, old))
		}
		res, err := swapScript.Run(ctx, rb.rdb, []string{ActiveKey(b.name), CheckpointKey(b.prefix), oldCheckpoint, buildingKey(b.name)}, b.gen, old).Int()
		if err != nil {
			return false, err
		}
		switch res {
		case 1:
			b.swapped = true
			b.result.Previous, b.result.Position = old, pos
			rb.opt.Log.Info("rebuilt generation served", "projection", b.name, "generation", b.gen, "previous", old, "position", pos)
			return true, nil
		case 0:
			return false, nil
		}
		// a live runner started meanwhile and claimed generation 1: look again
	}
	return false, fmt.Errorf("%s: the served generation keeps changing", b.name)
}

// flush hands the handled events to the writer. With final, or when an
// overlay must read Redis again, it waits for every write to land.
func (rb *rebuild) flush(final bool) error {
	var units []writeUnit
	wait := final
	for _, b := range rb.builds {
		if b.pending > 0 {
			units = append(units, writeUnit{name: b.name, pos: b.last, cmds: b.cmds})
			b.cmds, b.pending = nil, 0
		}
		wait = wait || !b.ov.fresh || b.ov.size > b.ov.limit
	}
	if len(units) > 0 {
		if err := rb.failed(); err != nil {
			return err
		}
		rb.inFlight.Add(1)
		rb.jobs <- units
	}
	if !wait {
		return rb.failed()
	}
	if err := rb.sync(); err != nil {
		return err
	}
	for _, b := range rb.builds {
		b.ov.flushed()
	}
	return nil
}

// write applies one batch: one apply script per projection, pipelined.
func (rb *rebuild) write(ctx context.Context, units []writeUnit) error {
	pipe := rb.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(units))
	for i, u := range units {
		prefix := GenPrefix(u.name, rb.genOf(u.name))
		cmds[i] = applyScript.EvalSha(ctx, pipe, []string{CheckpointKey(prefix), ActiveKey(u.name)}, applyArgs(u.pos, "", u.cmds)...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("write a batch: %w", err)
	}
	for i, c := range cmds {
		// applySkipped: the client retried a batch that had landed
		if n, err := c.Int(); err != nil || (n != applied && n != alreadyDone) {
			prefix := GenPrefix(units[i].name, rb.genOf(units[i].name))
			cp, _ := Checkpoint(ctx, rb.rdb, prefix)
			return fmt.Errorf("%s: batch up to %d not applied to %s, at %d (%d, %v)", units[i].name, units[i].pos, prefix, cp, n, err)
		}
	}
	return nil
}

func (rb *rebuild) genOf(name string) string {
	for _, b := range rb.builds {
		if b.name == name {
			return b.gen
		}
	}
	return ""
}

// sync waits until every batch handed to the writer has landed.
func (rb *rebuild) sync() error {
	rb.inFlight.Wait()
	return rb.failed()
}

func (rb *rebuild) fail(err error) {
	if err == nil {
		return
	}
	rb.errMu.Lock()
	if rb.err == nil {
		rb.err = err
	}
	rb.errMu.Unlock()
}

func (rb *rebuild) failed() error {
	rb.errMu.Lock()
	defer rb.errMu.Unlock()
	return rb.err
}

func (rb *rebuild) report(p Progress) {
	rb.last = p
	if rb.opt.Progress != nil {
		rb.opt.Progress(p)
	}
}

func renewLock(ctx context.Context, rdb redis.UniversalClient, key, token string) {
	t := time.NewTicker(lockTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = renewLockScript.Run(ctx, rdb, []string{key}, token, lockTTL.Milliseconds()).Err()
		}
	}
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
