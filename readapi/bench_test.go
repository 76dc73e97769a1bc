package readapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
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
	for _, c := range data.Communes {
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
		centres = append(centres, data.Communes[code])
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
