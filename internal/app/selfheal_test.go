package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"passerelle/internal/app"
	"passerelle/internal/testsupport/httpclient"
	"passerelle/internal/testsupport/redistest"
	"passerelle/projections"
)

// Redis loses writes behind the service's back, on a real redis-server
// process: restarted from an older snapshot, restarted empty, flushed
// while serving. Without a restart of Passerelle, the read models must
// come back equal, key by key, to a rebuild from the log, and no read
// meanwhile may present stale data as current.
func TestReadModelsHealThemselves(t *testing.T) {
	for _, tc := range []struct {
		name string
		lose func(t *testing.T, srv *redistest.Server)
	}{
		{"restarted from an older snapshot", func(t *testing.T, srv *redistest.Server) { srv.Kill(); srv.Start() }},
		{"restarted empty", func(t *testing.T, srv *redistest.Server) { srv.Kill(); srv.Forget(); srv.Start() }},
		{"flushed while serving", func(t *testing.T, srv *redistest.Server) {
			c := redis.NewClient(&redis.Options{Addr: strings.TrimSuffix(strings.TrimPrefix(srv.URL, "redis://"), "/0")})
			defer c.Close()
			if err := c.FlushAll(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Process(t)
			a, c := bootWith(t, app.Config{DataDir: t.TempDir(), RedisURL: srv.URL})
			employer := aMairie(t, c)
			var offers []string
			post := func(n int) {
				for range n {
					offers = append(offers, str(c.Must(201, "POST", "/v1/offers", offerBody(employer)), "id"))
				}
				caughtUp(t, a)
			}
			post(25)
			srv.Save()
			post(25) // acknowledged, projected, and not in the snapshot

			lies := watchForLies(t, c.Base(), slices.Clone(offers))
			tc.lose(t, srv)
			deadline := time.Now().Add(10 * time.Second)
			for c.Do("GET", "/readyz", nil).Status != http.StatusOK {
				if time.Now().After(deadline) {
					t.Fatalf("not ready 10 s after Redis lost writes: %s", c.Do("GET", "/readyz", nil).Raw)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if n, seen := lies(); len(n) > 0 {
				t.Fatalf("%d reads of %d presented stale data as current, e.g. %s", len(n), seen, n[0])
			}
			sameAsRebuild(t, a)
			// and it follows the log again
			post(1)
			got := c.Must(200, "GET", "/v1/stats/offers", nil)
			if num(got, "offers_open") != float64(len(offers)) {
				t.Fatalf("after healing, %v open offers, want %d", got["offers_open"], len(offers))
			}
		})
	}
}

// Redis down: queries 503 with Retry-After, commands go on, /readyz 503;
// Redis back: ready again and up to date, with no restart.
func TestRedisOutageRealServer(t *testing.T) {
	srv := redistest.Process(t)
	a, c := bootWith(t, app.Config{DataDir: t.TempDir(), RedisURL: srv.URL})
	employer := aMairie(t, c)
	before := str(c.Must(201, "POST", "/v1/offers", offerBody(employer)), "id")
	caughtUp(t, a)
	srv.Save()
	srv.Kill()

	for _, path := range []string{"/v1/offers/" + before, "/v1/offers", "/v1/stats/offers"} {
		r := c.Do("GET", path, nil)
		if r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" || !strings.Contains(r.Raw, `"not_ready"`) {
			t.Fatalf("GET %s with Redis down: %d %q %s", path, r.Status, r.Header.Get("Retry-After"), r.Raw)
		}
	}
	during := str(c.Must(201, "POST", "/v1/offers", offerBody(employer)), "id")
	if r := c.Do("GET", "/readyz", nil); r.Status != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with Redis down: %d %s", r.Status, r.Raw)
	}

	srv.Start()
	deadline := time.Now().Add(10 * time.Second)
	for c.Do("GET", "/readyz", nil).Status != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("not ready 10 s after Redis came back: %s", c.Do("GET", "/readyz", nil).Raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.Must(200, "GET", "/v1/offers/"+during, nil)
	sameAsRebuild(t, a)
}

// Redis holds read models of events this log does not: another log's
// (two instances pointed at one server), or a future of this one (the log
// restored from an older backup beside a newer Redis). Passerelle must
// rebuild them rather than wait for their checkpoint or catch up from it,
// be ready within seconds, and never serve an offer its log does not hold.
func TestReadModelsOfOtherEventsAreReplaced(t *testing.T) {
	for _, tc := range []struct {
		name string
		// before fills the Redis with events this log does not hold; it
		// returns the data directory to start on and the offers it holds
		before func(t *testing.T, url string) (dir string, offers []string, phantoms []string)
	}{
		{"another log", func(t *testing.T, url string) (string, []string, []string) {
			_, phantoms := withService(t, t.TempDir(), url, 30, nil)
			dir := t.TempDir()
			_, offers := withService(t, dir, url, 5, nil)
			return dir, offers, phantoms
		}},
		{"the log restored from an older backup", func(t *testing.T, url string) (string, []string, []string) {
			dir, backup := t.TempDir(), t.TempDir()
			employer, offers := withService(t, dir, url, 10, nil)
			if err := os.CopyFS(backup, os.DirFS(dir)); err != nil {
				t.Fatal(err)
			}
			_, phantoms := withService(t, dir, url, 20, &employer)
			return backup, offers, phantoms
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Process(t)
			dir, offers, phantoms := tc.before(t, srv.URL)
			a, c := bootWith(t, app.Config{DataDir: dir, RedisURL: srv.URL})
			deadline := time.Now().Add(10 * time.Second)
			for c.Do("GET", "/readyz", nil).Status != http.StatusOK {
				if r := c.Do("GET", "/v1/offers/"+phantoms[0], nil); r.Status == http.StatusOK {
					t.Fatalf("an offer the log does not hold is served while the read models are rebuilt: %s", r.Raw)
				}
				if time.Now().After(deadline) {
					t.Fatalf("not ready 10 s after start: %s", c.Do("GET", "/readyz", nil).Raw)
				}
				time.Sleep(20 * time.Millisecond)
			}
			for _, id := range phantoms {
				c.Must(404, "GET", "/v1/offers/"+id, nil)
			}
			for _, id := range offers {
				c.Must(200, "GET", "/v1/offers/"+id, nil)
			}
			sameAsRebuild(t, a)
			// and it follows its own log again
			employer := str(c.Must(200, "GET", "/v1/offers/"+offers[0], nil), "employer_id")
			posted := c.Must(201, "POST", "/v1/offers", offerBody(employer))
			c.Must(200, "GET", "/v1/offers/"+str(posted, "id")+"?min_position="+str(posted, "position"), nil)
			if got := c.Must(200, "GET", "/v1/stats/offers?min_position="+str(posted, "position"), nil); num(got, "offers_open") != float64(len(offers)+1) {
				t.Fatalf("%v open offers, want %d", got["offers_open"], len(offers)+1)
			}
		})
	}
}

// withService runs a service on dir and url long enough to post n offers
// (for employer, or a new one), projected, and stops it. It returns the
// employer and the offers.
func withService(t *testing.T, dir, url string, n int, employer *string) (string, []string) {
	t.Helper()
	a, err := app.Open(app.Config{DataDir: dir, RedisURL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	c := httpclient.New(t, srv.URL)
	var id string
	if employer != nil {
		id = *employer
	} else {
		id = aMairie(t, c)
	}
	var offers []string
	for range n {
		offers = append(offers, str(c.Must(201, "POST", "/v1/offers", offerBody(id)), "id"))
	}
	caughtUp(t, a)
	return id, offers
}

// aMairie registers the employer offerBody's offers are posted for and
// returns its id.
func aMairie(t *testing.T, c httpclient.Client) string {
	t.Helper()
	return str(c.Must(201, "POST", "/v1/employers", map[string]any{
		"name": "Mairie", "siret": siret, "kind": "public", "commune_code": "94016", "address": "Place de la République",
	}), "id")
}

func offerBody(employer string) map[string]any {
	return map[string]any{
		"employer_id": employer, "title": "Services municipaux", "description": "Accueil et état civil",
		"sector": "s2", "grades": []string{"3e"}, "weeks": []string{weekAhead(10)}, "seats": 2,
		"commune_code": "94016", "address": "Place de la République", "lat": 48.7937, "lon": 2.3354,
	}
}

func caughtUp(t *testing.T, a *app.App) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
}

// watchForLies reads the acknowledged offers and the live statistics in a
// loop until stopped. A 503 is honest; a 404 for an acknowledged offer, or
// statistics counting fewer offers, present a lost past as current. It
// returns a stop function giving the lies seen and the number of reads.
func watchForLies(t *testing.T, base string, offers []string) func() ([]string, int64) {
	var (
		mu    sync.Mutex
		lies  []string
		reads atomic.Int64
		stop  = make(chan struct{})
		done  = make(chan struct{})
	)
	get := func(path string) (int, map[string]any) {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		reads.Add(1)
		return resp.StatusCode, body
	}
	lie := func(s string) {
		mu.Lock()
		lies = append(lies, s)
		mu.Unlock()
	}
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := offers[i%len(offers)]
			if st, _ := get("/v1/offers/" + id); st != http.StatusOK && st != http.StatusServiceUnavailable {
				lie(fmt.Sprintf("GET /v1/offers/%s: %d", id, st))
			}
			if st, body := get("/v1/stats/offers"); st == http.StatusOK && body["offers_open"] != float64(len(offers)) {
				lie(fmt.Sprintf("GET /v1/stats/offers: offers_open %v of %d", body["offers_open"], len(offers)))
			} else if st != http.StatusOK && st != http.StatusServiceUnavailable {
				lie(fmt.Sprintf("GET /v1/stats/offers: %d", st))
			}
		}
	}()
	var once sync.Once
	return func() ([]string, int64) {
		once.Do(func() { close(stop); <-done })
		mu.Lock()
		defer mu.Unlock()
		return lies, reads.Load()
	}
}

// sameAsRebuild compares every served read model, key by key, with a
// rebuild of the same log into a fresh Redis.
func sameAsRebuild(t *testing.T, a *app.App) {
	t.Helper()
	ctx := context.Background()
	fresh := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	defer fresh.Close()
	if _, err := projections.RebuildAll(ctx, a.Store, fresh, projections.All(), projections.RebuildOptions{Opener: a.Cipher}); err != nil {
		t.Fatal(err)
	}
	for _, p := range projections.All() {
		live, rebuilt := readModel(t, a.Redis, p.Name()), readModel(t, fresh, p.Name())
		if !maps.Equal(live, rebuilt) {
			for k, v := range rebuilt {
				if live[k] != v {
					t.Fatalf("%s: key %s is %q, a rebuild has %q (%d keys live, %d rebuilt)", p.Name(), k, live[k], v, len(live), len(rebuilt))
				}
			}
			for k := range live {
				if _, ok := rebuilt[k]; !ok {
					t.Fatalf("%s: key %s is live, not in a rebuild", p.Name(), k)
				}
			}
		}
	}
}

// readModel renders every key of the served generation of a projection,
// relative to its prefix.
func readModel(t *testing.T, rdb redis.UniversalClient, name string) map[string]string {
	t.Helper()
	ctx := context.Background()
	prefix, err := projections.ActivePrefix(ctx, rdb, name)
	if err != nil || prefix == "" {
		t.Fatalf("%s: no served generation (%v)", name, err)
	}
	keys, err := rdb.Keys(ctx, strings.NewReplacer("[", `\[`, "*", `\*`, "?", `\?`).Replace(prefix)+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, k := range keys {
		if strings.HasSuffix(k, ":marker") {
			continue // bookkeeping: who built it, not what it holds
		}
		var v any
		switch typ := rdb.Type(ctx, k).Val(); typ {
		case "string":
			v = rdb.Get(ctx, k).Val()
		case "hash":
			v = rdb.HGetAll(ctx, k).Val()
		case "set":
			m := rdb.SMembers(ctx, k).Val()
			slices.Sort(m)
			v = m
		case "zset":
			v = rdb.ZRangeWithScores(ctx, k, 0, -1).Val()
		default:
			t.Fatalf("%s: key of type %s", k, typ)
		}
		b, _ := json.Marshal(v)
		out[strings.TrimPrefix(k, prefix)] = string(b)
	}
	return out
}
