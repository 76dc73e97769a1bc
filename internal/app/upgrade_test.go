package app_test

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"passerelle/internal/app"
	"passerelle/internal/testsupport/redistest"
	"passerelle/projections"
)

// During a rolling upgrade the projector of the new version serves its
// read models in a new layout while instances of the old one still run.
// An instance never reads a layout it was not built for: its queries
// answer 503 not_ready and /readyz takes it out of the load balancer,
// while its commands go on.
func TestInstanceRefusesAnotherLayout(t *testing.T) {
	srv := redistest.Process(t)
	a, c := bootWith(t, app.Config{DataDir: t.TempDir(), RedisURL: srv.URL})
	employer := str(c.Must(201, "POST", "/v1/employers", map[string]any{
		"name": "Mairie", "siret": siret, "kind": "public", "commune_code": "94016", "address": "Place de la République",
	}), "id")
	c.Must(201, "POST", "/v1/offers", offerBody(employer))
	caughtUp(t, a)

	rdb := redis.NewClient(&redis.Options{Addr: strings.TrimSuffix(strings.TrimPrefix(srv.URL, "redis://"), "/0")})
	defer rdb.Close()
	ctx := context.Background()
	prefix, err := projections.ActivePrefix(ctx, rdb, projections.OffersName)
	if err != nil || prefix == "" {
		t.Fatalf("served offers: %q %v", prefix, err)
	}
	// what a newer version's rebuild leaves: its own layout served
	if err := rdb.HSet(ctx, projections.MarkerKey(prefix), "layout", projections.LayoutOf(projections.OffersName)+1).Err(); err != nil {
		t.Fatal(err)
	}

	r := c.Do("GET", "/v1/offers", nil)
	if r.Status != 503 || !strings.Contains(r.Raw, `"code":"not_ready"`) || !strings.Contains(r.Raw, "another version") {
		t.Fatalf("GET /v1/offers over a newer layout: %d %s", r.Status, r.Raw)
	}
	if r := c.Do("GET", "/v1/stats/offers", nil); r.Status != 200 {
		t.Fatalf("the stats model is still this version's: %d %s", r.Status, r.Raw)
	}
	ready := c.Do("GET", "/readyz", nil)
	if ready.Status != 503 || !strings.Contains(ready.Raw, `"problem":"served in layout`) {
		t.Fatalf("/readyz over a newer layout: %d %s", ready.Status, ready.Raw)
	}
	c.Must(201, "POST", "/v1/offers", offerBody(employer))
}
