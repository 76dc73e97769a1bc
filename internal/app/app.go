// Package app assembles Passerelle: the event store, the Redis read models,
// the projections and the HTTP API, for `passerelle serve` and for the
// component tests that boot the same thing in-process.
package app

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/redis/go-redis/v9"

	"passerelle/commands"
	"passerelle/desk"
	"passerelle/domain/refdata"
	"passerelle/eventstore"
	"passerelle/eventstore/chain"
	"passerelle/eventstore/embedded"
	"passerelle/eventstore/personal"
	"passerelle/history"
	"passerelle/internal/api"
	"passerelle/internal/auth"
	"passerelle/internal/authz"
	"passerelle/internal/dashboard"
	"passerelle/internal/ratelimit"
	"passerelle/internal/route"
	"passerelle/partnerapi"
	"passerelle/projections"
	"passerelle/readapi"
	"passerelle/reconcile"
)

// Config is the service configuration.
type Config struct {
	DataDir       string           // embedded event store and personal-data keys
	RedisURL      string           // empty: an in-process Redis-compatible server
	EventStoreURL string           // empty: the embedded engine
	Logger        *slog.Logger     // default slog.Default()
	Clock         func() time.Time // default time.Now
	// OpenStore opens EventStoreURL when it is set; the binary supplies it
	// so this package does not depend on every adapter.
	OpenStore func(url string) (eventstore.Store, error)
	// Verifier authenticates bearer tokens; nil serves without
	// authentication (development and tests of other concerns).
	Verifier auth.Verifier
	// RateLimit is the requests per second allowed to each client (bearer
	// token, or address without one), with bursts of RateBurst; 0: no limit.
	RateLimit float64
	RateBurst int
	// PublicRateLimit is the requests per second allowed to each client
	// address on the routes open to the public (offer search, an offer's
	// page), token or not, with bursts of PublicRateBurst; 0: no limit.
	PublicRateLimit float64
	PublicRateBurst int
	// TrustedProxies are the reverse proxies in front of the service: a
	// request from one of them is counted against the client address they
	// forward in X-Forwarded-For (none: the connection's address).
	TrustedProxies ratelimit.Proxies
	// PartnerRateLimit is each operator's allowance on the partner API v2,
	// in calls a minute: 0 is the national API's 100; negative, no limit
	// (tests that replay a whole feed).
	PartnerRateLimit int
	// SealEvery is how often the log is sealed (package chain; default one
	// minute; negative: never); it is also sealed at start-up and at a
	// graceful shutdown.
	SealEvery time.Duration
	// ExpiryEvery is how often overdue applications are expired (default
	// one minute; negative: never, for tests that drive Expirer themselves).
	ExpiryEvery time.Duration
	// Role is what this process does: RoleAll (default), RoleAPI or
	// RoleProjector. Several processes of other roles share one log
	// (EventStoreURL) and one Redis (RedisURL).
	Role string
	// ReconcileGrace is how long the reconciler leaves a placement
	// unsettled before settling it (default one second; negative: no
	// reconciler, for tests that drive it themselves).
	ReconcileGrace time.Duration
}

// Roles of a process.
const (
	// RoleAll serves the API and runs the background work.
	RoleAll = "all"
	// RoleAPI serves commands and queries, and nothing in the background:
	// several API processes scale the HTTP side.
	RoleAPI = "api"
	// RoleProjector runs the projections, the reconciler, expiry and the
	// log's seals, and serves only the operations routes.
	RoleProjector = "projector"
)

// role checks the configured role.
func (cfg *Config) role() (string, error) {
	switch cfg.Role {
	case "", RoleAll:
		return RoleAll, nil
	case RoleAPI, RoleProjector:
		if cfg.RedisURL == "" || cfg.EventStoreURL == "" {
			return "", fmt.Errorf("role %s: processes of separate roles share one event store and one Redis: give both (--eventstore, --redis-url)", cfg.Role)
		}
		return cfg.Role, nil
	}
	return "", fmt.Errorf("role %q: must be all, api or projector", cfg.Role)
}

