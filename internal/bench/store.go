package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sys/unix"

	"passerelle/commands"
	"passerelle/domain"
	"passerelle/domain/refdata"
	"passerelle/eventstore"
	"passerelle/eventstore/embedded"
	"passerelle/eventstore/personal"
	"passerelle/internal/app"
	"passerelle/projections"
)

type lagSamples struct {
	mu  sync.Mutex
	lat []time.Duration
}

func (l *lagSamples) add(d time.Duration) {
	l.mu.Lock()
	l.lat = append(l.lat, d)
	l.mu.Unlock()
}

func (l *lagSamples) stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return summarise(l.lat, 0, 0)
}

func sortedKeys(m map[string]float64) []string { return slices.Sorted(maps.Keys(m)) }

// appends measures durable appends of one ~500-byte event by 1, 8 and 64
// concurrent writers, each on its own stream, against a loop of 512-byte
// writes each followed by fdatasync. Each writer count alternates
// appendRounds short runs of both, so that the disk's pace, which other
// processes change from one minute to the next, weighs on both alike.
func (b *bench) appends(ctx context.Context) ([]Row, error) {
	fmt.Fprintln(b.cfg.Log, "durable appends")
	slice, ops := b.cfg.Duration/appendRounds, max(b.cfg.MaxOps/appendRounds, 1)
	var rows []Row
	for _, writers := range []int{1, 8, 64} {
		dir := filepath.Join(b.dir, fmt.Sprintf("append-%d", writers))
		store, err := embedded.Open(dir)
		if err != nil {
			return nil, err
		}
		data := []byte(`{"payload":"` + strings.Repeat("x", 480) + `"}`)
		var appended, raw []Stats
		for range appendRounds {
			appended = append(appended, closedLoop(ctx, writers, slice, ops, func(ctx context.Context) error {
				_, err := store.Append(ctx, "bench-"+uuid.NewString()[:8], eventstore.Any,
					eventstore.EventData{ID: uuid.New(), Type: "BenchEvent", Data: data, Metadata: []byte(`{}`)})
				return err
			}))
			r, err := rawSync(filepath.Join(b.dir, "raw"), slice, ops)
			if err != nil {
				_ = store.Close()
				return nil, err
			}
			raw = append(raw, r)
		}
		syncs, synced := store.LogSyncs()
		busy := store.CommitterBusy()
		if err := errors.Join(store.Close(), os.RemoveAll(dir)); err != nil {
			return nil, err
		}
		s, base := combine(appended...), combine(raw...)
		if s.Errors > 0 {
			return nil, fmt.Errorf("appends: %d errors, the first: %w", s.Errors, s.Err)
		}
		r := row(fmt.Sprintf("durable append, %d writer(s)", writers), "events/s", "512 B write+fdatasync loop", s.Rate(), base.Rate())
		r.Detail = map[string]float64{"p50_ms": ms(s.P50), "p99_ms": ms(s.P99), "baseline_p99_ms": ms(base.P99)}
		maps.Copy(r.Detail, groups(s, base, syncs, synced, busy))
		rows = append(rows, r)
	}
	return rows, nil
}

// groups says how the store's committer spent the runs s: the appends
// each log sync carried (a group's size), the mean time of a group's log
// write and sync beside the baseline's, and the share of the time the
// committer was busy. A rate is about the group's size over the time a
// group takes, so these tell whether the disk's syncs or the processor
// held it back.
func groups(s, base Stats, syncs []uint64, synced, busy time.Duration) map[string]float64 {
	var n uint64
	for _, c := range syncs {
		n += c
	}
	if n == 0 || base.N == 0 || s.Elapsed <= 0 {
		return nil
	}
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	return map[string]float64{
		"appends_per_log_sync":  float64(s.N) / float64(n),
		"log_sync_mean_us":      us(synced / time.Duration(n)),
		"baseline_sync_mean_us": us(base.Elapsed / time.Duration(base.N)),
		"committer_busy_share":  busy.Seconds() / s.Elapsed.Seconds(),
	}
}

// appendRounds is how many times appends alternates its runs.
const appendRounds = 4

// rawSync is the disk's own pace: 512-byte writes, each made durable.
func rawSync(path string, d time.Duration, maxOps int) (Stats, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return Stats{}, err
	}
	defer func() { _ = f.Close(); _ = os.Remove(path) }()
	buf := make([]byte, 512)
	var lat []time.Duration
	start := time.Now()
	for i := 0; i < maxOps && time.Since(start) < d; i++ {
		t := time.Now()
		if _, err := f.WriteAt(buf, int64(i%1024)*512); err != nil {
			return Stats{}, err
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return Stats{}, err
		}
		lat = append(lat, time.Since(t))
	}
	return summarise(lat, 0, time.Since(start)), nil
}

