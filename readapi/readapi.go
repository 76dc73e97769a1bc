// Package readapi serves the query routes of the HTTP contract from the
// Redis read models. It never reads the event store.
package readapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/redis/go-redis/v9"

	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/internal/api"
	"passerelle/internal/auth"
	"passerelle/internal/authz"
	"passerelle/internal/route"
	"passerelle/projections"
)

// API serves the read models.
type API struct {
	rdb redis.UniversalClient
	// MaxWait bounds how long a query waits for min_position.
	MaxWait time.Duration
	// PollEvery is the longest pause between two looks of a query that
	// polls Redis for min_position (default 100 ms): without Progress, or
	// once Progress has passed the position and Redis has not.
	PollEvery time.Duration
	// StreamEvery is how often the stats stream looks for a change.
	StreamEvery time.Duration
	// Heartbeat is the interval of SSE keep-alive comments.
	Heartbeat time.Duration
	// Floor, when set, is the least checkpoint a projection may be read
	// at (see projections.Runner.Floor): below it the read model is being
	// caught up or rebuilt, and reads answer 503 not_ready at once.
	Floor func(projection string) eventstore.Position
	// Progress, when set, is how far a projection has applied as this
	// process knows it, and a channel closed when that changes
	// (projections.Runner.Progress where the runner runs, a
	// projections.Watch elsewhere): a query waiting for min_position asks
	// Redis again only once that has moved past the position, or at its
	// deadline. Waiting reads then cost Redis nothing however many they
	// are, as when the projections stop for a while.
	Progress func(projection string) (eventstore.Position, <-chan struct{})
	// CountLimit is how far an offer search counts its matches when
	// that is further than the end of its page: past it, the total is a
	// lower bound. Each match counted costs candidates read from Redis.
	CountLimit int

	layouts sync.Map // generation prefix → the layout its marker records
	served  sync.Map // projection → the generation prefix last found served
}

// New builds the query API over the read models in rdb.
func New(rdb redis.UniversalClient) *API {
	return &API{rdb: rdb, MaxWait: 5 * time.Second, PollEvery: 100 * time.Millisecond, StreamEvery: 250 * time.Millisecond, Heartbeat: 15 * time.Second,
		CountLimit: DefaultCountLimit}
}