// App is a running Passerelle.
type App struct {
	cfg     Config
	log     *slog.Logger
	Store   eventstore.Store
	Redis   redis.UniversalClient
	redis   string // its address, for the logs
	mini    *miniredis.Miniredis
	runner  *projections.Runner
	Service *commands.Service
	Cipher  *personal.Cipher
	Expirer *commands.Expirer
	// Reconciler settles placements that a crash left half-made.
	Reconciler *reconcile.Reconciler
	// Desk is the desk's index (suggestions, candidates, allocation
	// markets), followed live from the log by the serving processes.
	Desk       *desk.Index
	reconciled chan struct{} // closed when the reconciler has stopped
	deskDone   chan struct{} // closed when the desk index has stopped following
	sealer     *chain.Sealer
	handler    http.Handler
	mux        *chi.Mux
	list       []route.Route
	metrics    *metrics

	// watch tells an api process's reads how far the read models are
	// (nil where the projections run); watchDone is closed once it stopped
	watch     *projections.Watch
	watchDone chan struct{}

	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// Open connects the store and Redis and builds the HTTP handler. Call Start
// to run the projections.
func Open(cfg Config) (*App, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	role, err := cfg.role()
	if err != nil {
		return nil, err
	}
	cfg.Role = role
	a := &App{cfg: cfg, log: cfg.Logger}
	if err := a.connect(); err != nil {
		return nil, err
	}
	places, err := refdata.Load()
	if err != nil {
		return nil, errors.Join(err, a.Close())
	}
	keys, err := personal.OpenDir(filepath.Join(cfg.DataDir, "keys"))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("personal data keys: %w", err), a.Close())
	}
	a.Cipher = personal.NewCipher(keys)
	a.runner = projections.NewRunner(a.Store, a.Redis, a.log, projections.All()...).WithOpener(a.Cipher)
	if a.mini != nil {
		// the in-process store starts empty: its rebuild at every start
		// writes straight into the server, in large batches
		a.runner.Apply, a.runner.MGet = projections.InProcessApply(a.mini), projections.InProcessMGet(a.mini)
		a.runner.Rebuild = projections.RebuildOptions{Batch: 2000, Write: projections.InProcess(a.mini), ProgressEvery: 5 * time.Second,
			Progress: func(p projections.Progress) {
				if p.Phase == "replaying" {
					a.log.Info("rebuilding the read models", "events", p.Events, "done", fmt.Sprintf("%.0f%%", 100*p.Fraction()), "eta", p.ETA().Round(time.Second))
				}
			}}
	}
	a.metrics = newMetrics(a)
	a.Service = commands.NewService(countAppends(a.Store, &a.metrics.appended), places).WithPersonalData(a.Cipher)

	a.sealer = chain.NewSealer(a.Store, commands.Chained, cfg.Clock)
	a.Expirer = commands.NewExpirer(a.Service, func(ctx context.Context, now time.Time, limit int64) ([]string, error) {
		return projections.DueApplications(ctx, a.Redis, now, limit)
	}, cfg.Clock, a.log)
	a.Reconciler = a.newReconciler()
	// nothing older than the log's head is served, even before Start
	if err := a.runner.Hold(context.Background()); err != nil {
		return nil, errors.Join(fmt.Errorf("read the head of the log: %w", err), a.Close())
	}
	queries := readapi.New(a.Redis)
	// reads waiting for a position wait for the runner where it runs, and
	// in an api process for one watch of the checkpoints in Redis
	queries.Floor, queries.Progress = a.runner.Floor, a.runner.Progress
	if cfg.Role == RoleAPI {
		var names []string
		for _, p := range projections.All() {
			names = append(names, p.Name())
		}
		a.watch = projections.NewWatch(a.Redis, a.log, names...)
		queries.Progress = a.watch.Progress
	}
	a.Desk = desk.New(places, cfg.Clock)
	if cfg.DataDir != "" {
		a.Desk.SnapshotTo(filepath.Join(cfg.DataDir, "desk.snapshot"), a.Cipher)
	}
	// rounds take their market from the desk's index, which the serving
	// processes follow (Start)
	a.Service.WithRounds(a.Desk, commands.RoundProposer{Service: a.Service, Clock: cfg.Clock})
	partner, err := a.partnerAPI(places, queries)
	if err != nil {
		return nil, errors.Join(err, a.Close())
	}
	a.handler = a.routes(commands.NewAPI(a.Service, a.Store, cfg.Clock), queries, history.New(a.Store, a.Cipher), partner)
	return a, nil
}