// syncsAt is the disk's own tail under an open loop: 512-byte writes at
// rate per second, each made durable, each timed from its scheduled time.
func syncsAt(ctx context.Context, path string, rate float64, d time.Duration, maxOps int) (Stats, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return Stats{}, err
	}
	defer func() { _ = f.Close(); _ = os.Remove(path) }()
	var n atomic.Int64
	s := openLoop(ctx, rate, d, maxOps, func(context.Context) error {
		if _, err := f.WriteAt(make([]byte, 512), (n.Add(1)%1024)*512); err != nil {
			return err
		}
		return unix.Fdatasync(int(f.Fd()))
	})
	if s.Errors > 0 {
		return s, fmt.Errorf("the disk's baseline: %d of %d writes failed, the first: %w", s.Errors, s.N+s.Errors, s.Err)
	}
	return s, nil
}

// streams measures a command on an offer whose stream is long (the
// repository reads it whole) against the same command on offers whose
// stream holds one event.
func (b *bench) streams(ctx context.Context) ([]Row, error) {
	fmt.Fprintln(b.cfg.Log, "long and short streams")
	const long = 2000
	dir := filepath.Join(b.dir, "streams")
	store, err := embedded.Open(dir)
	if err != nil {
		return nil, err
	}
	defer func() { _ = store.Close(); _ = os.RemoveAll(dir) }()
	ref, err := refdata.Load()
	if err != nil {
		return nil, err
	}
	svc := commands.NewService(store, ref)
	n := 0
	meta := func() commands.Meta {
		n++
		return commands.Meta{CommandID: "bench-" + strconv.Itoa(n), Now: time.Now(), Actor: eventstore.Actor{Role: "backoffice"}}
	}
	emp, err := svc.RegisterEmployer(ctx, meta(), domain.RegisterEmployerInput{Name: "Boulangerie Martin", SIRET: "73282932000074",
		Kind: "company", CommuneCode: "94028", Address: "1 rue de Paris"})
	if err != nil {
		return nil, err
	}
	post := func() (string, error) {
		res, err := svc.PostOffer(ctx, meta(), commands.PostOfferInput{EmployerID: emp.ID, PostOfferInput: domain.PostOfferInput{
			Title: "Découverte du fournil", Description: "Pétrissage, cuisson, vente", Sector: "s12", Grades: []string{"3e"},
			Weeks: []string{"2030-W05"}, Seats: 2, CommuneCode: "94028", Address: "1 rue de Paris", Lat: 48.79, Lon: 2.455}})
		return res.ID, err
	}
	amend := func(id string, i int) error {
		t := fmt.Sprintf("Découverte du fournil (%d)", i)
		_, err := svc.AmendOffer(ctx, meta(), id, domain.AmendOfferInput{Title: &t})
		return err
	}
	longID, err := post()
	if err != nil {
		return nil, err
	}
	for i := range long {
		if err := amend(longID, i); err != nil {
			return nil, err
		}
	}
	count := max(20, min(b.cfg.MaxOps, int(b.cfg.Duration/(5*time.Millisecond))))
	var longLat, shortLat []time.Duration
	start := time.Now()
	for i := 0; i < count && time.Since(start) < 2*b.cfg.Duration; i++ {
		id, err := post()
		if err != nil {
			return nil, err
		}
		t := time.Now()
		if err := amend(id, i); err != nil {
			return nil, err
		}
		shortLat = append(shortLat, time.Since(t))
		t = time.Now()
		if err := amend(longID, long+i); err != nil {
			return nil, err
		}
		longLat = append(longLat, time.Since(t))
	}
	l, s := summarise(longLat, 0, 0), summarise(shortLat, 0, 0)
	r := row(fmt.Sprintf("amend offer, stream of %d events, p50", long), "ms", "the same on a 1-event stream", ms(l.P50), ms(s.P50))
	r.Detail = map[string]float64{"p99_ms": ms(l.P99), "baseline_p99_ms": ms(s.P99)}
	return []Row{r}, nil
}

// redisClient is the configured Redis, or an in-process one.
func (b *bench) redisClient() (redis.UniversalClient, func(), error) {
	if b.cfg.RedisURL != "" {
		opts, err := redis.ParseURL(b.cfg.RedisURL)
		if err != nil {
			return nil, nil, err
		}
		// FLUSHDB of a campaign's read models takes longer than the
		// default 3 s, which failed the run
		opts.ReadTimeout = 2 * time.Minute
		c := redis.NewClient(opts)
		return c, func() { _ = c.Close() }, nil
	}
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, nil, err
	}
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	return c, func() { _ = c.Close(); m.Close() }, nil
}

