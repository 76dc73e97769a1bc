package readapi

import (
	"cmp"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/internal/api"
	"passerelle/projections"
)

// Offer search answers a page without reading every matching offer: it
// walks candidates in the order pages list them (nearest first around a
// point, by id otherwise), keeps those in every index set asked for, and
// stops once the page is full and the count has reached CountLimit. A
// small index set is read whole instead where walking would read more
// offers than it holds (a rare word, around a point where no offer has
// it, made a walk read every offer in the radius).

// DefaultCountLimit is how far a search counts its matches by default:
// just past its page, enough to tell whether another page follows.
const DefaultCountLimit = 0

// smallSet is the size under which an index set without a place is read
// whole (intersected in Redis, sorted here) rather than walked.
var smallSet int64 = 2000 // a variable: tests lower it, to walk small worlds

// maxBatch bounds the candidates one round trip reads.
const maxBatch = 4096

// candidate is an offer a search may list, and its distance in km as
// Redis reports it (4 decimals) when searching around a point.
type candidate struct {
	id   string
	dist float64
}

// candidates yields the offers a search may list, in the order pages list
// them, a batch at a time.
type candidates interface {
	// next returns about n more candidates (fewer or more: at least one
	// unless done), and whether none follow them.
	next(ctx context.Context, n int) (batch []candidate, done bool, err error)
}

// offerSearch is the plan of one search: where its candidates come from
// and what they must pass.
type offerSearch struct {
	m    model
	from candidates
	// in are the index sets a candidate must be in besides those from
	// guarantees; anyOf are groups of sets, the candidate must be in one
	// set of each group (the reservation sets, the weeks of a partner
	// search; none: no condition).
	in    []string
	anyOf [][]string
	// total is the exact number of matches when known up front, else -1.
	total int
	// share is the share of the candidates expected to match, at most,
	// when known up front (0: unknown): how many the first batch asks for
	share float64
}

func (a *API) searchOffers(ctx context.Context, r *http.Request, m model) (any, error) {
	f, err := parseOfferFilter(api.Query(r))
	if err != nil {
		return nil, err
	}
	eligible, err := a.eligibleSets(ctx, m, f.forPupil)
	if err != nil {
		return nil, err
	}
	res, err := a.search(ctx, m, f, eligible, a.CountLimit)
	if err != nil {
		return nil, err
	}
	raw, err := offerDocs(ctx, m, res.found)
	if err != nil {
		return nil, err
	}
	return appendOfferPage(nil, res, raw, f.near != nil)
}

// searchResult is what a search found: the offers of its page, how many
// match (exactly when exact, else at least that many) and where.
type searchResult struct {
	found         []candidate
	total         int
	exact         bool
	page, perPage int
	position      string
}

// search finds the page of the offers f asks for, counting the matches
// up to countLimit when that is further than the end of the page.
func (a *API) search(ctx context.Context, m model, f offerFilter, eligible []string, countLimit int) (searchResult, error) {
	out := searchResult{exact: true, page: f.page, perPage: f.perPage, position: m.position.String()}
	if m.Prefix == "" {
		return out, nil
	}
	start, end := (f.page-1)*f.perPage, f.page*f.perPage
	s, err := planSearch(ctx, m, f, eligible, max(end, countLimit)+1)
	if err != nil {
		return out, err
	}
	limit := end
	if s.total < 0 {
		limit = max(end, countLimit)
	}
	n, more := 0, false
	if s.total < 0 || start < s.total {
		if out.found, n, more, err = s.collect(ctx, start, end, limit); err != nil {
			return out, err
		}
	}
	switch {
	case s.total >= 0:
		out.total = s.total
	case more:
		out.total, out.exact = n, false
	default:
		out.total = n
	}
	return out, nil
}

// offerDocs reads the stored documents of the offers found, as strings,
// nil for one no longer there.
func offerDocs(ctx context.Context, m model, found []candidate) ([]any, error) {
	if len(found) == 0 {
		return nil, nil
	}
	keys := make([]string, len(found))
	for i, c := range found {
		keys[i] = m.Key(projections.OfferDocKey(c.id))
	}
	pipe := m.RDB.Pipeline()
	mget := pipe.MGet(ctx, keys...)
	if err := m.execHeld(ctx, pipe); err != nil {
		return nil, err
	}
	return mget.Val(), nil
}