// partnerAPI builds the partner API v2. Its logins issue tokens with the
// service's token key, so the guard verifies them like any other; without
// a key (authentication off) they are signed with a key of this process.
func (a *App) partnerAPI(places *refdata.Data, queries *readapi.API) (*partnerapi.API, error) {
	tokens, _ := a.cfg.Verifier.(*auth.HMAC)
	if tokens == nil {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		var err error
		if tokens, err = auth.NewHMAC(key, nil); err != nil {
			return nil, err
		}
	}
	var limit *ratelimit.Limiter
	if a.cfg.PartnerRateLimit >= 0 {
		limit = partnerapi.RateLimit(cmp.Or(a.cfg.PartnerRateLimit, partnerapi.CallsPerMinute))
		if a.mini == nil {
			limit.Shared(a.Redis) // every API process shares each operator's allowance
		}
	}
	return partnerapi.New(a.Service, queries, tokens, places, limit, a.cfg.Clock), nil
}

// connect opens the event store and Redis (an in-process one when no
// URL is given).
func (a *App) connect() error {
	cfg := a.cfg
	var err error
	switch {
	case cfg.EventStoreURL != "":
		if cfg.OpenStore == nil {
			return fmt.Errorf("event store %q: no adapter available", cfg.EventStoreURL)
		}
		a.Store, err = cfg.OpenStore(cfg.EventStoreURL)
	default:
		a.Store, err = embedded.Open(cfg.DataDir)
	}
	if err != nil {
		return fmt.Errorf("open event store: %w", err)
	}
	if cfg.RedisURL == "" {
		// An empty in-process Redis: the projections rebuild every read
		// model from the log at start.
		a.mini = miniredis.NewMiniRedis()
		if err := a.mini.StartAddr("127.0.0.1:0"); err != nil {
			return errors.Join(fmt.Errorf("start in-process redis: %w", err), a.Store.Close())
		}
		a.redis = a.mini.Addr()
		a.Redis = redis.NewClient(&redis.Options{Addr: a.redis})
		return nil
	}
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return errors.Join(fmt.Errorf("redis url: %w", err), a.Store.Close())
	}
	a.redis = opts.Addr
	if opts.DialerRetries == 0 {
		// an unreachable Redis is answered with 503 in a fraction of a
		// second rather than after the client's five dials
		opts.DialerRetries = 2
	}
	a.Redis = redis.NewClient(opts)
	return nil
}

// newReconciler builds the reconciler, which keeps its snapshot in the
// data directory.
func (a *App) newReconciler() *reconcile.Reconciler {
	snapshot := ""
	if a.cfg.DataDir != "" {
		snapshot = filepath.Join(a.cfg.DataDir, "reconciler.snapshot")
	}
	r := reconcile.New(a.Store, a.Service, snapshot, a.log)
	if a.cfg.ReconcileGrace > 0 {
		r.Grace = a.cfg.ReconcileGrace
	}
	if a.cfg.Clock != nil {
		r.Clock = a.cfg.Clock
	}
	return r
}

// startWait bounds how long Start waits for the projections to subscribe.
const startWait = 2 * time.Second

// deskWait bounds how long the desk's index waits for the projections to
// be running before it reads the log.
const deskWait = time.Minute

// RedisAddr is the address of the Redis the read models live in.
func (a *App) RedisAddr() string { return a.redis }

// Start runs the projections in the background; it returns once they are
// subscribed to the log, or after startWait while they still rebuild read
// models: the in-process read store is filled from the whole log at every
// start. Meanwhile reads answer 503 not_ready and /readyz tells, while
// commands, /healthz and the operations routes are served.
func (a *App) Start(ctx context.Context) error {
	if err := a.runner.Hold(ctx); err != nil {
		return fmt.Errorf("read the head of the log: %w", err)
	}
	ctx, a.cancel = context.WithCancel(ctx)
	running := make(chan struct{})
	if a.cfg.Role != RoleProjector {
		a.startDesk(ctx, running)
	}
	if a.cfg.Role == RoleAPI {
		a.watchDone = make(chan struct{})
		go func() {
			defer close(a.watchDone)
			a.watch.Run(ctx)
		}()
		return nil // the projector processes do the rest
	}
	a.done = make(chan error, 1)
	go func() { a.done <- a.runner.Run(ctx, running) }()
	if every := a.cfg.SealEvery; every >= 0 {
		if every == 0 {
			every = time.Minute
		}
		// what the last run left unsealed (it stopped without its last
		// seal) is sealed now, once its links are checked
		a.seal(ctx, "start-up")
		go a.sealer.Run(ctx, every, func(err error) { a.log.Warn("sealing the log failed", "err", err) })
	}
	if every := a.cfg.ExpiryEvery; every >= 0 {
		if every == 0 {
			every = time.Minute
		}
		go a.Expirer.Run(ctx, every)
	}
	if a.cfg.ReconcileGrace >= 0 {
		a.reconciled = make(chan struct{})
		go func() {
			defer close(a.reconciled)
			_ = a.Reconciler.Run(ctx)
		}()
	}
	select {
	case <-running:
		return nil
	case err := <-a.done:
		return fmt.Errorf("projections stopped: %w", err)
	case <-time.After(startWait):
		a.log.Info("projections still starting: reads answer not ready until they have caught up")
		return nil
	}
}

