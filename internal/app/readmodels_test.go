package app_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"passerelle/internal/app"
	"passerelle/internal/testsupport/httpclient"
	"passerelle/internal/testsupport/redistest"

	"github.com/alicebob/miniredis/v2"
)

// readModelWorld is an employer, three schools (a REP collège, an
// ordinary collège in Paris, a lycée near a QPV), pupils, and offers in
// Créteil and Lyon, some reserved.
type readModelWorld struct {
	c                                httpclient.Client
	employer                         string
	pRep, pRep2, pParis, pLycee      string
	bread, pastry, wood, lyon, lycee string
	w1, w2                           string
	last                             string // position of the last command
}

const (
	uaiParis = "0750001B"
	uaiLycee = "0940002C"
)

func setupReadModels(t *testing.T, c httpclient.Client) *readModelWorld {
	w := &readModelWorld{c: c, w1: weekAhead(8), w2: weekAhead(9)}
	w.employer = str(c.Must(201, "POST", "/v1/employers", map[string]any{
		"name": "Boulangerie Martin", "siret": siret, "kind": "company", "commune_code": "94028", "address": "1 rue de Paris",
	}), "id")
	for _, s := range []map[string]any{
		{"uai": uai, "name": "Collège Jean Macé", "kind": "college", "commune_code": "94028", "education_priority": "rep", "qpv": false},
		{"uai": uaiParis, "name": "Collège Montaigne", "kind": "college", "commune_code": "75106", "education_priority": "none", "qpv": false},
		{"uai": uaiLycee, "name": "Lycée Léon Blum", "kind": "lycee", "commune_code": "94028", "education_priority": "none", "qpv": true},
	} {
		c.Must(201, "POST", "/v1/schools", s)
	}
	pupil := func(school, grade, class string) string {
		return str(c.Must(201, "POST", "/v1/pupils", map[string]any{
			"school_uai": school, "grade": grade, "class_name": class, "first_name": "Lina", "last_name": "Benali",
			"birth_date": "2010-03-14", "guardians": []map[string]string{{"name": "Karim Benali", "email": "k@example.fr", "phone": "0612345678"}},
		}), "id")
	}
	w.pRep, w.pRep2 = pupil(uai, "3e", "3eA"), pupil(uai, "3e", "3eB")
	w.pParis, w.pLycee = pupil(uaiParis, "3e", "3eA"), pupil(uaiLycee, "2de", "2nde1")
	offer := func(title, desc, commune string, lat, lon float64, grades, weeks []string, reserved map[string]any) string {
		body := map[string]any{
			"employer_id": w.employer, "title": title, "description": desc, "sector": "s1", "grades": grades,
			"weeks": weeks, "seats": 1, "commune_code": commune, "address": "1 rue du Four", "lat": lat, "lon": lon,
		}
		if reserved != nil {
			body["reserved"] = reserved
		}
		r := c.Must(201, "POST", "/v1/offers", body)
		w.last = str(r, "position")
		return str(r, "id")
	}
	g3, g2 := []string{"3e"}, []string{"2de"}
	w.bread = offer("Découverte de la boulangerie", "Pétrissage, cuisson et vente.", "94028", 48.79, 2.455, g3, []string{w.w1, w.w2}, nil)
	w.pastry = offer("Atelier pâtisserie", "Crèmes, tartes et gâteaux.", "94028", 48.78, 2.46, g3, []string{w.w1}, map[string]any{"rep": true})
	w.wood = offer("Menuiserie", "Le bois et ses outils.", "94028", 48.80, 2.44, g3, []string{w.w1}, map[string]any{"schools": []string{uaiParis}})
	w.lyon = offer("Boulangerie lyonnaise", "Viennoiseries du matin.", "69381", 45.76, 4.83, g3, []string{w.w1}, nil)
	w.lycee = offer("Laboratoire d'analyses", "Chimie et biologie.", "94028", 48.785, 2.45, g2, []string{weekAhead(20), weekAhead(21)}, map[string]any{"qpv": true})
	return w
}