// offerDocSchema is how an offer's document is written, distanceField
// the index of its distance, which a search around a point adds, and
// knownOffers the offers' documents that passed through as stored (about
// 1 KB each).
var (
	offerDocSchema = schemaOf(reflect.TypeFor[projections.OfferDoc]())
	distanceField  = offerDocSchema.field("distance_km", 0)
	knownOffers    = newKnownDocs(offerDocSchema, distanceField, 16384)
)

// appendOfferPage appends to dst the page of a search as WriteJSON would
// write it, its offers' documents raw[i] (those missing left out) passed
// through with their distance in km, rounded, when searching around a
// point.
func appendOfferPage(dst []byte, res searchResult, raw []any, near bool) (rawJSON, error) {
	size := 160
	for _, v := range raw {
		r, _ := v.(string)
		size += len(r) + 24
	}
	b := slices.Grow(dst, size)
	b = append(b, `{"items":[`...)
	first := true
	var dist [24]byte
	for i, v := range raw {
		r, ok := v.(string)
		if !ok {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		var extra []byte
		d := math.Round(res.found[i].dist*100) / 100
		if near {
			extra = appendFloat(dist[:0], d)
		}
		if b, ok = knownOffers.appendDoc(b, r, extra); ok {
			continue
		}
		var err error
		if b, err = appendDecoded(b, r, res.found[i].id, d, near); err != nil {
			return nil, err
		}
	}
	b = append(b, `],"total":`...)
	b = strconv.AppendInt(b, int64(res.total), 10)
	b = append(b, `,"total_exact":`...)
	b = strconv.AppendBool(b, res.exact)
	b = append(b, `,"page":`...)
	b = strconv.AppendInt(b, int64(res.page), 10)
	b = append(b, `,"per_page":`...)
	b = strconv.AppendInt(b, int64(res.perPage), 10)
	b = append(b, `,"position":`...)
	b = appendString(b, res.position)
	return append(b, "}\n"...), nil
}

// appendDecoded appends an offer's document decoded and encoded again, as
// a search answered before it passed documents through: for those whose
// stored form encoding would change.
func appendDecoded(b []byte, raw, id string, dist float64, near bool) ([]byte, error) {
	var d projections.OfferDoc
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		return nil, err
	}
	if near && d.ID == id {
		d.DistanceKM = &dist
	}
	return projections.AppendJSON(b, d)
}

// appendString appends s as a JSON string, as WriteJSON writes it.
func appendString(b []byte, s string) []byte {
	if isPlainKey(s) {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	out, _ := projections.AppendJSON(b, s) // a string always encodes
	return out
}

// offerItems reads the documents of the offers found, with their distance
// in km, rounded, when searching around a point.
func offerItems(ctx context.Context, m model, found []candidate, near bool) ([]projections.OfferDoc, error) {
	ids := make([]string, len(found))
	dist := make(map[string]float64, len(found))
	for i, c := range found {
		ids[i], dist[c.id] = c.id, math.Round(c.dist*100)/100
	}
	items, err := getDocs[projections.OfferDoc](ctx, m, ids, projections.OfferDocKey)
	if err != nil || items == nil {
		return []projections.OfferDoc{}, err
	}
	for i := range items {
		if d, ok := dist[items[i].ID]; ok && near {
			items[i].DistanceKM = &d
		}
	}
	return items, nil
}

// planSearch picks the candidates of a search that wants up to want
// matches. Every index set holds open offers only, so the set of the open
// offers (f.indexes[0]) is needed only when nothing else is asked.
func planSearch(ctx context.Context, m model, f offerFilter, eligible []string, want int) (*offerSearch, error) {
	s := &offerSearch{m: m, anyOf: f.anyOf, total: -1}
	if eligible != nil {
		s.anyOf = append(s.anyOf, eligible)
	}
	rel := f.indexes[1:]
	if f.near != nil && len(f.geo) <= 1 {
		return planNear(m, f, rel, s, want), nil
	}
	sizes, err := cardinalities(ctx, m, f.indexes)
	if err != nil {
		return nil, err
	}
	open := sizes[0]
	sizes = sizes[1:]
	// smallest first: the driver, then the membership checks
	order := make([]int, len(rel))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(x, y int) int { return cmp.Compare(sizes[x], sizes[y]) })
	if len(order) > 0 && sizes[order[0]] == 0 {
		s.from, s.total = &listed{}, 0 // an empty index: nothing matches
		return s, nil
	}
	keys := make([]string, len(order))
	for i, j := range order {
		keys[i] = m.Key(rel[j])
	}
	if f.near != nil {
		s.planNearSized(f, rel, sizes, order, keys, open, want)
		return s, nil
	}
	smallest := int64(0)
	if len(order) > 0 {
		smallest = sizes[order[0]]
	}
	return s, s.planByID(ctx, open, keys, smallest)
}

