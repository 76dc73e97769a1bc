package app_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"passerelle/domain"
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
		// as they sign the convention
		"pupil_signer": "Z. Quaglieri-Oubliée (élève)", "guardian_signer": "A. Quaglieri (représentant légal)",
		"withdrawal_reason": "Ma grand-mère Odette est malade WDR",
	}
	kept = map[string]string{
		"first_name": "Gwendoline", "last_name": "Kerbrat-Gardée", "birth_date": "2011-07-21",
		"guardian": "Yves Kerbrat", "email": "yves.kerbrat@example.fr", "phone": "0611223344",
		"motivation":   "Les gâteaux bretons KPT",
		"pupil_signer": "G. Kerbrat-Gardée (élève)", "guardian_signer": "Y. Kerbrat (représentant légal)",
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

// The personal values of the forgotten pupil vanish from every place the
// service keeps or shows data: the data directory, the API, the audit, the
// live read models, a rebuild; and, on a redis-server that persists
// (append-only file and snapshots, uncompressed so that a value is found
// by its bytes), from every file of its directory.
func TestForgetErasesPersonalData(t *testing.T) {
	redistest.EachRedis(t, func(t *testing.T, r redistest.Redis) { forgetEverywhere(t, r.URL, nil) })
	t.Run("redis-server-appendonly", func(t *testing.T) {
		srv := redistest.Process(t, "--appendonly", "yes", "--save", "3600 1", "--rdbcompression", "no")
		forgetEverywhere(t, srv.URL, srv)
	})
}

// signedPlacement takes the pupil's application to a convention signed by
// every party, the pupil and the guardian under the names in values, and
// returns the convention's id.
func signedPlacement(t *testing.T, c httpclient.Client, app string, values map[string]string) string {
	t.Helper()
	c.Must(200, "POST", "/v1/applications/"+app+"/accept", nil)
	conv := str(c.Must(200, "POST", "/v1/applications/"+app+"/confirm", nil), "convention_id")
	c.Must(200, "POST", "/v1/conventions/"+conv+"/complete", map[string]any{"party": "employer",
		"tutor": map[string]string{"name": "Paul Tuteur", "email": "paul@example.fr"}, "activities": "Tartes"})
	done := c.Must(200, "POST", "/v1/conventions/"+conv+"/complete", map[string]any{"party": "school",
		"referent_teacher": map[string]string{"name": "Mme Roux", "email": "roux@example.fr"}})
	hash := str(c.Must(200, "GET", "/v1/conventions/"+conv+"?min_position="+str(done, "position"), nil), "document_hash")
	for role, name := range map[string]string{"employer": "Paul Tuteur", "school_head": "Mme Leroy",
		"pupil": values["pupil_signer"], "guardian": values["guardian_signer"]} {
		c.Must(201, "POST", "/v1/conventions/"+conv+"/signatures", map[string]any{"role": role, "signer_name": name, "document_hash": hash})
	}
	return conv
}

// signers are the names on a convention's signatures, by role.
func signers(t *testing.T, doc map[string]any) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, s := range doc["signatures"].([]any) {
		sig := s.(map[string]any)
		out[str(sig, "role")] = str(sig, "signer_name")
	}
	return out
}

// leaks names the forgotten values found in raw.
func leaks(raw []byte) []string {
	var out []string
	for field, v := range forgotten {
		if bytes.Contains(raw, []byte(v)) {
			out = append(out, field)
		}
	}
	slices.Sort(out)
	return out
}

// persistenceCounts are how many AOF rewrites and snapshots the server
// made; ok once none is under way or scheduled.
func persistenceCounts(t *testing.T, rdb *redis.Client) (rewrites, saves int, idle bool) {
	t.Helper()
	info := rdb.Info(context.Background(), "persistence").Val()
	field := func(name string) int {
		for _, line := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
				n, _ := strconv.Atoi(v)
				return n
			}
		}
		t.Fatalf("INFO persistence has no %s:\n%s", name, info)
		return 0
	}
	idle = field("aof_rewrite_in_progress")+field("aof_rewrite_scheduled")+field("rdb_bgsave_in_progress") == 0
	return field("aof_rewrites"), field("rdb_saves"), idle
}