// startDesk runs the desk's index. Where the projections run in the same
// process, it waits for them first: both read the whole log at a start,
// and /readyz waits for the read models only; a rebuild that cannot run
// holds the desk back no longer than deskWait.
func (a *App) startDesk(ctx context.Context, running <-chan struct{}) {
	a.deskDone = make(chan struct{})
	go func() {
		defer close(a.deskDone)
		if a.cfg.Role != RoleAPI {
			select {
			case <-running:
			case <-time.After(deskWait):
			case <-ctx.Done():
				return
			}
		}
		a.Desk.Follow(ctx, a.Store, a.Cipher, a.log)
	}()
}

// WaitCaughtUp blocks until every projection has applied the head of the
// log as it was when called.
func (a *App) WaitCaughtUp(ctx context.Context) error {
	head, err := a.Store.Head(ctx)
	if err != nil {
		return err
	}
	for {
		st, err := a.projectionStatus(ctx, head)
		if err != nil {
			return err
		}
		if st.caughtUp() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// WaitApplied blocks until this process has applied pos to the projection
// named, what a read of it with min_position waits for, and returns the
// position applied by then.
func (a *App) WaitApplied(ctx context.Context, projection string, pos eventstore.Position) (eventstore.Position, error) {
	progress := a.runner.Progress
	if a.watch != nil {
		progress = a.watch.Progress
	}
	for {
		applied, advanced := progress(projection)
		if applied >= pos {
			return applied, nil
		}
		select {
		case <-ctx.Done():
			return applied, ctx.Err()
		case <-advanced:
		}
	}
}

// WaitReady blocks until GET /readyz would answer 200. It polls the
// projections' checkpoints, which is cheap, and checks readiness once they
// reach the head: behind the log, the check reads the events not applied
// yet, and checking often would slow the catching up it waits for.
func (a *App) WaitReady(ctx context.Context) error {
	head, err := a.Store.Head(ctx)
	if err != nil {
		return err
	}
	for {
		at, err := a.checkpointsAt(ctx, head)
		if err != nil {
			return err
		}
		if at {
			if _, problems := a.readiness(ctx); len(problems) == 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// checkpointsAt reports whether every projection has applied head.
func (a *App) checkpointsAt(ctx context.Context, head eventstore.Position) (bool, error) {
	for _, p := range projections.All() {
		prefix, err := projections.ActivePrefix(ctx, a.Redis, p.Name())
		if err != nil {
			return false, err
		}
		cp, err := projections.Checkpoint(ctx, a.Redis, prefix)
		if err != nil || cp < head {
			return false, err
		}
	}
	return true, nil
}

// Routes is every route of the API, as declared: what the router serves and
// the guard enforces, and what tests must cover.
func (a *App) Routes() []route.Route { return a.list }

// Handler is the whole HTTP API.
func (a *App) Handler() http.Handler { return a.handler }

// seal seals whatever the log holds unsealed, saying so in the log.
func (a *App) seal(ctx context.Context, when string) {
	seals, err := a.sealer.SealAll(ctx)
	switch {
	case err != nil:
		a.log.Error("sealing the log failed", "when", when, "seals", seals, "err", err)
	case seals > 0:
		a.log.Info("log sealed", "when", when, "seals", seals)
	}
}

// sealWait bounds the seal at shutdown.
const sealWait = 10 * time.Second

// Close stops the projections, seals the log (when sealing is on: the last
// events of each stream have no successor to vouch for them) and closes
// Redis and the store.
func (a *App) Close() error {
	var err error
	a.once.Do(func() {
		if a.cancel != nil {
			a.cancel()
		}
		if a.deskDone != nil {
			<-a.deskDone
		}
		if a.watchDone != nil {
			<-a.watchDone
		}
		if a.done != nil {
			if e := <-a.done; e != nil && !errors.Is(e, context.Canceled) {
				err = e
			}
			if a.reconciled != nil {
				<-a.reconciled // it writes its snapshot as it stops
			}
			if a.cfg.SealEvery >= 0 {
				ctx, cancel := context.WithTimeout(context.Background(), sealWait)
				a.seal(ctx, "shutdown")
				cancel()
			}
		}
		if a.metrics != nil {
			a.metrics.access.close()
		}
		if a.Redis != nil {
			err = errors.Join(err, a.Redis.Close())
		}
		if a.mini != nil {
			a.mini.Close()
		}
		err = errors.Join(err, a.Store.Close())
	})
	return err
}

func (a *App) routes(cmds *commands.API, queries *readapi.API, logQueries *history.API, partner *partnerapi.API) http.Handler {
	a.list = slices.Concat(cmds.Routes(), queries.Routes(), logQueries.Routes(), desk.NewAPI(a.Desk).Routes(), a.operations(), dashboard.Routes(), partner.Routes())
	if a.cfg.Role == RoleProjector {
		a.list = a.operations()
	}
	if a.cfg.PublicRateLimit > 0 {
		perAddress := ratelimit.New(a.cfg.PublicRateLimit, a.cfg.PublicRateBurst, nil).TrustProxies(a.cfg.TrustedProxies)
		if a.mini == nil {
			perAddress.Shared(a.Redis)
		}
		for i, rt := range a.list {
			if rt.Allow.IsPublic() {
				a.list[i].Handler = perAddress.PerAddress(rt.Handler)
			}
		}
	}
	r := chi.NewRouter()
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		api.WriteError(w, r, api.Errorf(http.StatusNotFound, "not_found", "no route %s %s", r.Method, r.URL.Path))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		allowed := allowedMethods(r, req)
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		api.WriteError(w, req, api.Errorf(http.StatusMethodNotAllowed, "method_not_allowed", "%s is not allowed on %s: %s only", req.Method, req.URL.Path, strings.Join(allowed, ", ")))
	})
	route.Mount(r, a.list)
	a.mux = r
	var h http.Handler = r
	if a.cfg.Verifier != nil {
		h = authz.New(r, a.cfg.Verifier, a.Store, route.Rules(a.list))
	}
	if a.cfg.RateLimit > 0 && a.cfg.Role != RoleProjector {
		l := ratelimit.New(a.cfg.RateLimit, a.cfg.RateBurst, nil).TrustProxies(a.cfg.TrustedProxies)
		if a.mini == nil {
			l.Shared(a.Redis) // every API process of a deployment shares each client's allowance
		}
		h = l.Middleware(h)
	}
	h = partnerapi.Errors(h) // the partner API answers errors in its own words
	return middleware.RequestID(a.recoverer(securityHeaders(a.metrics.middleware(h))))
}

// allowedMethods are the methods mux serves on the request's path, for the
// Allow header of a 405.
func allowedMethods(mux *chi.Mux, r *http.Request) []string {
	path := r.URL.RawPath
	if path == "" {
		path = r.URL.Path
	}
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if mux.Match(chi.NewRouteContext(), m, path) {
			out = append(out, m)
		}
	}
	return out
}

// operations are the routes for those who run the service, open to all.
func (a *App) operations() []route.Route {
	const get = http.MethodGet
	return []route.Route{
		{Method: get, Pattern: "/healthz", Status: http.StatusOK, Summary: "Liveness", Allow: authz.Open,
			Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				api.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
			})},
		{Method: get, Pattern: "/readyz", Status: http.StatusOK, Summary: "Readiness", Allow: authz.Open, Handler: http.HandlerFunc(a.readyz)},
		{Method: get, Pattern: "/metrics", Status: http.StatusOK, Summary: "Prometheus metrics", Allow: authz.Open, Handler: a.metrics.handler()},
		{Method: get, Pattern: "/openapi.json", Status: http.StatusOK, Summary: "This API description", Allow: authz.Open, Handler: http.HandlerFunc(serveOpenAPI)},
	}
}

