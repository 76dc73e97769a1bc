package app_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"passerelle/internal/app"
	"passerelle/internal/testsupport/httpclient"
	"passerelle/internal/testsupport/redistest"
)

// The personal values of the pupil who will be forgotten, and of another.
var (
	forgotten = map[string]string{
		"first_name": "Zéphyrine", "last_name": "Quaglieri-Oubliée", "birth_date": "2011-02-13",
		"guardian": "Anatole Quaglieri", "email": "anatole.quaglieri@example.fr", "phone": "0698765432",
		"motivation": "Je rêve de pâtisserie depuis toujours XQZ",
	}
	kept = map[string]string{
		"first_name": "Gwendoline", "last_name": "Kerbrat-Gardée", "birth_date": "2011-07-21",
		"guardian": "Yves Kerbrat", "email": "yves.kerbrat@example.fr", "phone": "0611223344",
		"motivation": "Les gâteaux bretons KPT",
	}
)

func registerPupil(c httpclient.Client, p map[string]string) string {
	return str(c.Must(201, "POST", "/v1/pupils", map[string]any{
		"school_uai": uai, "grade": "3e", "class_name": "3eA", "first_name": p["first_name"], "last_name": p["last_name"],
		"birth_date": p["birth_date"], "guardians": []map[string]string{{"name": p["guardian"], "email": p["email"], "phone": p["phone"]}},
	}), "id")
}

