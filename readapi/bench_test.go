package readapi_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/redis/go-redis/v9"

	"passerelle/domain/refdata"
	"passerelle/eventstore/embedded"
	"passerelle/internal/route"
	"passerelle/internal/testsupport/eventgen"
	"passerelle/internal/testsupport/redistest"
	"passerelle/projections"
	"passerelle/readapi"
)

// BenchmarkOfferSearchNear measures offer search with a geographic filter
// over 70,000 offers placed in real communes (weighted to large ones), on
// the real redis-server: p50 and p99 of the HTTP query, and as a baseline
// the bare GEOSEARCH it is built on.
func BenchmarkOfferSearchNear(b *testing.B) {
	url := os.Getenv(redistest.RedisEnv)
	if url == "" {
		b.Skipf("%s is not set: this benchmark measures the real redis-server", redistest.RedisEnv)
	}
	opts, _ := redis.ParseURL(url)
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	s, err := embedded.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	data := refdata.MustLoad()
	var big []refdata.Commune
	for c := range data.Communes() {
		if c.Population > 20000 {
			big = append(big, c)
		}
	}
	sort.Slice(big, func(i, j int) bool { return big[i].Code < big[j].Code })
	const offers = 70_000
	w := eventgen.New(eventgen.Options{Seed: 1, Communes: big, Setup: eventgen.Population{Employers: 40}, Weights: map[string]int{"post_offer": 1}})
	if err := w.Run(ctx, s, offers+40, 16); err != nil {
		b.Fatal(err)
	}
	projections.SwapGrace = 0
	if _, err := projections.RebuildAll(ctx, s, rdb, []projections.Projector{projections.Offers{}}, projections.RebuildOptions{}); err != nil {
		b.Fatal(err)
	}
	r := chi.NewRouter()
	route.Mount(r, readapi.New(rdb).Routes())
	prefix, _ := projections.ActivePrefix(ctx, rdb, projections.OffersName)
	centres := []refdata.Commune{}
	for _, code := range []string{"75056", "69123", "13055", "31555", "59350", "33063", "94028", "44109"} {
		c, _ := data.Commune(code)
		centres = append(centres, c)
	}

	measure := func(b *testing.B, query func(c refdata.Commune) error) {
		var lat []time.Duration
		i := 0
		for b.Loop() {
			start := time.Now()
			if err := query(centres[i%len(centres)]); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
			i++
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
	b.Run("api-near-10km", func(b *testing.B) {
		measure(b, func(c refdata.Commune) error {
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, httptest.NewRequest("GET", fmt.Sprintf("/v1/offers?near=%f,%f&radius_km=10&per_page=20", c.Lat, c.Lon), nil))
			if rec.Code != http.StatusOK {
				return fmt.Errorf("status %d: %s", rec.Code, rec.Body)
			}
			return nil
		})
	})
	b.Run("raw-geosearch-10km", func(b *testing.B) {
		measure(b, func(c refdata.Commune) error {
			return rdb.GeoSearch(ctx, prefix+projections.OfferGeo(), &redis.GeoSearchQuery{
				Longitude: c.Lon, Latitude: c.Lat, Radius: 10, RadiusUnit: "km", Sort: "ASC"}).Err()
		})
	})
}

// nationalCommunes are the communes where offers are placed, each listed
// about once per 500 inhabitants so that offers follow the population:
// Paris and the petite couronne are dense, the countryside sparse. Paris,
// Lyon and Marseille are placed by arrondissement, their commune rows
// left out so they do not count twice.
func nationalCommunes(data *refdata.Data) []refdata.Commune {
	codes := make([]string, 0, data.CommuneCount())
	for c := range data.Communes() { // in code order
		if c.Code != "75056" && c.Code != "69123" && c.Code != "13055" {
			codes = append(codes, c.Code)
		}
	}
	rng := rand.New(rand.NewPCG(7, 7))
	var out []refdata.Commune
	for _, code := range codes {
		c, _ := data.Commune(code)
		n := c.Population / 500
		if rng.IntN(500) < c.Population%500 {
			n++
		}
		for range n {
			out = append(out, c)
		}
	}
	return out
}

// nationalOffers fills database 13 of the real redis-server with the offers
// read model of 70,000 offers at national density (kept between runs: it
// is rebuilt only when its marker is missing) and returns a client on it.
func nationalOffers(b *testing.B) *redis.Client {
	url := os.Getenv(redistest.RedisEnv)
	if url == "" {
		b.Skipf("%s is not set: this benchmark measures the real redis-server", redistest.RedisEnv)
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		b.Fatal(err)
	}
	opts.DB, opts.PoolSize = 13, 64
	rdb := redis.NewClient(opts)
	b.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	const marker, version = "bench:national", "v6-70000"
	if v, _ := rdb.Get(ctx, marker).Result(); v == version {
		return rdb
	}
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	s, err := embedded.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const offers = 70_000
	w := eventgen.New(eventgen.Options{Seed: 1, Communes: nationalCommunes(refdata.MustLoad()),
		Setup: eventgen.Population{Employers: 40, Schools: 20, Pupils: 200}, Weights: map[string]int{"post_offer": 1}})
	if err := w.Run(ctx, s, offers+300, 16); err != nil {
		b.Fatal(err)
	}
	// a handful of offers (eight in the read model) of a trade no other
	// teaches, all in Lozère: a word that a search near Paris finds
	// nowhere within its radius
	lozere := slices.DeleteFunc(nationalCommunes(refdata.MustLoad()), func(c refdata.Commune) bool { return c.Department != "48" })
	rare := eventgen.New(eventgen.Options{Seed: 2, Communes: lozere, Titles: []string{"Maréchalerie"},
		Setup: eventgen.Population{Employers: 2, Schools: 1, Pupils: 1}, Weights: map[string]int{"post_offer": 1}})
	if err := rare.Run(ctx, s, 14, 1); err != nil {
		b.Fatal(err)
	}
	// and some 3,000 offers of a trade taught in Gironde alone: a word
	// that too many offers hold to read them all, found nowhere near Paris
	gironde := slices.DeleteFunc(nationalCommunes(refdata.MustLoad()), func(c refdata.Commune) bool { return c.Department != "33" })
	regional := eventgen.New(eventgen.Options{Seed: 3, Communes: gironde, Titles: []string{"Vendanges et chai"},
		Setup: eventgen.Population{Employers: 20, Schools: 1, Pupils: 1}, Weights: map[string]int{"post_offer": 1}})
	if err := regional.Run(ctx, s, 3_000, 4); err != nil {
		b.Fatal(err)
	}
	projections.SwapGrace = 0
	if _, err := projections.RebuildAll(ctx, s, rdb, []projections.Projector{projections.Offers{}, projections.Placements{}}, projections.RebuildOptions{}); err != nil {
		b.Fatal(err)
	}
	if err := rdb.Set(ctx, marker, version, 0).Err(); err != nil {
		b.Fatal(err)
	}
	return rdb
}

// BenchmarkOfferSearchNational measures offer searches over 70,000 offers
// at national density on the real redis-server, against two baselines in
// the same run: GET /v1/offers/{id} (one document through the same
// handler chain) and a bare Redis GET. Each query runs once
// sequentially (seq) and under 32 concurrent clients (c32); both report
// p50 and p99 latencies. Bound the run with -benchtime=Nx;
// BENCH_COUNT_LIMIT=n sets how far searches count (readapi.DefaultCountLimit
// otherwise), to measure what the count costs.
func BenchmarkOfferSearchNational(b *testing.B) {
	rdb := nationalOffers(b)
	ctx := context.Background()
	api := readapi.New(rdb)
	if v := os.Getenv("BENCH_COUNT_LIMIT"); v != "" {
		var err error
		if api.CountLimit, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	r := chi.NewRouter()
	route.Mount(r, api.Routes())
	prefix, err := projections.ActivePrefix(ctx, rdb, projections.OffersName)
	if err != nil || prefix == "" {
		b.Fatalf("no offers read model: %v", err)
	}
	oneID, err := rdb.SRandMember(ctx, prefix+projections.OfferIndexOpen()).Result()
	if err != nil {
		b.Fatal(err)
	}
	placements, _ := projections.ActivePrefix(ctx, rdb, projections.PlacementsName)
	uai, _ := rdb.SRandMember(ctx, placements+projections.SchoolsKey()).Result()
	pupil, _ := rdb.SRandMember(ctx, placements+projections.SchoolPupilsKey(uai)).Result()
	get := func(path string) func() error {
		return func() error {
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
			if rec.Code != http.StatusOK {
				return fmt.Errorf("%s: status %d: %s", path, rec.Code, rec.Body)
			}
			return nil
		}
	}
	paris := "48.8566,2.3522"
	queries := []struct {
		name string
		do   func() error
	}{
		{"baseline-redis-get", func() error { return rdb.Get(ctx, prefix+projections.OfferDocKey(oneID)).Err() }},
		{"baseline-get-offer", get("/v1/offers/" + oneID)},
		{"paris-20km-3e", get("/v1/offers?near=" + paris + "&radius_km=20&grade=3e")},
		{"paris-20km-3e-page5", get("/v1/offers?near=" + paris + "&radius_km=20&grade=3e&page=5")},
		{"paris-100km-3e", get("/v1/offers?near=" + paris + "&radius_km=100&grade=3e")},
		{"paris-20km-sector", get("/v1/offers?near=" + paris + "&radius_km=20&sector=s7&available=true")},
		{"paris-20km-q", get("/v1/offers?near=" + paris + "&radius_km=20&q=boulanger")},
		{"paris-20km-q-rare", get("/v1/offers?near=" + paris + "&radius_km=20&q=marechalerie")},
		{"lozere-50km-q-rare", get("/v1/offers?near=44.5181,3.5006&radius_km=50&q=marechalerie")},
		{"paris-20km-q-regional", get("/v1/offers?near=" + paris + "&radius_km=20&q=chai")},
		{"paris-20km-for-pupil", get("/v1/offers?near=" + paris + "&radius_km=20&for_pupil=" + pupil)},
		{"lozere-50km-3e", get("/v1/offers?near=44.5181,3.5006&radius_km=50&grade=3e")},
		{"all-3e", get("/v1/offers?grade=3e")},
		{"all-week-available", get("/v1/offers?week=2026-W10&available=true")},
		{"all-q", get("/v1/offers?q=vétérinaire&page=2")},
		{"all-q-regional-week", get("/v1/offers?q=chai&week=2026-W10")},
	}
	for _, q := range queries {
		b.Run(q.name+"/seq", func(b *testing.B) {
			b.ReportAllocs()
			var lat []time.Duration
			for b.Loop() {
				start := time.Now()
				if err := q.do(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			reportLatencies(b, lat)
		})
		b.Run(q.name+"/c32", func(b *testing.B) {
			b.ReportAllocs()
			var mu sync.Mutex
			var lat []time.Duration
			b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					start := time.Now()
					if err := q.do(); err != nil {
						b.Error(err)
						return
					}
					mine = append(mine, time.Since(start))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			reportLatencies(b, lat)
		})
	}
}

func reportLatencies(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
