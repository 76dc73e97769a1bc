package readapi_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/redis/go-redis/v9"

	"passerelle/domain"
	"passerelle/domain/refdata"
	"passerelle/eventstore/embedded"
	"passerelle/internal/route"
	"passerelle/internal/testsupport/eventgen"
	"passerelle/internal/testsupport/redistest"
	"passerelle/projections"
	"passerelle/readapi"
)

// searchWorld is a read model of a few thousand offers around Paris and in
// Lozère, posted, amended, withdrawn, reopened and applied to, with the
// schools and pupils that search for them.
type searchWorld struct {
	rdb              *redis.Client
	offers, pupils   []string
	docs             map[string]projections.OfferDoc
	words            map[string][]string // of each offer's title and description
	offersP, placesP string
}

// searchLog is the event log of a search world.
func searchLog(t *testing.T) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	var communes []refdata.Commune
	for _, c := range nationalCommunes(refdata.MustLoad()) {
		if c.Department == "75" || c.Department == "92" || c.Department == "93" || c.Department == "48" {
			communes = append(communes, c)
		}
	}
	weights := map[string]int{"post_offer": 40, "amend_offer": 4, "withdraw_offer": 4, "reopen_offer": 2, "register_pupil": 2,
		"apply": 24, "accept": 12, "confirm": 8, "reject": 3, "withdraw": 2}
	w := eventgen.New(eventgen.Options{Seed: 5, Communes: communes, Setup: eventgen.Population{Employers: 30, Schools: 12, Pupils: 150}, Weights: weights})
	if err := w.Run(context.Background(), s, 9000, 32); err != nil {
		t.Fatal(err)
	}
	return s
}

// newSearchWorld projects the log into r.
func newSearchWorld(t *testing.T, r redistest.Redis, log *embedded.Store) *searchWorld {
	t.Helper()
	ctx := context.Background()
	rdb := r.Client(t)
	projections.SwapGrace = 0
	if _, err := projections.RebuildAll(ctx, log, rdb, []projections.Projector{projections.Offers{}, projections.Placements{}}, projections.RebuildOptions{}); err != nil {
		t.Fatal(err)
	}
	sw := &searchWorld{rdb: rdb, docs: map[string]projections.OfferDoc{}, words: map[string][]string{}}
	sw.offersP, _ = projections.ActivePrefix(ctx, rdb, projections.OffersName)
	sw.placesP, _ = projections.ActivePrefix(ctx, rdb, projections.PlacementsName)
	ids, err := rdb.Keys(ctx, sw.offersP+projections.OfferDocKey("*")).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range ids {
		id := strings.TrimPrefix(key, sw.offersP+projections.OfferDocKey(""))
		var d projections.OfferDoc
		b, err := rdb.Get(ctx, sw.offersP+projections.OfferDocKey(id)).Bytes()
		if err != nil || json.Unmarshal(b, &d) != nil {
			t.Fatalf("offer %s: %v", id, err)
		}
		sw.offers, sw.docs[id], sw.words[id] = append(sw.offers, id), d, projections.Words(d.Title+" "+d.Description)
	}
	schools, _ := rdb.SMembers(ctx, sw.placesP+projections.SchoolsKey()).Result()
	for _, uai := range schools {
		ps, _ := rdb.SMembers(ctx, sw.placesP+projections.SchoolPupilsKey(uai)).Result()
		sw.pupils = append(sw.pupils, ps...)
	}
	slices.Sort(sw.pupils)
	slices.Sort(sw.offers)
	if len(sw.offers) < 2000 || len(sw.pupils) == 0 {
		t.Fatalf("%d offers and %d pupils: too few to test search", len(sw.offers), len(sw.pupils))
	}
	return sw
}