func TestLiveStatisticsAndTargets(t *testing.T) {
	redistest.EachRedis(t, func(t *testing.T, r redistest.Redis) {
		_, c := boot(t, t.TempDir(), r.URL)
		w := setupReadModels(t, c)

		app := str(c.Must(201, "POST", "/v1/offers/"+w.bread+"/applications", map[string]any{
			"pupil_id": w.pRep, "weeks": []string{w.w1}, "motivation": "J'aime le pain.",
		}), "id")
		other := str(c.Must(201, "POST", "/v1/offers/"+w.lyon+"/applications", map[string]any{
			"pupil_id": w.pRep2, "weeks": []string{w.w1}, "motivation": "J'aime Lyon.",
		}), "id")
		c.Must(200, "POST", "/v1/applications/"+app+"/accept", nil)
		conf := c.Must(200, "POST", "/v1/applications/"+app+"/confirm", nil)
		target := c.Must(200, "POST", "/v1/targets", map[string]any{"scope": "department", "code": "94", "metric": "offers_open", "target": 8})
		if str(target, "id") != "department-94-offers_open" {
			t.Fatalf("target: %v", target)
		}
		c.Must(200, "POST", "/v1/targets", map[string]any{"scope": "all", "metric": "applications", "target": 2})
		again := c.Must(200, "POST", "/v1/targets", map[string]any{"scope": "all", "metric": "applications", "target": 2})
		c.Must(422, "POST", "/v1/targets", map[string]any{"scope": "department", "code": "999", "metric": "offers_open", "target": 1})
		c.Must(422, "POST", "/v1/targets", map[string]any{"scope": "all", "metric": "smiles", "target": 1})
		c.Must(422, "POST", "/v1/targets", map[string]any{"scope": "department", "code": "94", "metric": "applications", "target": 1})

		s := c.Must(200, "GET", "/v1/stats/offers?min_position="+str(again, "position"), nil)
		check := func(what string, got, want float64) {
			t.Helper()
			if got != want {
				t.Errorf("%s: %v, want %v in %v", what, got, want, s)
			}
		}
		// 5 offers: 2+1+1+1 seat-weeks of 3e and 2 of 2de; one seat-week held
		check("offers_open", num(s, "offers_open"), 5)
		check("seats_total", num(s, "seats_total"), 7)
		check("seats_held", num(s, "seats_held"), 1)
		check("seats_available", num(s, "seats_available"), 6)
		check("applications confirmed", num(s, "applications", "confirmed"), 1)
		check("applications submitted", num(s, "applications", "submitted"), 1)
		check("conventions draft", num(s, "conventions", "draft"), 1)
		check("by_region 11", num(s, "by_region", "11", "offers_open"), 4)
		check("by_week held", num(s, "by_week", w.w1, "seats_held"), 1)
		check("by_week total", num(s, "by_week", w.w1, "seats_total"), 4)
		check("by_week w2 offers", num(s, "by_week", w.w2, "offers_open"), 1)
		targets, _ := s["targets"].([]any)
		if len(targets) != 2 {
			t.Fatalf("targets: %v", s["targets"])
		}
		all, dep := targets[0].(map[string]any), targets[1].(map[string]any)
		check("target all current", num(all, "current"), 2)
		check("target all reached", map[bool]float64{true: 1}[all["reached"] == true], 1)
		check("target 94 current", num(dep, "current"), 4)
		check("target 94 progress", num(dep, "progress"), 0.5)

		// withdrawing the other application and the offer move the figures
		c.Must(200, "POST", "/v1/applications/"+other+"/withdraw", nil)
		done := c.Must(200, "POST", "/v1/offers/"+w.lyon+"/withdraw", nil)
		s = c.Must(200, "GET", "/v1/stats/offers?min_position="+str(done, "position"), nil)
		check("offers_open after withdrawal", num(s, "offers_open"), 4)
		check("withdrawn applications", num(s, "applications", "withdrawn"), 1)
		if _, ok := s["by_region"].(map[string]any)["84"]; ok {
			t.Errorf("région 84 still counts its withdrawn offer: %v", s["by_region"])
		}
		_ = conf
	})
}