// Routes declares the query routes answered from the read models.
func (a *API) Routes() []route.Route {
	const get = http.MethodGet
	bo := authz.Backoffice
	pupilsOwn := authz.AnyOf(bo, authz.Pupil(authz.Param("id")), authz.Guardian(authz.Param("id")), authz.School(authz.PupilSchool))
	schoolsOwn := authz.AnyOf(bo, authz.School(authz.Param("uai")))
	// offers are public, but which ones a pupil may take is the pupil's
	forPupil := authz.AnyOf(bo, authz.Pupil(authz.Query("for_pupil")), authz.Guardian(authz.Query("for_pupil")),
		authz.School(authz.SchoolOf(authz.Query("for_pupil"))))
	return []route.Route{
		{Method: get, Pattern: "/v1/offers", Status: http.StatusOK, Summary: "Search offers",
			Query:       []string{"grade", "sector", "department", "commune", "week", "near", "radius_km", "available", "q", "for_pupil", "page", "per_page", "min_position"},
			StrictQuery: true, Allow: authz.Public.Unless("for_pupil", forPupil), Handler: a.query(projections.OffersName, a.searchOffers)},
		{Method: get, Pattern: "/v1/offers/{id}", Status: http.StatusOK, Summary: "Get an offer",
			Query: []string{"min_position"}, Allow: authz.Public, Handler: a.query(projections.OffersName, byID[projections.OfferDoc]("offer", projections.OfferDocKey))},
		{Method: get, Pattern: "/v1/stats/offers", Status: http.StatusOK, Summary: "Offer statistics",
			Query: []string{"min_position"}, Allow: authz.Users(auth.Statistician), Handler: a.query(projections.StatsName, a.offerStats)},
		{Method: get, Pattern: "/v1/stats/stream", Status: http.StatusOK, Summary: "Offer statistics as Server-Sent Events",
			Query: []string{"min_position"}, Allow: authz.Users(auth.Statistician), Handler: http.HandlerFunc(a.statsStream)},
		{Method: get, Pattern: "/v1/applications/{id}", Status: http.StatusOK, Summary: "Get an application",
			Query: []string{"min_position"},
			Allow: authz.AnyOf(bo, authz.Pupil(authz.ApplicationPupil), authz.Guardian(authz.ApplicationPupil),
				authz.School(authz.ApplicationSchool), authz.Employer(authz.ApplicationEmployer)),
			Handler: a.query(projections.PlacementsName, a.application)},
		{Method: get, Pattern: "/v1/conventions/{id}", Status: http.StatusOK, Summary: "Get a convention",
			Query: []string{"min_position"},
			Allow: authz.AnyOf(bo, authz.Pupil(authz.ConventionPupil), authz.Guardian(authz.ConventionPupil),
				authz.School(authz.ConventionSchool), authz.Employer(authz.ConventionEmployer)),
			Handler: a.query(projections.PlacementsName, byID[projections.ConventionDoc]("convention", projections.ConventionDocKey))},
		{Method: get, Pattern: "/v1/pupils/{id}/applications", Status: http.StatusOK, Summary: "A pupil's applications",
			Query: []string{"page", "per_page", "min_position"}, Allow: pupilsOwn,
			Handler: a.query(projections.PlacementsName, a.pupilApplications)},
		{Method: get, Pattern: "/v1/employers/{id}/applications", Status: http.StatusOK, Summary: "An employer's inbox",
			Query: []string{"offer_id", "status", "page", "per_page", "min_position"},
			Allow: authz.AnyOf(bo, authz.Employer(authz.Param("id"))), Handler: a.query(projections.PlacementsName, a.employerApplications)},
		{Method: get, Pattern: "/v1/schools/{uai}/dashboard", Status: http.StatusOK, Summary: "A school's dashboard",
			Query: []string{"min_position"}, Allow: schoolsOwn, Handler: a.query(projections.PlacementsName, a.schoolDashboard)},
		{Method: get, Pattern: "/v1/schools/{uai}/pupils", Status: http.StatusOK, Summary: "A school's follow-up of its pupils",
			Query: []string{"class", "grade", "status", "page", "per_page", "min_position"}, StrictQuery: true,
			Allow: schoolsOwn, Handler: a.query(projections.PlacementsName, a.schoolPupils)},
		{Method: get, Pattern: "/v1/schools/{uai}/pupils/{id}", Status: http.StatusOK, Summary: "A teacher's follow-up of one pupil",
			Query: []string{"min_position"}, Allow: schoolsOwn, Handler: a.query(projections.PlacementsName, a.schoolPupil)},
		{Method: get, Pattern: "/v1/pupils/{id}/follow-up", Status: http.StatusOK, Summary: "A pupil's follow-up",
			Query: []string{"min_position"}, Allow: pupilsOwn, Handler: a.query(projections.PlacementsName, a.pupilFollowUp)},
		{Method: get, Pattern: "/v1/stats/placements", Status: http.StatusOK, Summary: "Placement rates",
			Query: []string{"department", "min_position"}, StrictQuery: true,
			Allow: authz.Roles(auth.Backoffice, auth.Statistician, auth.School), Handler: a.query(projections.PlacementsName, a.placementStats)},
	}
}

// model is the served generation of one projection.
type model struct {
	projections.View
	position eventstore.Position
	floor    eventstore.Position // the least position it may be served at
	// held, when not nil, records stillHeld's outcome once a query has
	// read it in the round trip of its last read (see execHeld)
	held *heldCheck
}

// heldCheck is the outcome of stillHeld, read by a query's last read.
type heldCheck struct {
	read bool
	err  error
}