// randomQuery draws a search: each filter present or not, its value most
// often taken from an offer so that it matches some.
func (sw *searchWorld) randomQuery(rng *rand.Rand) url.Values {
	q := url.Values{}
	d := sw.docs[sw.offers[rng.IntN(len(sw.offers))]]
	maybe := func(p int) bool { return rng.IntN(100) < p }
	if maybe(40) {
		q.Set("grade", string(d.Grades[rng.IntN(len(d.Grades))]))
	}
	if maybe(20) {
		q.Set("sector", d.Sector)
	}
	if maybe(15) {
		q.Set("department", d.Department)
	}
	if maybe(10) {
		q.Set("commune", d.CommuneCode)
	}
	if maybe(25) && len(d.Weeks) > 0 {
		q.Set("week", d.Weeks[rng.IntN(len(d.Weeks))])
	}
	if maybe(30) {
		q.Set("available", []string{"true", "false"}[rng.IntN(2)])
	}
	if maybe(15) {
		words := projections.Words(d.Title + " " + d.Description)
		q.Set("q", strings.Join([]string{words[rng.IntN(len(words))], words[rng.IntN(len(words))]}[:1+rng.IntN(2)], " "))
	}
	if maybe(20) {
		q.Set("for_pupil", sw.pupils[rng.IntN(len(sw.pupils))])
	}
	if maybe(70) {
		centre := d
		if maybe(30) { // somewhere else, or nowhere near an offer
			centre = sw.docs[sw.offers[rng.IntN(len(sw.offers))]]
		}
		lat, lon := centre.Lat+(rng.Float64()-0.5)/20, centre.Lon+(rng.Float64()-0.5)/20
		if maybe(5) {
			lat, lon = 43.3, 5.37
		}
		q.Set("near", fmt.Sprintf("%.5f,%.5f", lat, lon))
		if maybe(85) {
			q.Set("radius_km", []string{"0.3", "1", "2.5", "7", "20", "33.3", "150", "1000"}[rng.IntN(8)])
		}
	}
	if maybe(70) {
		q.Set("per_page", fmt.Sprint([]int{1, 3, 7, 20, 100}[rng.IntN(5)]))
	}
	if maybe(50) {
		q.Set("page", fmt.Sprint(1+rng.IntN(6)))
	}
	return q
}

type refHit struct {
	id   string
	dist float64
}

// reference answers a search the brute-force way: every offer document
// filtered in Go, and for a point the distances of one GEOSEARCH of the
// whole radius, sorted here.
func (sw *searchWorld) reference(t *testing.T, q url.Values) []refHit {
	t.Helper()
	ctx := context.Background()
	var dist map[string]float64
	if near := q.Get("near"); near != "" {
		la, lo, _ := strings.Cut(near, ",")
		lat, lon, radius := number(t, la), number(t, lo), 10.0
		if r := q.Get("radius_km"); r != "" {
			radius = number(t, r)
		}
		geo, err := sw.rdb.GeoSearchLocation(ctx, sw.offersP+projections.OfferGeo(), &redis.GeoSearchLocationQuery{
			GeoSearchQuery: redis.GeoSearchQuery{Longitude: lon, Latitude: lat, Radius: radius, RadiusUnit: "km"}, WithDist: true}).Result()
		if err != nil {
			t.Fatal(err)
		}
		dist = map[string]float64{}
		for _, g := range geo {
			dist[g.Name] = g.Dist
		}
	}
	eligible := func(projections.OfferDoc) bool { return true }
	if p := q.Get("for_pupil"); p != "" {
		var pupil projections.PupilInfo
		var school projections.SchoolInfo
		b, _ := sw.rdb.Get(ctx, sw.placesP+projections.PupilInfoKey(p)).Bytes()
		_ = json.Unmarshal(b, &pupil)
		b, _ = sw.rdb.Get(ctx, sw.placesP+projections.SchoolInfoKey(pupil.School)).Bytes()
		_ = json.Unmarshal(b, &school)
		eligible = func(d projections.OfferDoc) bool {
			r := d.Reserved
			return !r.Any() || slices.Contains(r.Schools, school.UAI) ||
				(r.REP && school.Kind == "college" && (school.EducationPriority == "rep" || school.EducationPriority == "rep_plus")) ||
				(r.QPV && school.Kind == "lycee" && school.QPV)
		}
	}
	words := projections.Words(q.Get("q"))
	var hits []refHit
	for _, id := range sw.offers {
		d := sw.docs[id]
		dw := sw.words[id]
		ok := d.Status != "withdrawn" && eligible(d) &&
			(q.Get("grade") == "" || slices.Contains(d.Grades, domain.Grade(q.Get("grade")))) &&
			(q.Get("sector") == "" || d.Sector == q.Get("sector")) &&
			(q.Get("department") == "" || d.Department == q.Get("department")) &&
			(q.Get("commune") == "" || d.CommuneCode == q.Get("commune")) &&
			(q.Get("week") == "" || slices.Contains(d.Weeks, q.Get("week")))
		if q.Get("available") == "true" {
			ok = ok && (q.Get("week") == "" && d.SeatsAvailable > 0 || q.Get("week") != "" && d.SeatsByWeek[q.Get("week")].Available > 0)
		}
		for _, w := range words {
			ok = ok && slices.Contains(dw, w)
		}
		h := refHit{id: id}
		if dist != nil {
			var in bool
			h.dist, in = dist[id]
			ok = ok && in
		}
		if ok {
			hits = append(hits, h)
		}
	}
	slices.SortFunc(hits, func(x, y refHit) int { return cmp.Or(cmp.Compare(x.dist, y.dist), strings.Compare(x.id, y.id)) })
	return hits
}