func TestFollowUpViews(t *testing.T) {
	redistest.EachRedis(t, func(t *testing.T, r redistest.Redis) {
		_, c := boot(t, t.TempDir(), r.URL)
		w := setupReadModels(t, c)
		app := str(c.Must(201, "POST", "/v1/offers/"+w.bread+"/applications", map[string]any{
			"pupil_id": w.pRep, "weeks": []string{w.w1}, "motivation": "J'aime le pain.",
		}), "id")
		sub := c.Must(201, "POST", "/v1/offers/"+w.pastry+"/applications", map[string]any{
			"pupil_id": w.pRep2, "weeks": []string{w.w1}, "motivation": "Les gâteaux !",
		})

		// the employer's inbox names no school before acceptance
		inbox := c.Must(200, "GET", "/v1/employers/"+w.employer+"/applications?min_position="+str(sub, "position"), nil)
		if num(inbox, "total") != 2 || strings.Contains(fmt.Sprint(inbox), uai) || strings.Contains(fmt.Sprint(inbox), "Benali") {
			t.Fatalf("inbox before acceptance: %v", inbox)
		}
		c.Must(200, "POST", "/v1/applications/"+app+"/accept", nil)
		conf := c.Must(200, "POST", "/v1/applications/"+app+"/confirm", nil)
		pos := str(conf, "position")
		inbox = c.Must(200, "GET", "/v1/employers/"+w.employer+"/applications?status=confirmed&min_position="+pos, nil)
		if !strings.Contains(fmt.Sprint(inbox), uai) {
			t.Fatalf("inbox after acceptance: %v", inbox)
		}

		// a pupil's follow-up, for the pupil, their guardians, their school
		fu := c.Must(200, "GET", "/v1/pupils/"+w.pRep+"/follow-up?min_position="+pos, nil)
		apps, _ := fu["applications"].([]any)
		if str(fu, "status") != "placed" || str(fu, "school_name") != "Collège Jean Macé" || str(fu, "class_name") != "3eA" || len(apps) != 1 {
			t.Fatalf("follow-up: %v", fu)
		}
		a0 := apps[0].(map[string]any)
		conv, _ := a0["convention"].(map[string]any)
		if str(a0, "offer_title") != "Découverte de la boulangerie" || str(a0, "status") != "confirmed" || str(conv, "status") != "draft" {
			t.Fatalf("follow-up application: %v", a0)
		}
		if got := str(c.Must(200, "GET", "/v1/pupils/"+w.pRep2+"/follow-up", nil), "status"); got != "applied" {
			t.Fatalf("a pupil with a pending application: %s", got)
		}
		if got := str(c.Must(200, "GET", "/v1/pupils/"+w.pParis+"/follow-up", nil), "status"); got != "none" {
			t.Fatalf("a pupil with nothing: %s", got)
		}

		// a teacher's class list and one pupil of the school
		list := c.Must(200, "GET", "/v1/schools/"+uai+"/pupils?class=3eA", nil)
		items, _ := list["items"].([]any)
		if num(list, "total") != 1 || str(items[0].(map[string]any), "pupil_id") != w.pRep || str(items[0].(map[string]any), "status") != "placed" ||
			num(items[0].(map[string]any), "applications", "confirmed") != 1 || fmt.Sprint(list["classes"]) != "[3eA 3eB]" {
			t.Fatalf("class list: %v", list)
		}
		if l := c.Must(200, "GET", "/v1/schools/"+uai+"/pupils?status=applied", nil); num(l, "total") != 1 {
			t.Fatalf("pupils with a pending application: %v", l)
		}
		if l := c.Must(200, "GET", "/v1/schools/"+uai+"/pupils?grade=2de", nil); num(l, "total") != 0 {
			t.Fatalf("no 2de in a collège: %v", l)
		}
		c.Must(200, "GET", "/v1/schools/"+uai+"/pupils/"+w.pRep, nil)
		for path, want := range map[string]int{
			"/v1/schools/" + uai + "/pupils/" + w.pParis:                       http.StatusNotFound, // not this school's
			"/v1/schools/0000000X/pupils":                                      http.StatusNotFound,
			"/v1/schools/nope/pupils":                                          http.StatusNotFound,
			"/v1/pupils/5f0c8d36-2b7a-4a8e-9f0e-5d3c1b2a4e77/follow-up":        http.StatusNotFound,
			"/v1/schools/" + uai + "/pupils?status=lost":                       http.StatusBadRequest,
			"/v1/schools/" + uai + "/pupils?colour=blue":                       http.StatusBadRequest,
			"/v1/schools/" + uai + "/pupils?class=" + strings.Repeat("x", 101): http.StatusBadRequest,
		} {
			if r := c.Do("GET", path, nil); r.Status != want {
				t.Errorf("GET %s: %d, want %d: %s", path, r.Status, want, r.Raw)
			}
		}
	})
}

// While Redis is unreachable, queries answer 503 not_ready with
// Retry-After and commands still succeed; once it is back, the service
// serves again without a restart, the commands written meanwhile included.
func TestRedisOutage(t *testing.T) {
	m := miniredis.RunT(t)
	_, c := bootWith(t, app.Config{DataDir: t.TempDir(), RedisURL: "redis://" + m.Addr(), ExpiryEvery: -1, SealEvery: -1})
	emp := c.Must(201, "POST", "/v1/employers", map[string]any{"name": "Boulangerie Martin", "siret": "73282932000074",
		"kind": "company", "commune_code": "94028", "address": "1 rue de Paris"})
	offer := func() map[string]any {
		return c.Must(201, "POST", "/v1/offers", map[string]any{"employer_id": str(emp, "id"), "title": "Fournil",
			"description": "Pétrissage", "sector": "s1", "grades": []string{"3e"}, "weeks": []string{weekAhead(6)}, "seats": 1,
			"commune_code": "94028", "address": "1 rue de Paris", "lat": 48.79, "lon": 2.455})
	}
	first := offer()
	c.Must(200, "GET", "/v1/offers/"+str(first, "id")+"?min_position="+str(first, "position"), nil)

	m.Close()
	for _, target := range []string{"/v1/offers/" + str(first, "id"), "/v1/offers?grade=3e", "/v1/stats/offers"} {
		r := c.Do("GET", target, nil)
		if r.Status != 503 || r.Header.Get("Retry-After") == "" || str(r.Body["error"].(map[string]any), "code") != "not_ready" {
			t.Fatalf("GET %s with Redis down: %d %v %v", target, r.Status, r.Header, r.Body)
		}
	}
	second := offer() // the log is the source of truth: commands go on

	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := c.Do("GET", "/v1/offers/"+str(second, "id")+"?min_position="+str(second, "position"), nil)
		if r.Status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis back for 20 s, the offer written during the outage still answers %d %v", r.Status, r.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
