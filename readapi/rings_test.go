package readapi

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"passerelle/internal/testsupport/redistest"
)

// TestRingsWalkInFinalOrder walks a geo set ring by ring, asking for
// batches of random sizes, and compares what it hands out with one search
// of the whole radius sorted by distance then id. Many members share a
// place, so that COUNT cuts through runs of equal distances.
func TestRingsWalkInFinalOrder(t *testing.T) {
	redistest.EachRedis(t, func(t *testing.T, r redistest.Redis) {
		ctx := context.Background()
		rdb := r.Client(t)
		rng := rand.New(rand.NewPCG(3, 4))
		var points []*redis.GeoLocation
		for i := range 3000 {
			lat, lon := 48.85+(rng.Float64()-0.5)/5, 2.35+(rng.Float64()-0.5)/3
			if i%3 == 0 { // a third at one of three places
				lat, lon = 48.85+float64(i%9)/200, 2.35
			}
			points = append(points, &redis.GeoLocation{Name: fmt.Sprintf("o%04d", rng.IntN(10000)), Latitude: lat, Longitude: lon})
		}
		if err := rdb.GeoAdd(ctx, "geo", points...).Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.SAdd(ctx, "some", points[0].Name).Err(); err != nil {
			t.Fatal(err)
		}
		for i := range 60 {
			near := [2]float64{48.85 + (rng.Float64()-0.5)/10, 2.35 + (rng.Float64()-0.5)/10}
			radius := []float64{0.05, 0.8, 1.0, 3.3, 12, 40}[rng.IntN(6)]
			all, err := rdb.GeoSearchLocation(ctx, "geo", &redis.GeoSearchLocationQuery{
				GeoSearchQuery: redis.GeoSearchQuery{Longitude: near[1], Latitude: near[0], Radius: radius, RadiusUnit: "km"}, WithDist: true}).Result()
			if err != nil {
				t.Fatal(err)
			}
			want := make([]candidate, len(all))
			for i, g := range all {
				want[i] = candidate{id: g.Name, dist: g.Dist}
			}
			slices.SortFunc(want, func(x, y candidate) int { return cmp.Or(cmp.Compare(x.dist, y.dist), strings.Compare(x.id, y.id)) })
			g := newRings(rdb, "geo", near, radius)
			got := walk(t, g, rng)
			if !slices.Equal(got, want) {
				t.Fatalf("near %v within %v km: walked %d members, want %d (first difference at %d)", near, radius, len(got), len(want), firstDiff(got, want))
			}
			if i%2 != 0 {
				continue
			}
			// the same walk, the sizes of index sets read with its first
			// search: none empty, then one
			g = newRings(rdb, "geo", near, radius)
			g.empty = []string{"some"}
			if got := walk(t, g, rng); !slices.Equal(got, want) {
				t.Fatalf("near %v within %v km, with sizes: walked %d members, want %d (first difference at %d)", near, radius, len(got), len(want), firstDiff(got, want))
			}
			g = newRings(rdb, "geo", near, radius)
			g.empty = []string{"some", "none"}
			if got := walk(t, g, rng); len(got) != 0 {
				t.Fatalf("near %v within %v km, an index empty: walked %d members", near, radius, len(got))
			}
		}
	})
}

// walk hands out every member of g in batches of random sizes.
func walk(t *testing.T, g *rings, rng *rand.Rand) []candidate {
	t.Helper()
	var got []candidate
	for done := false; !done; {
		batch, d, err := g.next(context.Background(), 1+rng.IntN(300))
		if err != nil {
			t.Fatal(err)
		}
		if len(batch) == 0 && !d {
			t.Fatal("an empty batch before the end")
		}
		got, done = append(got, batch...), d
	}
	return got
}

func firstDiff(a, b []candidate) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
