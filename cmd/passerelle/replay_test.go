package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"passerelle/domain"
	"passerelle/internal/app"
	"passerelle/internal/testsupport/httpclient"
	"passerelle/internal/testsupport/redistest"
)

// serveFor runs the service on dir and redisURL until the test ends or
// stop is called.
func serveFor(t *testing.T, dir, redisURL string) (c httpclient.Client, stop func()) {
	t.Helper()
	a, err := app.Open(app.Config{DataDir: dir, RedisURL: redisURL, ExpiryEvery: -1, SealEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		a.Close()
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			srv.Close()
			a.Close()
		}
	}
	t.Cleanup(stop)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	return httpclient.New(t, srv.URL), stop
}

func TestReplay(t *testing.T) {
	redistest.EachRedis(t, func(t *testing.T, r redistest.Redis) {
		dir := t.TempDir()
		c, stop := serveFor(t, dir, r.URL)
		emp := c.Must(201, "POST", "/v1/employers", map[string]any{"name": "Boulangerie Martin", "siret": "73282932000074", "kind": "company", "commune_code": "94028", "address": "1 rue de Paris"})
		c.Must(201, "POST", "/v1/schools", map[string]any{"uai": "0941234A", "name": "Collège Jean Macé", "kind": "college", "commune_code": "94028", "education_priority": "rep", "qpv": true})
		pupil := c.Must(201, "POST", "/v1/pupils", map[string]any{"school_uai": "0941234A", "grade": "3e", "class_name": "3eB", "first_name": "Lina",
			"last_name": "Benali", "birth_date": "2010-03-14", "guardians": []map[string]string{{"name": "Karim Benali", "email": "k@example.fr", "phone": "0612345678"}}})
		week := domain.WeekOf(time.Now().AddDate(0, 2, 0))
		offer := c.Must(201, "POST", "/v1/offers", map[string]any{"employer_id": emp["id"], "title": "Découverte du fournil", "description": "Pétrissage",
			"sector": "s1", "grades": []string{"3e"}, "weeks": []string{week}, "seats": 2, "commune_code": "94028",
			"address": "1 rue de Paris", "lat": 48.79, "lon": 2.455})
		application := c.Must(201, "POST", "/v1/offers/"+offer["id"].(string)+"/applications", map[string]any{
			"pupil_id": pupil["id"], "weeks": []string{week}, "motivation": "J'aime le pain."})
		done := c.Must(200, "POST", "/v1/applications/"+application["id"].(string)+"/accept", map[string]any{})
		pos := done["position"].(string)
		stats := c.Must(200, "GET", "/v1/stats/offers?min_position="+pos, nil)
		appDoc := c.Must(200, "GET", "/v1/applications/"+application["id"].(string)+"?min_position="+pos, nil)
		stop()

		redisURL := r.URL
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{"replay", "--data-dir", dir, "--redis-url", redisURL, "--grace", "1ms"}, &out, &errOut); code != 0 {
			t.Fatalf("replay: exit %d\n%s\n%s", code, out.String(), errOut.String())
		}
		for _, name := range []string{"offers", "stats", "placements"} {
			m := regexp.MustCompile(name + `: generation (\d+) is served \(was (\d+)\)`).FindStringSubmatch(out.String())
			if m == nil || atoi(m[1]) != atoi(m[2])+1 {
				t.Fatalf("replay output:\n%s", out.String())
			}
		}
		if !strings.Contains(errOut.String(), "replay placements: 100%") || strings.Contains(errOut.String(), "\r") {
			t.Fatalf("progress on a pipe: plain lines expected:\n%s", errOut.String())
		}

		// with a real Redis the service serves the rebuilt generation
		// as it was; with miniredis, too (same server, still running)
		c, stop = serveFor(t, dir, redisURL)
		again := c.Must(200, "GET", "/v1/stats/offers?min_position="+pos, nil)
		if !reflect.DeepEqual(again, stats) {
			t.Fatalf("stats after replay:\n%v\nwant\n%v", again, stats)
		}
		// the personal data read back with the service's keys
		if got := c.Must(200, "GET", "/v1/applications/"+application["id"].(string), nil); !reflect.DeepEqual(got, appDoc) {
			t.Fatalf("application after replay:\n%v\nwant\n%v", got, appDoc)
		}

		// only one projection
		out.Reset()
		errOut.Reset()
		stop()
		if code := run(context.Background(), []string{"replay", "--projection", "stats", "--data-dir", dir, "--redis-url", redisURL, "--grace", "1ms"}, &out, &errOut); code != 0 ||
			!strings.Contains(out.String(), "stats") || strings.Contains(out.String(), "offers") {
			t.Fatalf("replay --projection stats: %d\n%s\n%s", code, out.String(), errOut.String())
		}
	})
}

// With the embedded store, replay cannot run beside the service: it says
// so once the store's lock wait gives up.
func TestReplayBesideServe(t *testing.T) {
	r := redistest.Mini(t)
	dir := t.TempDir()
	serveFor(t, dir, r.URL)
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"replay", "--data-dir", dir, "--redis-url", r.URL}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "held by another process") || !strings.Contains(errOut.String(), "5 s") {
		t.Fatalf("replay beside serve: exit %d\n%s", code, errOut.String())
	}
}

func TestReplayRefusesBadFlags(t *testing.T) {
	r := redistest.Mini(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"replay", "--data-dir", t.TempDir()}, "--redis-url is required"},
		{[]string{"replay", "--redis-url", r.URL, "--projection", "nope"}, `no projection "nope"`},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), c.args, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("%v: exit %d, %q; want an error saying %q", c.args, code, errOut.String(), c.want)
		}
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