// replay rebuilds every read model from the seeded log into Redis, against
// the same writes sent raw: the commands the rebuild sent, recorded in a
// first rebuild and pipelined again batch by batch with no log to read and
// nothing to decode or fold. A second baseline in the row's detail: the
// read models' final contents, each key written whole once, which does
// not grow with writes a rebuild need not have sent.
func (b *bench) replay(ctx context.Context) ([]Row, error) {
	fmt.Fprintln(b.cfg.Log, "replay")
	if b.cfg.ReplayGC != nil {
		// as `passerelle replay`, whatever the service measured beside
		// it runs
		defer b.cfg.ReplayGC()()
	}
	rdb, done, err := b.redisClient()
	if err != nil {
		return nil, err
	}
	defer done()
	store, err := embedded.Open(b.data)
	if err != nil {
		return nil, err
	}
	defer func() { _ = store.Close() }()
	keys, err := personal.OpenDir(filepath.Join(b.data, "keys"))
	if err != nil {
		return nil, err
	}
	// a rebuild into a flushed database
	rebuild := func(write func(context.Context, [][]any) error) (time.Duration, error) {
		t := time.Now()
		_, err := projections.RebuildAll(ctx, store, rdb, projections.All(), projections.RebuildOptions{Grace: -1,
			Opener: personal.NewCipher(keys), Log: slog.New(slog.DiscardHandler), Write: write})
		return time.Since(t), err
	}
	var (
		batches [][][]any
		mu      sync.Mutex // each projection's writer records its own
	)
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		return nil, err
	}
	if _, err := rebuild(func(ctx context.Context, cmds [][]any) error {
		kept := make([][]any, len(cmds)) // the writer renders the next over them
		for i, c := range cmds {
			kept[i] = slices.Clone(c)
		}
		mu.Lock()
		batches = append(batches, kept)
		mu.Unlock()
		return pipelined(ctx, rdb, cmds)
	}); err != nil {
		return nil, err
	}
	return b.replayAgainst(ctx, rdb, store, rebuild, batches)
}

// replayAgainst times the writes a first rebuild recorded in batches, sent
// raw, then a rebuild, replayRounds times in turn (as appends, so that the
// machine's pace weighs on both alike), then what the last rebuild left
// written whole.
func (b *bench) replayAgainst(ctx context.Context, rdb redis.UniversalClient, store eventstore.Store,
	rebuild func(func(context.Context, [][]any) error) (time.Duration, error), batches [][][]any) ([]Row, error) {
	writes := 0
	for _, cmds := range batches {
		writes += len(cmds)
	}
	var server redis.UniversalClient // Redis, when it is a process of its own
	if b.cfg.RedisURL != "" {
		server = rdb
	}
	var (
		took, raw       time.Duration
		spent, rawSpent cpuSpent
	)
	// each round sends the writes raw, then rebuilds; the processor time
	// leaves out the flush before each
	for range replayRounds {
		if err := rdb.FlushDB(ctx).Err(); err != nil {
			return nil, err
		}
		m := markCPU(ctx, server)
		t, err := sendRaw(ctx, rdb, batches)
		if err != nil {
			return nil, err
		}
		rawSpent.add(m, markCPU(ctx, server))
		raw += t
		if err := rdb.FlushDB(ctx).Err(); err != nil {
			return nil, err
		}
		m = markCPU(ctx, server)
		if t, err = rebuild(nil); err != nil {
			return nil, err
		}
		spent.add(m, markCPU(ctx, server))
		took += t
	}
	final, err := contents(ctx, rdb) // what the last rebuild left
	if err != nil {
		return nil, err
	}
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		return nil, err
	}
	var chunks [][][]any // the final contents, 1,000 commands to a pipeline
	for cmds := final; len(cmds) > 0; {
		n := min(len(cmds), 1000)
		chunks, cmds = append(chunks, cmds[:n]), cmds[n:]
	}
	whole, err := sendRaw(ctx, rdb, chunks)
	if err != nil {
		return nil, err
	}
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		return nil, err
	}
	head, err := store.Head(ctx)
	if err != nil {
		return nil, err
	}
	w := float64(writes * replayRounds)
	r := row("replay every read model", "writes/s", "the same writes, raw-pipelined", w/took.Seconds(), w/raw.Seconds())
	r.Detail = map[string]float64{"events": float64(head), "writes": float64(writes), "events_per_s": float64(head*replayRounds) / took.Seconds(),
		"final_writes": float64(len(final)), "ratio_to_final_contents": whole.Seconds() / (took.Seconds() / replayRounds), "rounds": replayRounds}
	spent.perOp(writes*replayRounds, "", r.Detail)
	rawSpent.perOp(writes*replayRounds, "baseline_", r.Detail)
	return []Row{r}, nil
}