// stillHeld checks, after a read, that the generation still holds what it
// held when resolved: Redis restarted from an older snapshot or flushed
// between the check and the read would otherwise pass an emptied model
// off as current.
func (a *API) stillHeld(ctx context.Context, m model) error {
	if m.floor == eventstore.Start {
		return nil
	}
	pos, err := projections.Checkpoint(ctx, a.rdb, m.Prefix)
	return m.heldAt(pos, err)
}

// heldAt judges stillHeld's checkpoint read, pos or err.
func (m model) heldAt(pos eventstore.Position, err error) error {
	if err != nil {
		return err
	}
	if pos < m.floor {
		return notCurrent(pos, m.floor)
	}
	return nil
}

// notCurrent is the answer of a read model behind its floor.
func notCurrent(pos, floor eventstore.Position) *api.Error {
	e := api.Errorf(http.StatusServiceUnavailable, "not_ready", "the read model is being brought up to date (at %s of %s): try again shortly", pos, floor)
	if floor == projections.Unservable {
		e = api.Errorf(http.StatusServiceUnavailable, "not_ready", "the read model is being rebuilt from the log: try again shortly")
	}
	e.RetryAfter = time.Second
	return e
}

// execHeld runs pipe, which holds a query's last read, with stillHeld's
// read of the checkpoint queued after it, and records its outcome for
// query to use rather than read it again. Errors are pipe's, redis.Nil
// included.
func (m model) execHeld(ctx context.Context, pipe redis.Pipeliner) error {
	if m.held == nil || m.floor == eventstore.Start {
		_, err := pipe.Exec(ctx)
		return err
	}
	cp := pipe.Get(ctx, projections.CheckpointKey(m.Prefix))
	cmds, err := pipe.Exec(ctx)
	if len(cmds) == 0 {
		return err
	}
	if err := cp.Err(); err == nil || errors.Is(err, redis.Nil) {
		pos, err := projections.CheckpointOf(m.Prefix, cp)
		m.held.read, m.held.err = true, m.heldAt(pos, err)
	}
	for _, c := range cmds[:len(cmds)-1] {
		if err := c.Err(); err != nil {
			return err
		}
	}
	return nil
}

type queryFunc func(ctx context.Context, r *http.Request, m model) (any, error)

// rawJSON is an answer a queryFunc has encoded itself, as api.WriteJSON
// would have.
type rawJSON []byte

// query resolves the projection's served generation, waits for
// min_position when asked, and writes the answer.
func (a *API) query(projection string, f queryFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		want, err := api.MinPosition(r)
		if err != nil {
			api.WriteError(w, r, err)
			return
		}
		m, err := a.model(r.Context(), projection, want)
		if err != nil {
			api.WriteError(w, r, unavailable(err))
			return
		}
		m.held = &heldCheck{}
		v, err := f(r.Context(), r, m)
		var e *api.Error
		if err == nil || errors.As(err, &e) && e.Status == http.StatusNotFound {
			// a document missing is an answer from the data too: from a
			// model lost while it was read (Redis flushed), it is not current
			held := m.held.err
			if !m.held.read {
				held = a.stillHeld(r.Context(), m)
			}
			if held != nil {
				err = held
			}
		}
		if err != nil {
			api.WriteError(w, r, unavailable(err))
			return
		}
		if raw, ok := v.(rawJSON); ok {
			api.WriteEncoded(w, http.StatusOK, raw)
			return
		}
		api.WriteJSON(w, http.StatusOK, v)
	}
}

// unavailable turns a failure to reach Redis (refused, reset, timed out,
// closed by the server) into the contract's 503 not_ready: the read models
// are out of reach for a while, which is no fault of the request. Other
// errors pass through.
func unavailable(err error) error {
	var ne net.Error
	if !errors.As(err, &ne) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return err
	}
	slog.Warn("read models unreachable", "err", err)
	e := api.Errorf(http.StatusServiceUnavailable, "not_ready", "the read models cannot be reached right now")
	e.RetryAfter = time.Second
	return e
}