// recoverer turns a panic into a contract 500 without leaking its details.
func (a *App) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				a.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", v)
				// %v, not %w: whatever was thrown, the answer is a 500
				api.WriteError(w, r, fmt.Errorf("panic: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// projectionState is one projection's progress against the head of the log.
type projectionState struct {
	Name     string `json:"name"`
	Position string `json:"position"`
	Behind   bool   `json:"behind"`
	// EventsBehind counts the events not applied yet (capped at
	// maxBehind); SecondsBehind is how long the oldest of them has waited.
	EventsBehind  int     `json:"events_behind"`
	SecondsBehind float64 `json:"seconds_behind"`
	// Problem says why this build cannot serve the model, caught up or not.
	Problem string `json:"problem,omitempty"`
}

const maxBehind = 10_000

type status []projectionState

func (s status) caughtUp() bool {
	for _, p := range s {
		if p.Behind || p.Problem != "" {
			return false
		}
	}
	return true
}

func (a *App) projectionStatus(ctx context.Context, head eventstore.Position) (status, error) {
	var out status
	for _, p := range projections.All() {
		prefix, err := projections.ActivePrefix(ctx, a.Redis, p.Name())
		if err != nil {
			return nil, err
		}
		pos, err := projections.Checkpoint(ctx, a.Redis, prefix)
		if err != nil {
			return nil, err
		}
		// behind the floor: Redis lost writes the runner is making up for
		floor := a.runner.Floor(p.Name())
		st := projectionState{Name: p.Name(), Position: pos.String(), Behind: pos < head || pos < floor}
		if floor == projections.Unservable {
			st.Problem = "the served generation cannot be trusted (see the log): it is being rebuilt from the log"
		}
		if layout, err := projections.MarkerLayout(ctx, a.Redis, prefix); err != nil {
			return nil, err
		} else if layout != 0 && layout != p.Layout() {
			st.Problem = fmt.Sprintf("served in layout %d by another version; this one reads %d", layout, p.Layout())
		}
		if st.Behind {
			if st.EventsBehind, st.SecondsBehind, err = behind(ctx, a.Store, pos); err != nil {
				return nil, err
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// behind counts the events after pos, up to maxBehind, and says how long
// the first of them has waited. A store that counts (eventstore.Counter)
// reads only that one: /readyz is polled while a start-up rebuild runs.
func behind(ctx context.Context, store eventstore.Store, pos eventstore.Position) (n int, seconds float64, err error) {
	limit := maxBehind
	if _, ok := store.(eventstore.Counter); ok {
		limit = 1
	}
	evs, err := store.ReadAll(ctx, pos, limit)
	if err != nil || len(evs) == 0 {
		return 0, 0, err
	}
	n = len(evs)
	if c, ok := store.(eventstore.Counter); ok {
		if n, err = c.CountAfter(ctx, pos, maxBehind); err != nil {
			return 0, 0, err
		}
	}
	// the log stamps events with the wall clock, whatever the domain clock
	return n, math.Round(max(time.Since(evs[0].Created).Seconds(), 0)*1000) / 1000, nil
}

// readyz: the store and Redis answer and every projection has caught up
// with the head of the log.
func (a *App) readyz(w http.ResponseWriter, r *http.Request) {
	body, problems := a.readiness(r.Context())
	if len(problems) > 0 {
		body["status"] = "unavailable: " + strings.Join(problems, ", ")
		w.Header().Set("Retry-After", "1")
		api.WriteJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	body["status"] = "ready"
	api.WriteJSON(w, http.StatusOK, body)
}

// readiness is what /readyz answers: its body, and the problems that make
// the service not ready (none: ready).
func (a *App) readiness(ctx context.Context) (map[string]any, []string) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	body := map[string]any{}
	var problems []string
	head, err := a.Store.Head(ctx)
	if err != nil {
		problems = append(problems, "event store unreachable")
	}
	body["head"] = head.String()
	if err := a.Redis.Ping(ctx).Err(); err != nil {
		problems = append(problems, "redis unreachable")
	} else if st, err := a.projectionStatus(ctx, head); err != nil {
		problems = append(problems, "projection status unreadable")
	} else {
		body["projections"] = st
		if !st.caughtUp() {
			problems = append(problems, "projections catching up")
		}
	}
	return body, problems
}