// redisDump reads every key of every type, so a scan sees every value.
func redisDump(t *testing.T, rdb *redis.Client) []byte {
	t.Helper()
	ctx := context.Background()
	var out bytes.Buffer
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		out.WriteString(k + "\n")
		switch typ := rdb.Type(ctx, k).Val(); typ {
		case "string":
			out.WriteString(rdb.Get(ctx, k).Val())
		case "hash":
			for f, v := range rdb.HGetAll(ctx, k).Val() {
				out.WriteString(f + "=" + v + "\n")
			}
		case "set":
			out.WriteString(strings.Join(rdb.SMembers(ctx, k).Val(), "\n"))
		case "zset":
			out.WriteString(strings.Join(rdb.ZRange(ctx, k, 0, -1).Val(), "\n"))
		case "list":
			out.WriteString(strings.Join(rdb.LRange(ctx, k, 0, -1).Val(), "\n"))
		default:
			t.Fatalf("key %s of type %s not scanned", k, typ)
		}
		out.WriteString("\n")
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// dirBytes concatenates every file under dir.
func dirBytes(t *testing.T, dir string) []byte {
	t.Helper()
	var out bytes.Buffer
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		out.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestForgetErasesPersonalData(t *testing.T) {
	redistest.EachRedis(t, func(t *testing.T, r redistest.Redis) {
		dir := t.TempDir()
		a, c := bootWith(t, app.Config{DataDir: dir, RedisURL: r.URL, SealEvery: -1, ExpiryEvery: -1})
		emp := str(c.Must(201, "POST", "/v1/employers", map[string]any{
			"name": "Pâtisserie Lenôtre", "siret": siret, "kind": "association", "commune_code": "94028", "address": "3 rue",
		}), "id")
		c.Must(201, "POST", "/v1/schools", map[string]any{
			"uai": uai, "name": "Collège", "kind": "college", "commune_code": "94028", "education_priority": "none", "qpv": false,
		})
		pf, pk := registerPupil(c, forgotten), registerPupil(c, kept)
		offer := str(c.Must(201, "POST", "/v1/offers", map[string]any{
			"employer_id": emp, "title": "Pâtisserie", "description": "Tartes", "sector": "s1", "grades": []string{"3e"},
			"weeks": []string{weekAhead(10)}, "seats": 2, "commune_code": "94028", "address": "3 rue", "lat": 48.79, "lon": 2.45,
		}), "id")
		apply := func(p string, values map[string]string) string {
			return str(c.Must(201, "POST", "/v1/offers/"+offer+"/applications", map[string]any{
				"pupil_id": p, "weeks": []string{weekAhead(10)}, "motivation": values["motivation"],
			}), "id")
		}
		af, ak := apply(pf, forgotten), apply(pk, kept)
		c.Must(200, "POST", "/v1/applications/"+af+"/accept", nil)
		conf := c.Must(200, "POST", "/v1/applications/"+af+"/confirm", nil)

		// before: the personal data is there, through the API only
		before := c.Must(200, "GET", "/v1/pupils/"+pf, nil)
		if str(before, "first_name") != forgotten["first_name"] {
			t.Fatalf("profile before forgetting: %v", before)
		}
		if got := c.Must(200, "GET", "/v1/applications/"+af+"?min_position="+str(conf, "position"), nil); str(got, "motivation") != forgotten["motivation"] {
			t.Fatalf("motivation before forgetting: %v", got)
		}
		if raw := dirBytes(t, dir); bytes.Contains(raw, []byte(forgotten["last_name"])) {
			t.Fatal("a name is stored in clear in the data directory")
		}
		stats := c.Must(200, "GET", "/v1/stats/offers?min_position="+str(conf, "position"), nil)
		delete(stats, "position")

		done := c.Must(200, "POST", "/v1/pupils/"+pf+"/forget", nil)
		pos := str(done, "position")
		c.Must(200, "GET", "/v1/applications/"+af+"?min_position="+pos, nil)
		rdb := r.Client(t)
		scans := map[string][]byte{"data directory": dirBytes(t, dir), "redis": redisDump(t, rdb)}
		for where, raw := range scans {
			for field, v := range forgotten {
				if bytes.Contains(raw, []byte(v)) {
					t.Errorf("the forgotten pupil's %s %q is still readable in the %s", field, v, where)
				}
			}
		}
		if r := c.Do("GET", "/v1/pupils/"+pf, nil); r.Status != 410 {
			t.Fatalf("profile of a forgotten pupil: %d %s", r.Status, r.Raw)
		}
		// the other pupil's data is still readable through the API
		other := c.Must(200, "GET", "/v1/pupils/"+pk, nil)
		guardians, _ := other["guardians"].([]any)
		if str(other, "last_name") != kept["last_name"] || len(guardians) != 1 || str(guardians[0].(map[string]any), "email") != kept["email"] {
			t.Fatalf("the other pupil: %v", other)
		}
		if got := c.Must(200, "GET", "/v1/applications/"+ak, nil); str(got, "motivation") != kept["motivation"] {
			t.Fatalf("the other pupil's motivation: %v", got)
		}
		// statistics stay right, the audit marks the erased fields
		after := c.Must(200, "GET", "/v1/stats/offers", nil)
		delete(after, "position")
		if !reflect.DeepEqual(after, stats) {
			t.Fatalf("stats changed by forgetting:\n%v\n%v", stats, after)
		}
		audit := c.Do("GET", "/v1/audit/applications/"+af, nil)
		first := audit.Body["events"].([]any)[0].(map[string]any)
		data := first["data"].(map[string]any)
		if audit.Status != 200 || str(first, "type") != "ApplicationSubmitted" || data["erased"] != true || strings.Contains(audit.Raw, forgotten["motivation"]) {
			t.Fatalf("audit after forgetting: %d %v", audit.Status, first)
		}

		// the log still replays: a fresh read model rebuilt from it
		a.Close()
		_, c2 := bootWith(t, app.Config{DataDir: dir, RedisURL: redistest.Mini(t).URL, SealEvery: -1, ExpiryEvery: -1})
		again := c2.Must(200, "GET", "/v1/stats/offers?min_position="+pos, nil)
		delete(again, "position")
		if !reflect.DeepEqual(again, stats) {
			t.Fatalf("stats after replay:\n%v\n%v", stats, again)
		}
		if got := c2.Must(200, "GET", "/v1/applications/"+ak, nil); str(got, "motivation") != kept["motivation"] {
			t.Fatalf("the other pupil's motivation after replay: %v", got)
		}
	})
}