// model resolves the served generation of projection once it has applied
// want, waiting up to MaxWait for it. A read model behind its floor is not
// waited for: it may take a rebuild's time.
func (a *API) model(ctx context.Context, projection string, want eventstore.Position) (model, error) {
	deadline := time.Now().Add(a.MaxWait)
	// a client reading its own write usually waits for one event to be
	// projected, a millisecond or two: the first looks come soon after
	pause := time.Millisecond
	for {
		var floor eventstore.Position
		if a.Floor != nil {
			floor = a.Floor(projection) // before the checkpoint: it only grows
		}
		prefix, pos, err := a.servedAt(ctx, projection)
		if err != nil {
			return model{}, err
		}
		if err := a.readable(ctx, projection, prefix); err != nil {
			return model{}, err
		}
		if pos >= want && pos >= floor {
			return model{View: projections.View{RDB: a.rdb, Prefix: prefix}, position: pos, floor: floor}, nil
		}
		if pos < floor && pos >= want || time.Now().After(deadline) {
			if pos < floor {
				return model{}, notCurrent(pos, floor)
			}
			e := api.Errorf(http.StatusServiceUnavailable, "not_ready", "the read model has not reached position %s yet", want)
			e.RetryAfter = time.Second
			return model{}, e
		}
		if err := a.await(ctx, projection, want, pause, deadline); err != nil {
			return model{}, err
		}
		pause = min(pause*2, a.pollEvery())
	}
}

func (a *API) pollEvery() time.Duration {
	if a.PollEvery <= 0 {
		return 100 * time.Millisecond
	}
	return a.PollEvery
}

// await waits before a query looks again for the position it wants: pause,
// or, when Progress tells that pos is not applied yet, until it is or the
// deadline comes.
func (a *API) await(ctx context.Context, projection string, pos eventstore.Position, pause time.Duration, deadline time.Time) error {
	var advanced <-chan struct{} // nil once applied here: Redis is to tell why it is not served
	if a.Progress != nil {
		var applied eventstore.Position
		if applied, advanced = a.Progress(projection); applied < pos {
			pause = max(time.Until(deadline), 0)
		} else {
			advanced = nil
		}
	}
	timer := time.NewTimer(pause)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return nil
		case <-advanced:
			var applied eventstore.Position
			if applied, advanced = a.Progress(projection); applied >= pos {
				return nil
			}
		}
	}
}

// servedAt is the prefix of the generation of projection served and the
// position it has applied, read in that order. It reads both in one round
// trip when the generation is the one it found last time, the checkpoint
// of that one read after which generation is served.
func (a *API) servedAt(ctx context.Context, projection string) (string, eventstore.Position, error) {
	if last, ok := a.served.Load(projection); ok {
		pipe := a.rdb.Pipeline()
		gen := pipe.Get(ctx, projections.ActiveKey(projection))
		cp := pipe.Get(ctx, projections.CheckpointKey(last.(string)))
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return "", 0, err
		}
		if gen.Err() == nil && projections.GenPrefix(projection, gen.Val()) == last {
			pos, err := projections.CheckpointOf(last.(string), cp)
			return last.(string), pos, err
		}
	}
	prefix, err := projections.ActivePrefix(ctx, a.rdb, projection)
	if err != nil {
		return "", 0, err
	}
	if prefix != "" {
		a.served.Store(projection, prefix)
	}
	pos, err := projections.Checkpoint(ctx, a.rdb, prefix)
	return prefix, pos, err
}