// planNearSized plans a search around a point with several indexes that
// have a geo set, whose sizes are known (rel's, of the open offers open;
// keys are rel's in order, smallest first): it walks the smallest's geo
// set, or reads the smallest set whole (see readWhole).
func (s *offerSearch) planNearSized(f offerFilter, rel []string, sizes []int64, order []int, keys []string, open int64, want int) {
	m := s.m
	walk := m.Key(projections.OfferGeo())
	for i, j := range order {
		if g, ok := f.geo[rel[j]]; ok {
			walk = m.Key(g)
			keys = slices.Delete(keys, i, i+1)
			break
		}
	}
	s.in = keys
	whole := &nearIn{rdb: m.RDB, tmp: m.Key(nearInKey), geo: walk, sets: keys, near: *f.near, radius: f.radius}
	if len(keys) > 0 && readWhole(sizes[order[0]], open, want) {
		s.from = whole
		return
	}
	g := newRings(m.RDB, walk, *f.near, f.radius)
	if len(keys) > 0 {
		g.whole, g.sizes = whole, map[string]int64{}
		for _, j := range order {
			g.sizes[m.Key(rel[j])] = sizes[j]
		}
	}
	s.from = g
}

// planNear plans a search around a point with at most one index that has
// a geo set (projections.GeoIndexed): it walks that geo set, else all
// open offers', whatever the sizes of the others, so that they are read
// in the walk's first round trip (an empty one: nothing matches; a small
// one may be read whole instead, see rings.whole).
func planNear(m model, f offerFilter, rel []string, s *offerSearch, want int) *offerSearch {
	walk := m.Key(projections.OfferGeo())
	keys := make([]string, 0, len(rel))
	for _, set := range rel {
		if g, ok := f.geo[set]; ok {
			walk = m.Key(g)
		} else {
			keys = append(keys, m.Key(set))
		}
	}
	g := newRings(m.RDB, walk, *f.near, f.radius)
	g.empty = make([]string, len(rel))
	for i, set := range rel {
		g.empty[i] = m.Key(set)
	}
	if len(keys) > 0 {
		g.whole = &nearIn{rdb: m.RDB, tmp: m.Key(nearInKey), geo: walk, sets: keys, near: *f.near, radius: f.radius}
		g.open, g.want = m.Key(f.indexes[0]), want
		g.empty = append(g.empty, g.open)
	}
	s.from, s.in = g, keys
	return s
}

// readWhole reports whether a search around a point that wants want
// matches had better read the offers of its smallest index set without a
// geo set (of size smallest, of the open offers) within the radius than
// walk outwards: when the walk would read more offers than the set holds
// if the set's offers were spread as all are. A walk stops once it has
// the page, so a large set costs it little, but a rare word searched
// where no offer has it made it read every offer in the radius (16 to 24
// ms at national density, 20 km around Paris).
func readWhole(smallest, open int64, want int) bool {
	return smallest <= smallSet && smallest*smallest < int64(want)*open
}

// nearInKey is where nearIn intersects, within one transaction.
const nearInKey = "near-in"

// nearIn lists the offers of a geo set within a radius of a point that
// are in every one of sets, nearest first: Redis intersects them into a
// key of its own, searches it and deletes it in one transaction, so that
// the distances are Redis's own, as a walk's are, and the work is the
// smallest set's.
type nearIn struct {
	rdb    redis.UniversalClient
	tmp    string
	geo    string
	sets   []string
	near   [2]float64 // lat, lon
	radius float64    // km
	// after, when set, is the last offer a walk handed out before it read
	// the sets whole: only those after it are listed
	after *candidate
}

