// Package bench measures Passerelle's paths on a seeded instance, each
// against a baseline measured in the same run on the same machine, and
// reports their ratios: the figures travel between machines, the ratios
// say where the time goes.
package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/eventstore/embedded"
	"passerelle/internal/app"
	"passerelle/internal/seed"
	"passerelle/projections"
)

// Config chooses the instance and the loads.
type Config struct {
	Seed     seed.Options  // the seeded instance (default: Paris and its inner suburbs at 2 %)
	Duration time.Duration // of each measured loop (default 3 s)
	MaxOps   int           // bound on the operations of each loop (default 1,000,000)
	Clients  int           // closed-loop clients (default 32)
	Rate     float64       // open-loop commands per second (default 200)
	RedisURL string        // the Redis replayed into; empty: in-process (it is flushed)
	Dir      string        // working directory (default: a temporary one, removed)
	Only     []string      // the groups of paths to measure, among Groups (default: all)
	Log      io.Writer     // progress lines (default: none)
	// ReplayGC, when set, sets the collector as `passerelle replay` does
	// for the replay's row and returns what puts it back (default: the
	// collector as the process has it)
	ReplayGC func() (restore func())
	// StartingGC, when set, sets the collector as serve does until its
	// read models are ready, for the start-up row, and returns what puts
	// it back
	StartingGC func() (restore func())
}

// Row is one path against its baseline. Ratio is Path/Baseline.
type Row struct {
	Name     string             `json:"name"`
	Unit     string             `json:"unit"`
	Path     float64            `json:"path"`
	Baseline float64            `json:"baseline"`
	Ratio    float64            `json:"ratio"`
	Against  string             `json:"against"`
	Detail   map[string]float64 `json:"detail,omitempty"`
}

// Result is a whole run.
type Result struct {
	Events int64 `json:"seeded_events"`
	Rows   []Row `json:"rows"`
}

func (c *Config) defaults() {
	if len(c.Seed.Departments) == 0 && c.Seed.Scale == 0 {
		c.Seed = seed.Options{Departments: []string{"75", "92", "93", "94"}, Scale: 0.02, Seed: 1}
	}
	if c.Duration <= 0 {
		c.Duration = 3 * time.Second
	}
	if c.MaxOps <= 0 {
		c.MaxOps = 1_000_000
	}
	if c.Clients <= 0 {
		c.Clients = 32
	}
	if c.Rate <= 0 {
		c.Rate = 200
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

func row(name, unit, against string, path, baseline float64) Row {
	return Row{Name: name, Unit: unit, Against: against, Path: path, Baseline: baseline, Ratio: path / max(baseline, 1e-12)}
}

// Groups names the groups of paths, in the order they are measured: the
// HTTP paths, durable appends, commands on long streams, the replay into
// Redis and the start-up.
var Groups = []string{"http", "appends", "streams", "replay", "startup"}

// Run seeds an instance and measures every path against its baseline.
func Run(ctx context.Context, cfg Config) (res Result, err error) {
	cfg.defaults()
	for _, g := range cfg.Only {
		if !slices.Contains(Groups, g) {
			return res, fmt.Errorf("no group of paths named %q: choose among %s", g, strings.Join(Groups, ", "))
		}
	}
	dir := cfg.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "passerelle-bench-"); err != nil {
			return res, err
		}
		defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()
	}
	data := filepath.Join(dir, "data")
	if entries, err := os.ReadDir(data); err == nil && len(entries) > 0 {
		// seeding again into it would refuse every command as a repeat
		return res, fmt.Errorf("%s already holds an instance seeded by an earlier run: the bench seeds its own, give it an empty or new directory", data)
	}
	fmt.Fprintf(cfg.Log, "seeding %v at scale %g into %s\n", cfg.Seed.Departments, cfg.Seed.Scale, data)
	if res.Events, err = seedInstance(ctx, data, cfg.Seed); err != nil {
		return res, err
	}
	b := &bench{cfg: cfg, dir: dir, data: data}
	steps := map[string]func(context.Context) ([]Row, error){"http": b.http, "appends": b.appends, "streams": b.streams,
		"replay": b.replay, "startup": b.startup}
	for _, name := range Groups {
		step := steps[name]
		if len(cfg.Only) > 0 && !slices.Contains(cfg.Only, name) {
			continue
		}
		rows, err := step(ctx)
		if err != nil {
			return res, err
		}
		for _, r := range rows {
			fmt.Fprintf(cfg.Log, "  %s: %.4g vs %.4g %s (×%.3g)\n", r.Name, r.Path, r.Baseline, r.Unit, r.Ratio)
		}
		res.Rows = append(res.Rows, rows...)
	}
	return res, nil
}