// readable refuses a generation written in another layout than this
// build reads: during a rolling upgrade the projector of one version
// serves its own layout, and an instance of the other answers 503 until
// its own is served, rather than misreading documents. A generation's
// layout never changes, so it is looked up once.
func (a *API) readable(ctx context.Context, projection, prefix string) error {
	if prefix == "" {
		return nil
	}
	layout, ok := a.layouts.Load(prefix)
	if !ok {
		l, err := projections.MarkerLayout(ctx, a.rdb, prefix)
		if err != nil || l == 0 {
			return err // without a marker the runner rebuilds it: not for the reader to judge
		}
		layout, _ = a.layouts.LoadOrStore(prefix, l)
	}
	if own := projections.LayoutOf(projection); layout.(int) != own {
		e := api.Errorf(http.StatusServiceUnavailable, "not_ready",
			"the %s read model is served by another version of Passerelle (layout %d, this one reads %d): try again shortly", projection, layout, own)
		e.RetryAfter = time.Second
		return e
	}
	return nil
}

func notFound(what string) error {
	return api.Errorf(http.StatusNotFound, "not_found", "%s not found", what)
}

// getDoc reads one JSON document of a read model into v.
func getDoc(ctx context.Context, m model, key, what string, v any) error {
	if m.Prefix == "" {
		return notFound(what)
	}
	b, err := m.RDB.Get(ctx, m.Key(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return notFound(what)
	}
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// byID serves one document of a read model, what it is named in errors,
// by the id in the path.
func byID[T any](what string, key func(string) string) queryFunc {
	return func(ctx context.Context, r *http.Request, m model) (any, error) {
		id := chi.URLParam(r, "id")
		if !domain.ValidID(id) {
			return nil, notFound(what)
		}
		if m.Prefix == "" {
			return nil, notFound(what)
		}
		pipe := m.RDB.Pipeline()
		get := pipe.Get(ctx, m.Key(key(id)))
		err := m.execHeld(ctx, pipe)
		if errors.Is(err, redis.Nil) {
			return nil, notFound(what)
		}
		if err != nil {
			return nil, err
		}
		var d T
		if err := json.Unmarshal([]byte(get.Val()), &d); err != nil {
			return nil, err
		}
		return d, nil
	}
}

type page struct {
	Items    any    `json:"items"`
	Total    int    `json:"total"`
	Page     int    `json:"page"`
	PerPage  int    `json:"per_page"`
	Position string `json:"position"`
}

func pagination(q map[string][]string) (int, int, error) {
	get := func(k string, def, lo, hi int) (int, error) {
		v := ""
		if len(q[k]) > 0 {
			v = q[k][0]
		}
		if v == "" {
			return def, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return 0, api.Invalid(k, fmt.Sprintf("must be an integer between %d and %d", lo, hi))
		}
		return n, nil
	}
	p, err := get("page", 1, 1, 1_000_000)
	if err != nil {
		return 0, 0, err
	}
	pp, err := get("per_page", 20, 1, 100)
	return p, pp, err
}

// pageOf is page pg of items, perPage a page.
func pageOf[T any](items []T, pg, perPage int) []T {
	lo := min((pg-1)*perPage, len(items))
	hi := min(lo+perPage, len(items))
	return items[lo:hi]
}

// offerFilter is the query of an offer search, validated.
type offerFilter struct {
	page, perPage int
	// indexes are the index sets every offer found is in; the first is
	// the open offers.
	indexes []string
	// geo are the geo sets of the indexes that have one, by index.
	geo      map[string]string
	near     *[2]float64 // lat, lon; nil: anywhere
	radius   float64     // km around near
	forPupil string      // only the offers this pupil may apply to
	// anyOf are groups of index sets: an offer found is in one set of
	// each (a partner search for several weeks, sectors or grades).
	anyOf [][]string
}

// parseOfferFilter validates the parameters of an offer search, in the
// order their errors are reported.
func parseOfferFilter(q url.Values) (offerFilter, error) {
	var f offerFilter
	var err error
	if f.page, f.perPage, err = pagination(q); err != nil {
		return f, err
	}
	if f.indexes, f.geo, err = offerIndexes(q); err != nil {
		return f, err
	}
	if f.near, f.radius, err = geoParams(q.Get("near"), q.Get("radius_km")); err != nil {
		return f, err
	}
	words, err := searchWords(q.Get("q"))
	if err != nil {
		return f, err
	}
	for _, w := range words {
		f.indexes = append(f.indexes, projections.OfferIndex("word", w))
	}
	f.forPupil = q.Get("for_pupil")
	return f, nil
}

// offerIndexes are the index sets of the open offers and of the grade,
// place, week and availability asked for, and the geo sets of those that
// have one.
func offerIndexes(q url.Values) ([]string, map[string]string, error) {
	indexes, geo := []string{projections.OfferIndexOpen()}, map[string]string{}
	index := func(kind, v string) {
		indexes = append(indexes, projections.OfferIndex(kind, v))
		if projections.GeoIndexed(kind) {
			geo[projections.OfferIndex(kind, v)] = projections.OfferGeoIndex(kind, v)
		}
	}
	if g := q.Get("grade"); g != "" {
		if !domain.Grade(g).Valid() {
			return nil, nil, api.Invalid("grade", "must be one of 4e, 3e, 2de")
		}
		index("grade", g)
	}
	for _, kind := range []string{"sector", "department", "commune"} {
		if v := q.Get(kind); v != "" {
			if len(v) > 10 {
				return nil, nil, api.Invalid(kind, "is too long")
			}
			index(kind, v)
		}
	}
	week := q.Get("week")
	if week != "" {
		if _, err := domain.ParseWeek(week); err != nil {
			return nil, nil, api.Invalid("week", err.Error())
		}
		indexes = append(indexes, projections.OfferIndex("week", week))
	}
	switch q.Get("available") {
	case "", "false":
	case "true":
		if week != "" {
			indexes = append(indexes, projections.OfferIndex("available", week))
		} else {
			indexes = append(indexes, projections.OfferIndexAvailable())
		}
	default:
		return nil, nil, api.Invalid("available", "must be true or false")
	}
	return indexes, geo, nil
}

// searchWords are the words of the full-text query q (none when empty).
func searchWords(text string) ([]string, error) {
	if text == "" {
		return nil, nil
	}
	words := projections.Words(text)
	switch {
	case len(text) > 200:
		return nil, api.Invalid("q", "must be at most 200 bytes")
	case len(words) == 0:
		return nil, api.Invalid("q", "must contain a word of two letters or more besides common ones (de, la, pour…)")
	case len(words) > 10:
		return nil, api.Invalid("q", "at most 10 words")
	}
	return words, nil
}

// geoParams reads near=lat,lon and radius_km (10 by default): no point
// when near is not given.
func geoParams(near, radius string) (*[2]float64, float64, error) {
	if near == "" {
		if radius != "" {
			return nil, 0, api.Invalid("radius_km", "needs near=lat,lon")
		}
		return nil, 0, nil
	}
	point, err := parseNear(near)
	if err != nil {
		return nil, 0, err
	}
	r := 10.0
	if radius != "" {
		v, err := strconv.ParseFloat(radius, 64)
		if err != nil || v <= 0 || v > 1000 || math.IsNaN(v) {
			return nil, 0, api.Invalid("radius_km", "must be a number of kilometres between 0 and 1000")
		}
		r = v
	}
	return point, r, nil
}

// parseNear reads lat,lon in degrees.
func parseNear(near string) (*[2]float64, error) {
	parts := strings.Split(near, ",")
	if len(parts) != 2 {
		return nil, api.Invalid("near", "must be lat,lon")
	}
	lat, err1 := strconv.ParseFloat(parts[0], 64)
	lon, err2 := strconv.ParseFloat(parts[1], 64)
	if err1 != nil || err2 != nil || math.IsNaN(lat) || math.IsNaN(lon) || lat < -85 || lat > 85 || lon < -180 || lon > 180 {
		return nil, api.Invalid("near", "must be lat,lon in degrees")
	}
	return &[2]float64{lat, lon}, nil
}

func toAny(xs []string) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}