func (n *nearIn) next(ctx context.Context, _ int) ([]candidate, bool, error) {
	weights := make([]float64, 1+len(n.sets))
	weights[0] = 1 // the sets' members score 1, weighted 0: the point's score stays
	pipe := n.rdb.TxPipeline()
	pipe.ZInterStore(ctx, n.tmp, &redis.ZStore{Keys: append([]string{n.geo}, n.sets...), Weights: weights})
	search := pipe.GeoSearchLocation(ctx, n.tmp, &redis.GeoSearchLocationQuery{
		GeoSearchQuery: redis.GeoSearchQuery{Longitude: n.near[1], Latitude: n.near[0], Radius: n.radius, RadiusUnit: "km"},
		WithDist:       true,
	})
	pipe.Del(ctx, n.tmp)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, true, err
	}
	all := make([]candidate, len(search.Val()))
	for i, x := range search.Val() {
		all[i] = candidate{id: x.Name, dist: x.Dist}
	}
	slices.SortFunc(all, byDistance)
	if n.after != nil {
		i, _ := slices.BinarySearchFunc(all, *n.after, byDistance)
		for i < len(all) && byDistance(all[i], *n.after) <= 0 {
			i++
		}
		all = all[i:]
	}
	return all, true, nil
}

// byDistance orders candidates nearest first, those at the same place by
// id, so that pages never overlap.
func byDistance(x, y candidate) int {
	return cmp.Or(cmp.Compare(x.dist, y.dist), strings.Compare(x.id, y.id))
}

// planByID plans a search without a place, in id order, over the index
// sets keys, smallest first, the first of size smallest (none: all the
// open offers, of which there are open).
func (s *offerSearch) planByID(ctx context.Context, open int64, keys []string, smallest int64) error {
	walk := &inIDOrder{rdb: s.m.RDB, key: s.m.Key(projections.OfferIDs())}
	switch {
	case len(keys) == 0:
		s.from = walk
		if len(s.anyOf) == 0 {
			s.total = int(open)
		}
	case smallest <= smallSet:
		ids, err := s.m.RDB.SInter(ctx, keys...).Result()
		if err != nil {
			return err
		}
		slices.Sort(ids)
		s.from = &listed{ids: ids}
		if len(s.anyOf) == 0 {
			s.total = len(ids)
		}
	default:
		walk.whole, walk.smallest = keys, smallest
		s.from, s.in = walk, keys
		if len(s.anyOf) == 0 && len(keys) == 1 {
			s.total = int(smallest)
		}
		if open > 0 {
			s.share = float64(smallest) / float64(open)
		}
	}
	return nil
}