type bench struct {
	cfg       Config
	dir, data string
}

func seedInstance(ctx context.Context, data string, opt seed.Options) (int64, error) {
	plan, err := seed.NewPlan(opt)
	if err != nil {
		return 0, err
	}
	store, err := embedded.Open(data, seed.StoreOptions...)
	if err != nil {
		return 0, err
	}
	keys, err := seed.OpenBulkKeys(filepath.Join(data, "keys"))
	if err != nil {
		return 0, errors.Join(err, store.Close())
	}
	rep, err := seed.Run(ctx, plan, seed.RunConfig{Store: store, Keys: keys, Workers: 64})
	err = errors.Join(err, keys.Sync(), keys.Close(), store.Close())
	if err == nil && rep.Failed > 0 {
		err = fmt.Errorf("seeding: %d commands refused: %v", rep.Failed, rep.First)
	}
	return rep.Events, err
}

// serve runs h on a loopback port until the returned stop is called.
func serve(h http.Handler) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

func client() *http.Client {
	// as many idle as open: a connection opened at a peak is kept for the
	// next, not closed and dialled again, which the server would pay for
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConns: maxConns, MaxIdleConnsPerHost: maxConns,
		// above capacity an open loop would open a connection for every
		// request waiting, until the process (server and load generator
		// alike) had no file descriptor left; requests wait for one here
		// instead, their latency still counted from their scheduled time
		MaxConnsPerHost: maxConns}}
}

// maxConns bounds the load generator's connections to one server.
const maxConns = 512

// helloWorld is the baseline server: chi answering a fixed 2 KB JSON, and
// decoding a posted body as strictly as the API does before answering 201.
func helloWorld() http.Handler {
	items := make([]map[string]any, 0, 8)
	for i := range 8 {
		items = append(items, map[string]any{"id": uuid.NewSHA1(uuid.Nil, []byte{byte(i)}).String(), "title": "Découverte du fournil",
			"sector": "s12", "grades": []string{"3e"}, "seats_available": 2, "lat": 48.85, "lon": 2.35, "distance_km": 1.2,
			"commune_code": "75056", "employer_name": "Boulangerie Martin"})
	}
	page, _ := json.Marshal(map[string]any{"items": items, "total": len(items)})
	for len(page) < 2048 {
		items[0]["title"] = items[0]["title"].(string) + "."
		page, _ = json.Marshal(map[string]any{"items": items, "total": len(items)})
	}
	r := chi.NewRouter()
	r.Get("/hello", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(page)
	})
	r.Post("/hello", func(w http.ResponseWriter, r *http.Request) {
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
		dec.DisallowUnknownFields()
		var body offerBody
		if err := dec.Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id":"` + uuid.NewString() + `","position":"1"}`))
	})
	return r
}

