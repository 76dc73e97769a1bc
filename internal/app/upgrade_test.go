package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

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
	employer := aMairie(t, c)
	c.Must(201, "POST", "/v1/offers", offerBody(employer))
	caughtUp(t, a)

	rdb := redistest.Redis{URL: srv.URL}.Client(t)
	ctx := context.Background()
	prefix := servedOffers(t, rdb)
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

// A version that writes a new layout replaces, at its start, the read
// model an older version left in the layout before, rather than catching
// it up: the older generation's keys (such as the sets of common words
// the offers' layout 4 wrote) are gone once the new one is served.
func TestStartReplacesAnOlderLayout(t *testing.T) {
	srv := redistest.Process(t)
	dir := t.TempDir()
	a, c := boot(t, dir, srv.URL)
	employer := aMairie(t, c)
	offer := str(c.Must(201, "POST", "/v1/offers", offerBody(employer)), "id")
	caughtUp(t, a)
	a.Close()

	rdb := redistest.Redis{URL: srv.URL}.Client(t)
	ctx := context.Background()
	old := servedOffers(t, rdb)
	// what the version before left: its layout, and a set it wrote
	stale := old + projections.OfferIndex("word", "de")
	if err := rdb.HSet(ctx, projections.MarkerKey(old), "layout", projections.LayoutOf(projections.OffersName)-1).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.SAdd(ctx, stale, offer).Err(); err != nil {
		t.Fatal(err)
	}

	a2, c2 := boot(t, dir, srv.URL)
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := a2.WaitReady(wait); err != nil {
		t.Fatal(err)
	}
	now := servedOffers(t, rdb)
	if now == old {
		t.Fatalf("the older layout is still served (%q)", now)
	}
	if l, err := rdb.HGet(ctx, projections.MarkerKey(now), "layout").Int(); err != nil || l != projections.LayoutOf(projections.OffersName) {
		t.Fatalf("the new generation's layout: %d %v", l, err)
	}
	if got := c2.Must(200, "GET", "/v1/offers?q=etat+civil", nil); num(got, "total") != 1 {
		t.Fatalf("the offer, searched in the new generation: %v", got)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		n, err := rdb.Exists(ctx, stale).Result()
		if err == nil && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the older generation's set %s is still there (%d, %v)", stale, n, err)
		}
	}
}

// servedOffers is the prefix of the offers' served generation.
func servedOffers(t *testing.T, rdb *redis.Client) string {
	t.Helper()
	prefix, err := projections.ActivePrefix(context.Background(), rdb, projections.OffersName)
	if err != nil || prefix == "" {
		t.Fatalf("served offers: %q %v", prefix, err)
	}
	return prefix
}