// sendRaw sends each batch as one pipeline and returns the time that
// took.
func sendRaw(ctx context.Context, rdb redis.UniversalClient, batches [][][]any) (time.Duration, error) {
	start := time.Now()
	for _, cmds := range batches {
		if err := pipelined(ctx, rdb, cmds); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// replayRounds is how many times replay alternates its runs.
const replayRounds = 3

// pipelined sends commands in one pipeline.
func pipelined(ctx context.Context, rdb redis.UniversalClient, cmds [][]any) error {
	pipe := rdb.Pipeline()
	for _, c := range cmds {
		pipe.Do(ctx, c...)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// contents reads every key of the database back as the commands that
// write it whole, members, fields and scores at most maxValues to a
// command.
func contents(ctx context.Context, rdb redis.UniversalClient) ([][]any, error) {
	var keys []string
	for cursor := uint64(0); ; {
		part, next, err := rdb.Scan(ctx, cursor, "*", 1000).Result()
		if err != nil {
			return nil, err
		}
		keys, cursor = append(keys, part...), next
		if cursor == 0 {
			break
		}
	}
	var out [][]any
	for len(keys) > 0 {
		part := keys[:min(len(keys), 500)]
		keys = keys[len(part):]
		pipe := rdb.Pipeline()
		types := make([]*redis.StatusCmd, len(part))
		for i, k := range part {
			types[i] = pipe.Type(ctx, k)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, err
		}
		pipe = rdb.Pipeline()
		reads := make([]redis.Cmder, len(part))
		for i, k := range part {
			switch types[i].Val() {
			case "string":
				reads[i] = pipe.Get(ctx, k)
			case "set":
				reads[i] = pipe.SMembers(ctx, k)
			case "zset":
				reads[i] = pipe.ZRangeWithScores(ctx, k, 0, -1)
			case "hash":
				reads[i] = pipe.HGetAll(ctx, k)
			case "list":
				reads[i] = pipe.LRange(ctx, k, 0, -1)
			default:
				return nil, fmt.Errorf("key %s: type %q", k, types[i].Val())
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, err
		}
		for i, k := range part {
			out = append(out, whole(k, types[i].Val(), reads[i])...)
		}
	}
	return out, nil
}

// whole is the commands that write key, of type typ, as read.
func whole(key, typ string, read redis.Cmder) [][]any {
	var cmd string
	var values []any // in groups of per
	per := 1
	switch c := read.(type) {
	case *redis.StringCmd:
		return [][]any{{"SET", key, c.Val()}}
	case *redis.StringSliceCmd:
		cmd = map[string]string{"set": "SADD", "list": "RPUSH"}[typ]
		for _, m := range c.Val() {
			values = append(values, m)
		}
	case *redis.ZSliceCmd:
		cmd, per = "ZADD", 2
		for _, z := range c.Val() {
			values = append(values, z.Score, z.Member)
		}
	case *redis.MapStringStringCmd:
		cmd, per = "HSET", 2
		for f, v := range c.Val() {
			values = append(values, f, v)
		}
	}
	var out [][]any
	for len(values) > 0 {
		n := min(len(values), maxValues/per*per)
		out = append(out, append([]any{cmd, key}, values[:n]...))
		values = values[n:]
	}
	return out
}

// maxValues bounds the values of one command that contents renders.
const maxValues = 1000

// startup times the service from its start to its first GET /readyz
// answering 200, on the seeded log and on an empty existing one, with the
// read models in process as `passerelle serve` keeps them by default:
// rebuilt from the whole log at every start.
func (b *bench) startup(ctx context.Context) ([]Row, error) {
	fmt.Fprintln(b.cfg.Log, "start-up")
	ready := func(dir string) (time.Duration, error) {
		if b.cfg.StartingGC != nil {
			defer b.cfg.StartingGC()()
		}
		t := time.Now()
		a, err := app.Open(app.Config{DataDir: dir, SealEvery: -1, ExpiryEvery: -1, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return 0, err
		}
		err = a.Start(ctx)
		if err == nil {
			wait, cancel := context.WithTimeout(ctx, 10*time.Minute)
			err = a.WaitReady(wait)
			cancel()
		}
		took := time.Since(t)
		return took, errors.Join(err, a.Close())
	}
	seeded, err := ready(b.data)
	if err != nil {
		return nil, err
	}
	empty := filepath.Join(b.dir, "empty")
	if _, err := ready(empty); err != nil { // creates it
		return nil, err
	}
	base, err := ready(empty)
	if err != nil {
		return nil, err
	}
	return []Row{row("start-up until ready, seeded log", "ms", "the same with an empty existing store", ms(seeded), ms(base))}, nil
}