type offerBody struct {
	EmployerID  string   `json:"employer_id"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	Sector      string   `json:"sector"`
	Grades      []string `json:"grades"`
	Weeks       []string `json:"weeks"`
	Seats       int      `json:"seats"`
	CommuneCode string   `json:"commune_code"`
	Address     string   `json:"address"`
	Lat         float64  `json:"lat"`
	Lon         float64  `json:"lon"`
}

// anEmployer finds an employer of the seeded log. A large seed registers
// its schools and pupils first, so the log is read a page at a time.
func anEmployer(ctx context.Context, store eventstore.Store) (string, error) {
	for from := eventstore.Start; ; {
		evs, err := store.ReadAll(ctx, from, 5000)
		if err != nil {
			return "", err
		}
		if len(evs) == 0 {
			break
		}
		for _, re := range evs {
			if re.Type == (&domain.EmployerRegistered{}).EventType() {
				e, err := domain.Decode(re.Type, re.Data)
				if err != nil {
					return "", err
				}
				return e.(*domain.EmployerRegistered).EmployerID, nil
			}
		}
		from = evs[len(evs)-1].Position
	}
	return "", errors.New("the seeded log has no employer")
}

// http measures the API against the hello-world baseline: near search,
// commands in a closed loop, then commands in an open loop with the
// projection's lag.
func (b *bench) http(ctx context.Context) ([]Row, error) {
	if b.cfg.RedisURL != "" {
		// what an earlier run left there (another log's read models, or
		// another build's) is not this run's to catch up or to refuse
		flush, done, err := b.redisClient()
		if err != nil {
			return nil, err
		}
		err = flush.FlushDB(ctx).Err()
		done()
		if err != nil {
			return nil, err
		}
	}
	a, err := app.Open(app.Config{DataDir: b.data, RedisURL: b.cfg.RedisURL, SealEvery: -1, ExpiryEvery: -1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, err
	}
	defer func() { _ = a.Close() }()
	if err := a.Start(ctx); err != nil {
		return nil, err
	}
	wait, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	// A started service has work of its own to finish: the desk counts
	// every pupil's offers once it has read the log, the reconciler reads
	// the whole log. At a city's size the process stayed busy 6 to 19 s
	// after its read models were, and the first rows measured that beside
	// their own work.
	settle := settled(a)
	if err := settle(wait); err != nil {
		return nil, err
	}
	quiet(wait)
	employer, err := anEmployer(ctx, a.Store)
	if err != nil {
		return nil, err
	}
	inRadius, err := offersNear(ctx, a.Redis)
	if err != nil {
		return nil, err
	}
	api, stopAPI, err := serve(a.Handler())
	if err != nil {
		return nil, err
	}
	defer stopAPI()
	hello, stopHello, err := serve(helloWorld())
	if err != nil {
		return nil, err
	}
	defer stopHello()
	body, _ := json.Marshal(offerBody{EmployerID: employer, Title: "Découverte du fournil", Description: "Pétrissage, cuisson, vente",
		Sector: "s12", Grades: []string{"3e"}, Weeks: []string{"2030-W05", "2030-W06"}, Seats: 2, CommuneCode: "75056",
		Address: "1 rue de Paris", Lat: 48.8566, Lon: 2.3522})
	var rdb redis.UniversalClient // the read models' Redis, when it is a server of its own
	if b.cfg.RedisURL != "" {
		rdb = a.Redis
	}
	t := &target{cfg: b.cfg, api: api, hello: hello, c: client(), body: body, settle: settle, dir: b.dir, rdb: rdb, inRadius: inRadius,
		applied: func(ctx context.Context, pos eventstore.Position) (eventstore.Position, error) {
			return a.WaitApplied(ctx, projections.OffersName, pos)
		}}
	t.syncs, _ = a.Store.(logSyncer)
	var rows []Row
	for _, measure := range []func(context.Context) (Row, error){t.near, t.nearOpen, t.commands, t.openLoop} {
		r, err := measure(ctx)
		if err != nil {
			return nil, err
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// settled waits for a's read models and desk to reach the log's head.
func settled(a *app.App) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := a.WaitCaughtUp(ctx); err != nil {
			return fmt.Errorf("read models catching up: %w", err)
		}
		head, err := a.Store.Head(ctx)
		if err != nil {
			return err
		}
		if err := a.Desk.Wait(ctx, head, 5*time.Minute); err != nil {
			return fmt.Errorf("desk following the log: %w", err)
		}
		return nil
	}
}

// target is the API under load and its hello-world baseline.
type target struct {
	cfg        Config
	api, hello string
	c          *http.Client
	body       []byte // a valid offer
	// capacity is what the machine carries: the closed loop's commands
	// over its time and the projections' catching up after it
	capacity float64
	settle   func(context.Context) error // waits for the projections and the desk to catch up
	// applied waits until the offers' read model has applied a position,
	// and returns the one it applied by then
	applied func(context.Context, eventstore.Position) (eventstore.Position, error)
	dir     string                // where the disk's own baseline writes
	rdb     redis.UniversalClient // the read models' Redis, when a server of its own (nil: in the process)
	syncs   logSyncer             // the embedded store (nil: another)
	// inRadius is how many offers the near search has to choose from
	inRadius int
}

// logSyncer is the embedded store (embedded.Store.LogSyncs).
type logSyncer interface {
	LogSyncs() (counts []uint64, total time.Duration)
}

// beside is what ran in the process beside a loop and may set its tail:
// the collector's cycles (a mark, which holds a processor, lasted 0.1 to
// 0.8 s at a city's size), the goroutines' waits for a processor, and the
// store's log syncs, by how long they took (each one the wait of the
// appends of its group).
type beside struct {
	gcCycles uint64
	syncs    []uint64 // as embedded.Store.LogSyncs counts them (nil: another store)
	// the runtime's sample of how long goroutines waited, runnable, for a
	// processor (/sched/latencies:seconds): counts[i] between bounds[i]
	// and bounds[i+1]
	waits  []uint64
	bounds []float64
}

func (b beside) since(before beside) beside {
	d := beside{gcCycles: b.gcCycles - before.gcCycles, bounds: b.bounds}
	for i := range b.syncs {
		d.syncs = append(d.syncs, b.syncs[i]-before.syncs[i])
	}
	for i := range b.waits {
		d.waits = append(d.waits, b.waits[i]-before.waits[i])
	}
	return d
}

// waitsOver is the number of sampled waits for a processor longer than
// bound, in seconds.
func (b beside) waitsOver(bound float64) uint64 {
	var n uint64
	for i, c := range b.waits {
		if b.bounds[i] >= bound {
			n += c
		}
	}
	return n
}

// syncsOver is the number of log syncs longer than the bound, in seconds:
// one of embedded.SyncBuckets.
func (b beside) syncsOver(bound float64) uint64 {
	var n uint64
	for i := 1; i < len(b.syncs); i++ { // i: longer than SyncBuckets[i-1]
		if embedded.SyncBuckets[i-1] >= bound {
			n += b.syncs[i]
		}
	}
	return n
}

func (t *target) beside() beside {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/sched/latencies:seconds"}}
	metrics.Read(s)
	b := beside{gcCycles: s[0].Value.Uint64()}
	if s[1].Value.Kind() == metrics.KindFloat64Histogram {
		h := s[1].Value.Float64Histogram()
		b.waits, b.bounds = slices.Clone(h.Counts), h.Buckets
	}
	if t.syncs != nil {
		b.syncs, _ = t.syncs.LogSyncs()
	}
	return b
}

func (t *target) get(url string) func(context.Context) error {
	return func(ctx context.Context) error {
		return request(ctx, t.c, http.MethodGet, url, nil, http.StatusOK, nil)
	}
}

func (t *target) post(url string) func(context.Context) error {
	return func(ctx context.Context) error {
		return request(ctx, t.c, http.MethodPost, url, t.body, http.StatusCreated, nil)
	}
}

// nearURL is a pupil's search around the centre of Paris, where offers
// are densest.
const nearURL = "/v1/offers?near=48.8566,2.3522&radius_km=20&grade=3e"

// offersNear counts the open offers nearURL chooses from: the seed's size
// and date decide it, and the near rows say it (offers_in_radius) beside
// what they measured.
func offersNear(ctx context.Context, rdb redis.UniversalClient) (int, error) {
	prefix, err := projections.ActivePrefix(ctx, rdb, projections.OffersName)
	if err != nil {
		return 0, err
	}
	found, err := rdb.GeoSearch(ctx, prefix+projections.OfferGeoIndex("grade", "3e"), &redis.GeoSearchQuery{
		Latitude: 48.8566, Longitude: 2.3522, Radius: 20, RadiusUnit: "km"}).Result()
	return len(found), err
}

func (t *target) near(ctx context.Context) (Row, error) {
	fmt.Fprintln(t.cfg.Log, "near search")
	cpu := map[string]float64{}
	near, base, _, err := t.alternate(ctx, t.get(t.api+nearURL), t.get(t.hello+"/hello"), nil, cpu)
	if err != nil {
		return Row{}, err
	}
	if near.Errors > 0 || near.N == 0 {
		return Row{}, fmt.Errorf("near search: %d errors of %d, the first: %w", near.Errors, near.N+near.Errors, near.Err)
	}
	r := withLatency(row(fmt.Sprintf("near search, %d clients", t.cfg.Clients), "req/s", "chi GET of 2 KB JSON", near.Rate(), base.Rate()), near, base)
	maps.Copy(r.Detail, cpu)
	r.Detail["offers_in_radius"] = float64(t.inRadius)
	return r, nil
}

// alternate runs a closed loop of op, then one of base, httpRounds times
// in turn, each for a share of the loop's duration and operations, and
// combines each one's runs: as appends, so that the machine's pace, which
// other processes change from one minute to the next, weighs on both
// alike. settle, when set, runs after each run of op (the projections
// catching up), and its time counts in op's took and processor time.
// detail gets both's processor time per operation and the rounds.
func (t *target) alternate(ctx context.Context, op, base, settle func(context.Context) error, detail map[string]float64) (ops, bases Stats, took time.Duration, err error) {
	k, d, n := t.cfg.Clients, t.cfg.Duration/httpRounds, max(t.cfg.MaxOps/httpRounds, 1)
	var opRuns, baseRuns []Stats
	var spent, baseSpent cpuSpent
	for range httpRounds {
		start, m := time.Now(), markCPU(ctx, t.rdb)
		opRuns = append(opRuns, closedLoop(ctx, k, d, n, op))
		if settle != nil {
			if err := settle(ctx); err != nil {
				return Stats{}, Stats{}, 0, err
			}
		}
		spent.add(m, markCPU(ctx, t.rdb))
		took += time.Since(start)
		quiet(ctx)
		m = markCPU(ctx, nil)
		baseRuns = append(baseRuns, closedLoop(ctx, k, d, n, base))
		baseSpent.add(m, markCPU(ctx, nil))
	}
	ops, bases = combine(opRuns...), combine(baseRuns...)
	spent.perOp(ops.N, "", detail)
	baseSpent.perOp(bases.N, "baseline_", detail)
	detail["rounds"] = httpRounds
	return ops, bases, took, nil
}

// httpRounds is how many times a closed-loop row alternates its runs.
const httpRounds = 4

// nearOpen sends the near search at the configured rate: its latency
// under a load the machine carries, where the closed loop's, at
// saturation, is mostly its queue.
func (t *target) nearOpen(ctx context.Context) (Row, error) {
	fmt.Fprintf(t.cfg.Log, "near search, open loop at %g/s\n", t.cfg.Rate)
	near := openLoop(ctx, t.cfg.Rate, t.cfg.Duration, t.cfg.MaxOps, t.get(t.api+nearURL))
	if near.Errors > 0 || near.N == 0 {
		return Row{}, fmt.Errorf("near search, open loop: %d errors of %d, the first: %w", near.Errors, near.N+near.Errors, near.Err)
	}
	base := openLoop(ctx, t.cfg.Rate, t.cfg.Duration, t.cfg.MaxOps, t.get(t.hello+"/hello"))
	r := withLatency(row(fmt.Sprintf("near search open loop %g/s, p99", t.cfg.Rate), "ms", "chi at the same rate, p99",
		ms(near.P99), ms(base.P99)), near, base)
	r.Detail["achieved_per_s"], r.Detail["send_lag_p99_ms"], r.Detail["baseline_send_lag_p99_ms"] = near.Rate(), ms(near.SendP99), ms(base.SendP99)
	r.Detail["offers_in_radius"] = float64(t.inRadius)
	return r, nil
}

func (t *target) commands(ctx context.Context) (Row, error) {
	fmt.Fprintln(t.cfg.Log, "commands, closed loop")
	cpu := map[string]float64{}
	// with the projections' catching up, as the capacity: a command's
	// whole cost
	cmds, base, took, err := t.alternate(ctx, t.post(t.api+"/v1/offers"), t.post(t.hello+"/hello"), t.caughtUp, cpu)
	if err != nil {
		return Row{}, err
	}
	if cmds.Errors > 0 || cmds.N == 0 {
		return Row{}, fmt.Errorf("POST /v1/offers: %d errors of %d, the first: %w", cmds.Errors, cmds.N+cmds.Errors, cmds.Err)
	}
	t.capacity = float64(cmds.N) / took.Seconds()
	r := withLatency(row(fmt.Sprintf("POST /v1/offers, %d clients", t.cfg.Clients), "req/s", "chi decoding the same body", cmds.Rate(), base.Rate()), cmds, base)
	maps.Copy(r.Detail, cpu)
	r.Detail["capacity_per_s"] = t.capacity
	return r, nil
}

// caughtUp waits for the projections and the desk to apply what the
// commands wrote, so that a loop's backlog is not carried into the next
// one.
func (t *target) caughtUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	return t.settle(ctx)
}

// openLoop posts offers at the configured rate, and measures aside how
// long each takes to reach the read model. An open loop above what the
// machine carries measures only its queue, so the same runs first at 50 %
// and 80 % of the capacity, in the row's detail; the projections catch up
// after each run.
func (t *target) openLoop(ctx context.Context) (Row, error) {
	detail := map[string]float64{"capacity_per_s": t.capacity}
	for _, pct := range []int{50, 80} {
		rate := t.capacity * float64(pct) / 100
		fmt.Fprintf(t.cfg.Log, "commands, open loop at %d%% of capacity (%.0f/s)\n", pct, rate)
		run, err := t.openAt(ctx, rate)
		if err != nil {
			return Row{}, err
		}
		at, lag := run.open, run.lag
		key := fmt.Sprintf("at_%d_pct_capacity_", pct)
		detail[key+"p50_ms"], detail[key+"p99_ms"], detail[key+"lag_p99_ms"] = ms(at.P50), ms(at.P99), ms(lag.P99)
	}
	fmt.Fprintf(t.cfg.Log, "commands, open loop at %g/s\n", t.cfg.Rate)
	run, err := t.openAt(ctx, t.cfg.Rate)
	if err != nil {
		return Row{}, err
	}
	open, lag, readBack, during := run.open, run.lag, run.readBack, run.during
	base := openLoop(ctx, t.cfg.Rate, t.cfg.Duration, t.cfg.MaxOps, t.post(t.hello+"/hello"))
	disk, err := syncsAt(ctx, filepath.Join(t.dir, "raw-open"), t.cfg.Rate, t.cfg.Duration, t.cfg.MaxOps)
	if err != nil {
		return Row{}, err
	}
	r := row(fmt.Sprintf("POST /v1/offers open loop %g/s, p99", t.cfg.Rate), "ms", "chi at the same rate, p99", ms(open.P99), ms(base.P99))
	r.Detail = detail
	r.Detail["p50_ms"], r.Detail["baseline_p50_ms"], r.Detail["achieved_per_s"] = ms(open.P50), ms(base.P50), open.Rate()
	r.Detail["send_lag_p99_ms"], r.Detail["baseline_send_lag_p99_ms"] = ms(open.SendP99), ms(base.SendP99)
	r.Detail["projection_lag_p50_ms"], r.Detail["projection_lag_p99_ms"] = ms(lag.P50), ms(lag.P99)
	r.Detail["read_back_p50_ms"], r.Detail["read_back_p99_ms"] = ms(readBack.P50), ms(readBack.P99)
	// what a command costs at this rate, where the projections get a few
	// events a message, against the closed loop's dozens
	run.spent.perOp(open.N, "", r.Detail)
	// a command is durable once the store's log is synced: the disk's own
	// tail at the same rate is a floor the hello-world baseline does not show
	r.Detail["disk_sync_p50_ms"], r.Detail["disk_sync_p99_ms"] = ms(disk.P50), ms(disk.P99)
	// and what in the process may have set the tail
	r.Detail["gc_cycles"] = float64(during.gcCycles)
	r.Detail["sched_waits_over_1ms"] = float64(during.waitsOver(0.001))
	r.Detail["sched_waits_over_10ms"] = float64(during.waitsOver(0.01))
	if during.syncs != nil {
		r.Detail["log_syncs_over_10ms"] = float64(during.syncsOver(0.01))
		r.Detail["log_syncs_over_100ms"] = float64(during.syncsOver(0.1))
	}
	return r, nil
}

// openRun is what an open loop measured: the commands' latency, the
// projection's lag, the reads of one's own write, what ran beside, and
// the processors' time from the first command to the projections' having
// caught up with the last.
type openRun struct {
	open, lag, readBack Stats
	during              beside
	spent               cpuSpent
}

// openAt posts offers at rate, and measures aside how long each takes to
// reach the read model: every one in the process (the projection's lag),
// one in readEvery through the API as a client reading its own write
// would (a GET with min_position). Reading every one back would double
// the load the hello-world baseline is not given.
func (t *target) openAt(ctx context.Context, rate float64) (openRun, error) {
	var reads lagSamples
	var lagging sync.WaitGroup
	var sent atomic.Int64
	outer := ctx // the lag is read after the command's own context ends
	lags := newLagTracker(outer, t.applied)
	cmd := func(ctx context.Context) error {
		var (
			r     struct{ ID, Position string }
			acked time.Time
		)
		if err := request(ctx, t.c, http.MethodPost, t.api+"/v1/offers", t.body, http.StatusCreated, func(b []byte) error {
			acked = time.Now()
			return json.Unmarshal(b, &r)
		}); err != nil {
			return err
		}
		pos, err := strconv.ParseUint(r.Position, 10, 64)
		if err != nil {
			return fmt.Errorf("position %q: %w", r.Position, err)
		}
		lags.track(eventstore.Position(pos), acked)
		if sent.Add(1)%readEvery == 0 {
			lagging.Go(func() {
				if err := request(outer, t.c, http.MethodGet, t.api+"/v1/offers/"+r.ID+"?min_position="+r.Position, nil, http.StatusOK, nil); err == nil {
					reads.add(time.Since(acked))
				}
			})
		}
		return nil
	}
	var run openRun
	before, m := t.beside(), markCPU(ctx, t.rdb)
	run.open = openLoop(ctx, rate, t.cfg.Duration, t.cfg.MaxOps, cmd)
	run.during = t.beside().since(before)
	lagging.Wait()
	run.lag = lags.wait()
	if run.open.Errors > 0 || run.open.N == 0 {
		return openRun{}, fmt.Errorf("open loop at %.0f/s: %d errors of %d, the first: %w", rate, run.open.Errors, run.open.N+run.open.Errors, run.open.Err)
	}
	if err := t.caughtUp(ctx); err != nil {
		return openRun{}, err
	}
	run.spent.add(m, markCPU(ctx, t.rdb))
	// the collector and the store's checkpoint finish what the run left
	// before the next one starts
	quiet(ctx)
	run.readBack = reads.stats()
	return run, nil
}

// lagTracker measures how long each acknowledged position takes to be
// applied, with one goroutine waiting for the least of them: a waiter per
// command, all woken at every position applied, took the CPU the
// commands measured needed.
type lagTracker struct {
	mu      sync.Mutex
	pending []pendingLag // ordered by position
	more    chan struct{}
	samples lagSamples
	done    chan struct{}
	stop    context.CancelFunc
}

type pendingLag struct {
	pos   eventstore.Position
	acked time.Time
}

func newLagTracker(ctx context.Context, applied func(context.Context, eventstore.Position) (eventstore.Position, error)) *lagTracker {
	ctx, stop := context.WithCancel(ctx)
	l := &lagTracker{more: make(chan struct{}, 1), done: make(chan struct{}), stop: stop}
	go func() {
		defer close(l.done)
		for {
			l.mu.Lock()
			var next eventstore.Position
			if len(l.pending) > 0 {
				next = l.pending[0].pos
			}
			l.mu.Unlock()
			if next == 0 {
				select {
				case <-ctx.Done():
					return
				case <-l.more:
					continue
				}
			}
			at, err := applied(ctx, next)
			if err != nil {
				return
			}
			now := time.Now()
			l.mu.Lock()
			n := 0
			for n < len(l.pending) && l.pending[n].pos <= at {
				l.samples.add(now.Sub(l.pending[n].acked))
				n++
			}
			l.pending = l.pending[n:]
			l.mu.Unlock()
		}
	}()
	return l
}

// track adds a position acknowledged at acked.
func (l *lagTracker) track(pos eventstore.Position, acked time.Time) {
	l.mu.Lock()
	i, _ := slices.BinarySearchFunc(l.pending, pos, func(p pendingLag, pos eventstore.Position) int { return cmp.Compare(p.pos, pos) })
	l.pending = slices.Insert(l.pending, i, pendingLag{pos, acked})
	l.mu.Unlock()
	select {
	case l.more <- struct{}{}:
	default:
	}
}

// wait returns the lags once every position tracked is applied, the
// caller's context ended or five minutes passed.
func (l *lagTracker) wait() Stats {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		l.mu.Lock()
		left := len(l.pending)
		l.mu.Unlock()
		select {
		case <-l.done:
			return l.samples.stats()
		default:
		}
		if left == 0 || time.Now().After(deadline) {
			l.stop()
			<-l.done
			return l.samples.stats()
		}
		time.Sleep(time.Millisecond)
	}
}

// readEvery: one command in readEvery is read back through the API.
const readEvery = 10

func withLatency(r Row, path, base Stats) Row {
	r.Detail = map[string]float64{"p50_ms": ms(path.P50), "p99_ms": ms(path.P99), "baseline_p50_ms": ms(base.P50), "baseline_p99_ms": ms(base.P99)}
	return r
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Table prints the rows as a table.
func (r Result) Table(w io.Writer) {
	fmt.Fprintf(w, "%-44s %12s %12s %9s  %-8s %s\n", "path", "measured", "baseline", "ratio", "unit", "baseline is")
	fmt.Fprintln(w, strings.Repeat("-", 120))
	for _, x := range r.Rows {
		fmt.Fprintf(w, "%-44s %12.4g %12.4g %9.3g  %-8s %s\n", x.Name, x.Path, x.Baseline, x.Ratio, x.Unit, x.Against)
		if len(x.Detail) > 0 {
			var parts []string
			for _, k := range sortedKeys(x.Detail) {
				parts = append(parts, fmt.Sprintf("%s=%.4g", k, x.Detail[k]))
			}
			fmt.Fprintf(w, "%-44s %s\n", "", strings.Join(parts, " "))
		}
	}
}