func forgetEverywhere(t *testing.T, redisURL string, srv *redistest.Server) {
	dir := t.TempDir()
	a, c := bootWith(t, app.Config{DataDir: dir, RedisURL: redisURL, SealEvery: -1, ExpiryEvery: -1})
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
	cf, ck := signedPlacement(t, c, af, forgotten), signedPlacement(t, c, ak, kept)
	// an application the pupil withdrew, giving a reason in their own words
	offer2 := str(c.Must(201, "POST", "/v1/offers", map[string]any{
		"employer_id": emp, "title": "Boulangerie", "description": "Pains", "sector": "s1", "grades": []string{"3e"},
		"weeks": []string{weekAhead(11)}, "seats": 1, "commune_code": "94028", "address": "3 rue", "lat": 48.79, "lon": 2.45,
	}), "id")
	aw := str(c.Must(201, "POST", "/v1/offers/"+offer2+"/applications", map[string]any{
		"pupil_id": pf, "weeks": []string{weekAhead(11)}, "motivation": "Le pain",
	}), "id")
	c.Must(200, "POST", "/v1/applications/"+aw+"/withdraw", map[string]any{"reason": forgotten["withdrawal_reason"]})
	if r := c.Do("GET", "/v1/audit/applications/"+aw, nil); !strings.Contains(r.Raw, forgotten["withdrawal_reason"]) {
		t.Fatalf("the audit before forgetting does not show the withdrawal's reason: %s", r.Raw)
	}
	head := str(c.Must(200, "POST", "/v1/applications/"+af+"/read", nil), "position") // a write after the signatures

	// before: the personal data is there, through the API only
	before := c.Must(200, "GET", "/v1/pupils/"+pf, nil)
	if str(before, "first_name") != forgotten["first_name"] {
		t.Fatalf("profile before forgetting: %v", before)
	}
	if got := c.Must(200, "GET", "/v1/applications/"+af+"?min_position="+head, nil); str(got, "motivation") != forgotten["motivation"] {
		t.Fatalf("motivation before forgetting: %v", got)
	}
	if got := signers(t, c.Must(200, "GET", "/v1/conventions/"+cf, nil)); got["pupil"] != forgotten["pupil_signer"] || got["guardian"] != forgotten["guardian_signer"] {
		t.Fatalf("signers before forgetting: %v", got)
	}
	if found := leaks(dirBytes(t, dir)); len(found) > 0 {
		t.Fatalf("stored in clear in the data directory: %v", found)
	}
	stats := c.Must(200, "GET", "/v1/stats/offers?min_position="+head, nil)
	delete(stats, "position")
	rdb := redistest.Redis{URL: redisURL}.Client(t)
	var rewrites, saves int
	if srv != nil {
		// a snapshot of before: Redis's files hold the values now, which
		// shows the scan below can see them
		waitPersistence(t, rdb, 0, 0) // what the start asked for
		r0, s0, _ := persistenceCounts(t, rdb)
		if err := rdb.BgSave(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		waitPersistence(t, rdb, r0, s0+1)
		if found := leaks(dirBytes(t, srv.Dir())); !slices.Contains(found, "motivation") || !slices.Contains(found, "pupil_signer") {
			t.Fatalf("before forgetting, redis's files hold %v: the scan cannot see what it looks for", found)
		}
		rewrites, saves, _ = persistenceCounts(t, rdb)
	}

	done := c.Must(200, "POST", "/v1/pupils/"+pf+"/forget", nil)
	pos := str(done, "position")
	c.Must(200, "GET", "/v1/applications/"+af+"?min_position="+pos, nil)
	scans := map[string][]byte{"data directory": dirBytes(t, dir), "live redis": redisDump(t, rdb)}
	if srv != nil {
		waitPersistence(t, rdb, rewrites+1, saves+1)
		scans["redis's files"] = dirBytes(t, srv.Dir())
		if !bytes.Contains(scans["redis's files"], []byte(kept["pupil_signer"])) {
			t.Error("the other pupil's data is gone from redis's files")
		}
	}
	convF := c.Must(200, "GET", "/v1/conventions/"+cf, nil)
	audit := c.Do("GET", "/v1/audit/applications/"+af, nil)
	auditCSV := c.Do("GET", "/v1/audit/applications/"+af+"?format=csv", nil)
	scans["GET /v1/conventions/{id}"] = []byte(fmt.Sprint(convF))
	scans["audit"], scans["audit csv"] = []byte(audit.Raw), []byte(auditCSV.Raw)
	scans["audit of the withdrawn application"] = []byte(c.Do("GET", "/v1/audit/applications/"+aw+"?format=csv", nil).Raw)
	for where, raw := range scans {
		if found := leaks(raw); len(found) > 0 {
			t.Errorf("the forgotten pupil's %v still readable in the %s", found, where)
		}
	}
	if got := signers(t, convF); got["pupil"] != domain.ErasedName || got["guardian"] != domain.ErasedName || got["employer"] != "Paul Tuteur" {
		t.Errorf("signers of the forgotten pupil's convention: %v", got)
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
	if got := signers(t, c.Must(200, "GET", "/v1/conventions/"+ck, nil)); got["pupil"] != kept["pupil_signer"] || got["guardian"] != kept["guardian_signer"] {
		t.Fatalf("the other pupil's signers: %v", got)
	}
	if r := c.Do("GET", "/v1/audit/applications/"+ak+"?format=csv", nil); !strings.Contains(r.Raw, kept["guardian_signer"]) {
		t.Fatalf("the other pupil's audit lost the guardian's name: %s", r.Raw)
	}
	// statistics stay right, the audit marks the erased fields
	after := c.Must(200, "GET", "/v1/stats/offers", nil)
	delete(after, "position")
	if !reflect.DeepEqual(after, stats) {
		t.Fatalf("stats changed by forgetting:\n%v\n%v", stats, after)
	}
	first := audit.Body["events"].([]any)[0].(map[string]any)
	data := first["data"].(map[string]any)
	if audit.Status != 200 || str(first, "type") != "ApplicationSubmitted" || data["erased"] != true {
		t.Fatalf("audit after forgetting: %d %v", audit.Status, first)
	}

	// the log still replays: a fresh read model rebuilt from it
	a.Close()
	fresh := redistest.Mini(t)
	_, c2 := bootWith(t, app.Config{DataDir: dir, RedisURL: fresh.URL, SealEvery: -1, ExpiryEvery: -1})
	again := c2.Must(200, "GET", "/v1/stats/offers?min_position="+pos, nil)
	delete(again, "position")
	if !reflect.DeepEqual(again, stats) {
		t.Fatalf("stats after replay:\n%v\n%v", stats, again)
	}
	if got := c2.Must(200, "GET", "/v1/applications/"+ak, nil); str(got, "motivation") != kept["motivation"] {
		t.Fatalf("the other pupil's motivation after replay: %v", got)
	}
	if got := signers(t, c2.Must(200, "GET", "/v1/conventions/"+cf, nil)); got["pupil"] != domain.ErasedName || got["guardian"] != domain.ErasedName {
		t.Errorf("signers after replay: %v", got)
	}
	if found := leaks(redisDump(t, fresh.Client(t))); len(found) > 0 {
		t.Errorf("the forgotten pupil's %v in the rebuilt read models", found)
	}
}

// waitPersistence waits until redis made at least rewrites AOF rewrites
// and saves snapshots, and none is under way.
func waitPersistence(t *testing.T, rdb *redis.Client, rewrites, saves int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, s, idle := persistenceCounts(t, rdb)
		if idle && r >= rewrites && s >= saves {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis made %d AOF rewrites and %d snapshots, want %d and %d", r, s, rewrites, saves)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