// cardinalities are the sizes of the index sets, in one round trip.
func cardinalities(ctx context.Context, m model, sets []string) ([]int64, error) {
	if len(sets) == 0 {
		return nil, nil
	}
	pipe := m.RDB.Pipeline()
	cmds := make([]*redis.IntCmd, len(sets))
	for i, set := range sets {
		cmds[i] = pipe.SCard(ctx, m.Key(set))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	out := make([]int64, len(sets))
	for i, c := range cmds {
		out[i] = c.Val()
	}
	return out, nil
}

// collect walks the matches in order and returns those of positions
// [start, end), how many it counted, and whether more than limit match
// (it stops counting at limit+1).
func (s *offerSearch) collect(ctx context.Context, start, end, limit int) ([]candidate, int, bool, error) {
	var page []candidate
	n, checked := 0, 0
	for {
		// as many candidates as the matches still wanted need, judging by
		// the share of candidates that matched so far
		ask := min((limit+1-n)*(checked+2)/(n+1), maxBatch)
		if checked == 0 && s.share > 0 {
			// by the share of the candidates the smallest index holds,
			// with a margin
			ask = min(int(math.Ceil(float64(limit+1)/s.share*1.25)), maxBatch)
		}
		if len(s.in)+len(s.anyOf) == 0 {
			ask = limit + 1 - n
		}
		batch, done, err := s.from.next(ctx, ask)
		if err != nil {
			return nil, 0, false, err
		}
		checked += len(batch)
		if batch, err = s.keep(ctx, batch); err != nil {
			return nil, 0, false, err
		}
		for _, c := range batch {
			if n >= start && n < end {
				page = append(page, c)
			}
			n++
			if n > limit {
				return page, n, true, nil
			}
		}
		if done {
			return page, n, false, nil
		}
	}
}

// keep returns the candidates in every set of s.in and in one set of each
// group of s.anyOf,
// checked in one round trip.
func (s *offerSearch) keep(ctx context.Context, batch []candidate) ([]candidate, error) {
	if len(batch) == 0 || len(s.in)+len(s.anyOf) == 0 {
		return batch, nil
	}

	ids := make([]any, len(batch))
	for i, c := range batch {
		ids[i] = c.id
	}
	pipe := s.m.RDB.Pipeline()
	in := make([]*redis.BoolSliceCmd, len(s.in))
	for i, set := range s.in {
		in[i] = pipe.SMIsMember(ctx, set, ids...)
	}
	anyOf := make([][]*redis.BoolSliceCmd, len(s.anyOf))
	for i, group := range s.anyOf {
		for _, set := range group {
			anyOf[i] = append(anyOf[i], pipe.SMIsMember(ctx, set, ids...))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	kept := batch[:0]
	for i, c := range batch {
		if inAll(in, i) && inEachGroup(anyOf, i) {
			kept = append(kept, c)
		}
	}
	return kept, nil
}

// inAll reports whether candidate i is in every set checked.
func inAll(sets []*redis.BoolSliceCmd, i int) bool {
	for _, r := range sets {
		if !r.Val()[i] {
			return false
		}
	}
	return true
}

// inEachGroup reports whether candidate i is in a set of each group.
func inEachGroup(groups [][]*redis.BoolSliceCmd, i int) bool {
	for _, group := range groups {
		in := false
		for _, r := range group {
			in = in || r.Val()[i]
		}
		if !in {
			return false
		}
	}
	return true
}

// listed are candidates already read whole.
type listed struct{ ids []string }

func (l *listed) next(context.Context, int) ([]candidate, bool, error) {
	out := make([]candidate, len(l.ids))
	for i, id := range l.ids {
		out[i] = candidate{id: id}
	}
	l.ids = nil
	return out, true, nil
}

// inIDOrder walks a sorted set of equal scores in id order, in growing chunks.
type inIDOrder struct {
	rdb   redis.UniversalClient
	key   string
	after string // the last id read; "" before the first
	chunk int
	// whole, when set, are index sets the walk's candidates must all be
	// in, the smallest of size smallest: once the walk asks for more
	// candidates than that (the matches so far were that rare), it ends
	// with their intersection after the last id read. Sets too large to
	// read whole at first, whose intersection is small, made it read
	// every open offer (4.1 to 4.9 ms for a word 2,400 offers hold and a
	// week, at national density).
	whole    []string
	smallest int64
}

func (b *inIDOrder) next(ctx context.Context, n int) ([]candidate, bool, error) {
	if b.after != "" && b.whole != nil && int64(n) > b.smallest {
		ids, err := b.rdb.SInter(ctx, b.whole...).Result()
		if err != nil {
			return nil, true, err
		}
		slices.Sort(ids)
		i, read := slices.BinarySearch(ids, b.after)
		if read {
			i++
		}
		ids = ids[i:]
		out := make([]candidate, len(ids))
		for i, id := range ids {
			out[i] = candidate{id: id}
		}
		return out, true, nil
	}
	b.chunk = min(max(2*b.chunk, n, 64), maxBatch)
	lo := "-"
	if b.after != "" {
		lo = "(" + b.after
	}
	ids, err := b.rdb.ZRangeByLex(ctx, b.key, &redis.ZRangeBy{Min: lo, Max: "+", Count: int64(b.chunk)}).Result()
	if err != nil {
		return nil, false, err
	}
	out := make([]candidate, len(ids))
	for i, id := range ids {
		out[i] = candidate{id: id}
	}
	if len(ids) > 0 {
		b.after = ids[len(ids)-1]
	}
	return out, len(ids) < b.chunk, nil
}

// rings walks a geo set outwards from a point. It searches a radius that
// grows with what it still needs (Redis's work is the members around the
// radius, so the radius is kept as small as the page allows), and hands
// out only the members it has seen all of up to their distance, so that
// their order is final. The last search is of the full radius, as asked.
type rings struct {
	rdb    redis.UniversalClient
	key    string
	near   [2]float64 // lat, lon
	radius float64    // km, as asked
	r      float64    // km searched next, in whole metres
	// of the last search: members found (-1: none yet), whether COUNT
	// cut them short, whether it handed out none
	found            int
	truncated, stuck bool
	returned         int // members handed out: the nearest ones
	done             bool
	// empty are sets whose sizes are read with the first search: when
	// one is empty, nothing matches and the walk ends there
	empty []string
	// whole, when set, reads the offers of the sets without a geo set
	// within the radius at once, instead of walking on (see readsWhole;
	// open is the open offers' set, want the matches the search wants,
	// sizes the sets' sizes), after last, the last member handed out
	whole *nearIn
	open  string
	want  int
	sizes map[string]int64
	last  candidate
}

// firstRing is the radius first searched, in km, for up to firstRingHolds
// members: about that many offers in the densest city, none in the
// countryside, from where it grows fast. A first search for more members
// searches a radius that holds them in the densest city.
const (
	firstRing      = 1.0
	firstRingHolds = 50
)

func newRings(rdb redis.UniversalClient, key string, near [2]float64, radius float64) *rings {
	return &rings{rdb: rdb, key: key, near: near, radius: radius, r: min(firstRing, radius), found: -1}
}

func (g *rings) next(ctx context.Context, n int) ([]candidate, bool, error) {
	n = max(n, 16)
	if g.found >= 0 && !g.done && g.whole != nil && int64(n) > g.smallest() {
		return g.endWhole(ctx, n)
	}
	for !g.done {
		count := g.returned + min(2*n, maxBatch)
		g.aim(n, count)
		first := g.found < 0
		all, err := g.search(ctx, count)
		if err != nil || g.done {
			return nil, true, err
		}
		if first && g.readsWhole(len(all) >= count) {
			return g.endWhole(ctx, n)
		}
		slices.SortFunc(all, byDistance)
		g.found, g.truncated = len(all), len(all) >= count
		final := len(all)
		switch {
		case g.truncated:
			// members at the distance of the last one may have been left out
			final = cutAt(all, all[len(all)-1].dist)
		case g.r < g.radius:
			// members beyond the radius are at a greater distance
			final = cutAt(all, g.r)
		}
		g.done = !g.truncated && g.r >= g.radius
		g.stuck = final <= g.returned
		if !g.stuck {
			out := all[g.returned:final]
			g.returned, g.last = final, all[final-1]
			return out, g.done, nil
		}
		if g.truncated { // many members at one distance: read past them
			n *= 2
		}
	}
	return nil, true, nil
}

// search reads the count members of the geo set nearest the point within
// g.r, and the sizes of g.empty the first time, in the same round trip:
// when one is empty, it ends the walk.
func (g *rings) search(ctx context.Context, count int) ([]candidate, error) {
	q := &redis.GeoSearchLocationQuery{
		GeoSearchQuery: redis.GeoSearchQuery{Longitude: g.near[1], Latitude: g.near[0], Radius: g.r, RadiusUnit: "km", Sort: "ASC", Count: count},
		WithDist:       true,
	}
	var found []redis.GeoLocation
	if len(g.empty) == 0 {
		var err error
		if found, err = g.rdb.GeoSearchLocation(ctx, g.key, q).Result(); err != nil {
			return nil, err
		}
	} else {
		pipe := g.rdb.Pipeline()
		sizes := make([]*redis.IntCmd, len(g.empty))
		for i, set := range g.empty {
			sizes[i] = pipe.SCard(ctx, set)
		}
		search := pipe.GeoSearchLocation(ctx, g.key, q)
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, err
		}
		g.sizes = map[string]int64{}
		for i, n := range sizes {
			g.sizes[g.empty[i]] = n.Val()
			if n.Val() == 0 {
				g.done = true // an empty index: nothing matches
				return nil, nil
			}
		}
		g.empty = nil
		found = search.Val()
	}
	all := make([]candidate, len(found))
	for i, x := range found {
		all[i] = candidate{id: x.Name, dist: x.Dist}
	}
	return all, nil
}

// aim sets the radius of the next search, which reads up to count members
// for n more candidates: the first one's holds about count members in the
// densest city, a later one's about what the last one found grown to n
// more, unless it was cut short by count.
func (g *rings) aim(n, count int) {
	switch {
	case g.found < 0:
		if count > firstRingHolds {
			g.r = min(math.Ceil(firstRing*math.Sqrt(float64(count)/firstRingHolds)*1000)/1000, g.radius)
		}
	case !g.truncated && (g.found < g.returned+n || g.stuck):
		g.widen(g.returned + n)
	}
}

// readsWhole reports whether the walk's first search, which read the
// sizes of the sets (and was truncated by its count, or searched less
// than the radius), should read the offers of the sets without a geo set
// whole instead of walking on (see readWhole).
func (g *rings) readsWhole(truncated bool) bool {
	if g.whole == nil || !truncated && g.r >= g.radius {
		return false // nothing to read whole, or the walk already ends
	}
	return readWhole(g.smallest(), g.sizes[g.open], g.want)
}

// smallest is the size of the smallest set without a geo set.
func (g *rings) smallest() int64 {
	smallest := int64(math.MaxInt64)
	for _, set := range g.whole.sets {
		smallest = min(smallest, g.sizes[set])
	}
	return smallest
}

// endWhole ends the walk with the offers of the sets without a geo set
// after the last one handed out. A later call of next does when it asks
// more candidates than the smallest set holds (the matches so far were
// that rare): a word many offers hold far from the point made the walk
// read ring after ring, up to every offer in the radius (15 to 22 ms for
// 2,400 offers in Gironde, searched 20 km around Paris).
func (g *rings) endWhole(ctx context.Context, n int) ([]candidate, bool, error) {
	g.done = true
	if g.returned > 0 {
		g.whole.after = &g.last
	}
	return g.whole.next(ctx, n)
}

// cutAt is the number of candidates nearer than d.
func cutAt(all []candidate, d float64) int {
	i, _ := slices.BinarySearchFunc(all, d, func(c candidate, d float64) int {
		if c.dist < d {
			return -1
		}
		return 1
	})
	return i
}

// widen grows the radius so that it holds about want members, judging by
// the last search (the number of members grows as the square of the
// radius where the density is even).
func (g *rings) widen(want int) {
	f := 4.0
	if g.found > 0 {
		f = min(max(1.15*math.Sqrt(float64(want)/float64(g.found)), 1.3), 4)
	}
	// whole metres: a distance Redis reports (to 0.1 m) below the radius
	// is then surely within it
	g.r = min(math.Ceil(g.r*f*1000)/1000, g.radius)
}

// eligibleSets are the reservation sets one of which an offer must be in
// for the pupil to apply to it (nil: no pupil given): unreserved offers,
// REP offers for pupils of REP/REP+ collèges, QPV offers for pupils of
// lycées near a QPV, and offers reserved for the pupil's own school.
func (a *API) eligibleSets(ctx context.Context, m model, pupilID string) ([]string, error) {
	if pupilID == "" {
		return nil, nil
	}
	if !domain.ValidID(pupilID) {
		return nil, api.Invalid("for_pupil", "must be a pupil id")
	}
	pm, err := a.model(ctx, projections.PlacementsName, eventstore.Start)
	if err != nil {
		return nil, err
	}
	var pupil projections.PupilInfo
	if err := getDoc(ctx, pm, projections.PupilInfoKey(pupilID), "pupil", &pupil); err != nil {
		return nil, api.Invalid("for_pupil", "no pupil is registered with this id")
	}
	var school projections.SchoolInfo
	if err := getDoc(ctx, pm, projections.SchoolInfoKey(pupil.School), "school", &school); err != nil {
		return nil, err
	}
	sets := []string{m.Key(projections.OfferIndex("reserved", "none")), m.Key(projections.OfferIndex("reserved", "school:"+school.UAI))}
	if school.Kind == "college" && (school.EducationPriority == "rep" || school.EducationPriority == "rep_plus") {
		sets = append(sets, m.Key(projections.OfferIndex("reserved", "rep")))
	}
	if school.Kind == "lycee" && school.QPV {
		sets = append(sets, m.Key(projections.OfferIndex("reserved", "qpv")))
	}
	return sets, nil
}