// TestOfferSearchMatchesBruteForce compares random searches, their pages
// and totals, with the brute-force reference, under several count limits;
// then again with the size under which a set is read whole lowered, so
// that this small world's sets are walked, and walks that find too few
// matches end by reading their sets whole.
func TestOfferSearchMatchesBruteForce(t *testing.T) {
	log := searchLog(t)
	redistest.EachRedis(t, func(t *testing.T, r redistest.Redis) {
		sw := newSearchWorld(t, r, log)
		rng := rand.New(rand.NewPCG(11, uint64(len(r.Name))))
		for _, limit := range []int{readapi.DefaultCountLimit, 5, 60, 1_000_000} {
			a := readapi.New(sw.rdb)
			a.CountLimit = limit
			router := chi.NewRouter()
			route.Mount(router, a.Routes())
			for range 100 {
				q := sw.randomQuery(rng)
				checkSearch(t, router, q, sw.reference(t, q), limit)
			}
		}
		defer readapi.SetSmallSet(20)()
		a := readapi.New(sw.rdb)
		router := chi.NewRouter()
		route.Mount(router, a.Routes())
		for range 200 {
			q := sw.randomQuery(rng)
			checkSearch(t, router, q, sw.reference(t, q), readapi.DefaultCountLimit)
		}
	})
}

func checkSearch(t *testing.T, router http.Handler, q url.Values, ref []refHit, limit int) {
	t.Helper()
	rec := httptest.NewRecorder()
	router.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/offers?"+q.Encode(), nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("%s: %d %s", q.Encode(), rec.Code, rec.Body)
	}
	var got struct {
		Items []struct {
			ID         string   `json:"id"`
			DistanceKM *float64 `json:"distance_km"`
		} `json:"items"`
		Total      int  `json:"total"`
		TotalExact bool `json:"total_exact"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if enc := encodedAsBefore(t, rec.Body.Bytes()); !bytes.Equal(rec.Body.Bytes(), enc) {
		t.Fatalf("/v1/offers?%s answers\n%s\nwhere decoding its documents and encoding them gives\n%s", q.Encode(), rec.Body, enc)
	}
	pg, perPage := 1, 20
	if v := q.Get("page"); v != "" {
		pg = int(number(t, v))
	}
	if v := q.Get("per_page"); v != "" {
		perPage = int(number(t, v))
	}
	lo, hi := min((pg-1)*perPage, len(ref)), min(pg*perPage, len(ref))
	want := ref[lo:hi]
	where := fmt.Sprintf("limit %d, /v1/offers?%s", limit, q.Encode())
	switch {
	case got.TotalExact && got.Total != len(ref):
		t.Errorf("%s: total %d, want %d", where, got.Total, len(ref))
	case !got.TotalExact && (got.Total != max(limit, pg*perPage)+1 || got.Total > len(ref)):
		t.Errorf("%s: total at least %d, but %d match (limit %d)", where, got.Total, len(ref), limit)
	}
	if len(got.Items) != len(want) {
		t.Fatalf("%s: %d items, want %d", where, len(got.Items), len(want))
	}
	for i, it := range got.Items {
		if it.ID != want[i].id {
			t.Fatalf("%s: item %d is %s, want %s", where, i, it.ID, want[i].id)
		}
		switch near := q.Get("near") != ""; {
		case near && (it.DistanceKM == nil || *it.DistanceKM != math.Round(want[i].dist*100)/100):
			t.Fatalf("%s: item %d distance %v, want %v", where, i, it.DistanceKM, want[i].dist)
		case !near && it.DistanceKM != nil:
			t.Fatalf("%s: item %d has a distance without near", where, i)
		}
	}
}

// encodedAsBefore is a page of offers as searches encoded it before they
// passed the stored documents through: the documents decoded, then the
// page encoded as api.WriteJSON encodes.
func encodedAsBefore(t *testing.T, body []byte) []byte {
	t.Helper()
	var page struct {
		Items      []projections.OfferDoc `json:"items"`
		Total      int                    `json:"total"`
		TotalExact bool                   `json:"total_exact"`
		Page       int                    `json:"page"`
		PerPage    int                    `json:"per_page"`
		Position   string                 `json:"position"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(page); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func number(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
