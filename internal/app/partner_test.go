package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"passerelle/commands"
	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/internal/app"
	"passerelle/internal/auth"
	"passerelle/internal/testsupport/httpclient"
	"passerelle/internal/testsupport/redistest"
)

// The partner API's tests run at a date of the 2025–2026 school year, so
// that the national seconde period (June 2026) is still ahead.
var partnerNow = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func partnerConfig(t *testing.T, rd redistest.Redis) app.Config {
	return app.Config{DataDir: t.TempDir(), RedisURL: rd.URL, SealEvery: -1, ExpiryEvery: -1, ReconcileGrace: -1,
		Clock: func() time.Time { return partnerNow }}
}

// operatorAccount registers an operator account through the back office
// and signs it in: a client carrying its v2 token.
func operatorAccount(t *testing.T, c httpclient.Client, email string, departments []string) (string, httpclient.Client) {
	t.Helper()
	bo := c.As(auth.Backoffice, "agent-1")
	id := str(bo.Must(201, "POST", "/v1/operators", map[string]any{"name": "Opérateur " + email, "email": email,
		"password": "correct horse battery staple", "departments": departments}), "id")
	tok := str(c.Must(200, "POST", "/api/v2/auth/login", map[string]any{"email": email, "password": "correct horse battery staple"}), "token")
	op := c
	op.Token = func(string, string) string { return tok }
	return id, op.As(auth.Operator, id)
}

// v2Offer is a realistic push: a bakery in Paris 11e for 3e pupils,
// changed by kv.
func v2Offer(remoteID string, kv ...any) map[string]any {
	o := map[string]any{
		"title": "Découverte du métier de boulanger", "description": "Pétrissage, façonnage, cuisson et vente au comptoir.",
		"employer_name": "Boulangerie du Marché", "employer_description": "Boulangerie artisanale de quartier depuis 1987.",
		"employer_website": "https://boulangerie-du-marche.example", "street": "12 rue Oberkampf", "zipcode": "75011", "city": "Paris",
		"coordinates": map[string]any{"latitude": 48.8652, "longitude": 2.3771}, "sector_uuid": "s1",
		"weeks": []string{"2026-W12", "2026-W13"}, "grades": []string{"troisieme"}, "remote_id": remoteID,
		"permalink": "https://operateur.example/offres/" + remoteID, "max_candidates": 4, "is_public": true,
		"handicap_accessible": true, "lunch_break": "12:00 – 13:00", "daily_hours": map[string]any{"lundi": []string{"9:00", "16:00"}},
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(o, kv[i].(string))
			continue
		}
		o[kv[i].(string)] = kv[i+1]
	}
	return map[string]any{"internship_offer": o}
}

// v2Error checks a partner API error: status and {"code", "error"}.
func v2Error(t *testing.T, r httpclient.Reply, status int, code string) {
	t.Helper()
	if r.Status != status || r.Body == nil || r.Body["code"] != code || r.Body["error"] == nil || len(r.Body) != 2 {
		t.Errorf("want %d %s, got %d %s", status, code, r.Status, r.Raw)
	}
}

func v2Total(t *testing.T, c httpclient.Client, target string) (int, []any) {
	t.Helper()
	b := c.Must(200, "GET", target, nil)
	offers, _ := b["internshipOffers"].([]any)
	return int(num(b, "pagination", "totalInternshipOffers")), offers
}

func remoteIDs(offers []any) []string {
	var out []string
	for _, o := range offers {
		out = append(out, str(o.(map[string]any), "remote_id"))
	}
	slices.Sort(out)
	return out
}

func TestPartnerAPI(t *testing.T) {
	redistest.EachRedis(t, testPartnerAPI)
}

func testPartnerAPI(t *testing.T, rd redistest.Redis) {
	_, c := authenticated(t, partnerConfig(t, rd))
	opID, op := operatorAccount(t, c, "api@vvmt.example", []string{"75", "92", "93", "94"})
	_, other := operatorAccount(t, c, "flux@autre.example", nil)

	// a feed: 3e and 4e offers around Paris, seconde offers for the national period
	feed := []map[string]any{
		v2Offer("bk-1"),
		v2Offer("bk-2", "grades", []string{"quatrieme", "troisieme"}, "title", "Fournil et pâtisserie", "max_candidates", 2),
		v2Offer("gar-1", "employer_name", "Garage Voltaire", "sector_uuid", "s5", "title", "Mécanique automobile",
			"description", "Diagnostic et entretien des véhicules.", "street", "3 boulevard Voltaire", "coordinates", map[string]any{"latitude": 48.8606, "longitude": 2.3698}),
		v2Offer("iv-1", "zipcode", "94200", "city", "Ivry-sur-Seine", "street", "1 place Voltaire", "coordinates", nil, "weeks", []string{"2026-W14"}),
		v2Offer("sec-1", "grades", []string{"seconde"}, "weeks", domain.SecondePeriod, "title", "Stage de seconde en laboratoire",
			"sector_uuid", "s12", "zipcode", "92100", "city", "Boulogne-Billancourt", "coordinates", map[string]any{"latitude": 48.8353, "longitude": 2.2410}),
		v2Offer("sec-2", "grades", []string{"seconde"}, "weeks", domain.SecondePeriod, "title", "Stage de seconde en mairie",
			"sector_uuid", "s3", "zipcode", "93200", "city", "Saint-Denis", "coordinates", map[string]any{"latitude": 1.0, "longitude": 1.0}),
	}
	for _, o := range feed {
		got := op.Must(201, "POST", "/api/v2/internship_offers", o)
		want := o["internship_offer"].(map[string]any)
		if got["remote_id"] != want["remote_id"] || got["permalink"] != want["permalink"] || got["title"] != want["title"] {
			t.Fatalf("created %v, pushed %v", got, want)
		}
	}
	// the commune's centre, said so, when the coordinates are missing or far off
	for _, remote := range []string{"iv-1", "sec-2"} {
		r := op.Do("PATCH", "/api/v2/internship_offers/"+remote, map[string]any{"internship_offer": map[string]any{}})
		if r.Status != 200 || r.Body["coordinates"].(map[string]any)["latitude"] == 1.0 {
			t.Errorf("%s: %d %s", remote, r.Status, r.Raw)
		}
	}
	r := op.Do("POST", "/api/v2/internship_offers", v2Offer("far", "coordinates", map[string]any{"latitude": 1.0, "longitude": 1.0}))
	if r.Status != 201 || !strings.Contains(r.Raw, "(75111), its centre was taken") || r.Body["coordinates"].(map[string]any)["latitude"] == 1.0 {
		t.Errorf("1.0/1.0 in Paris: %d %s", r.Status, r.Raw)
	}

	// ordinary offers: in our own search, with their operator, and in the statistics
	page := c.Must(200, "GET", "/v1/offers?department=75&per_page=100&min_position="+logHead(t, c), nil)
	if n := num(page, "total"); n != 4 {
		t.Errorf("GET /v1/offers?department=75: %v offers, want 4: %s", n, fmt.Sprint(page))
	}
	items := page["items"].([]any)
	partner, _ := items[0].(map[string]any)["partner"].(map[string]any)
	if partner["operator_id"] != opID || partner["remote_id"] == "" || !strings.HasPrefix(str(partner, "permalink"), "https://operateur.example/") {
		t.Errorf("an offer pushed keeps its operator, remote_id and permalink: %v", items[0])
	}
	stats := c.As(auth.Statistician, "insee").Must(200, "GET", "/v1/stats/offers?min_position="+logHead(t, c), nil)
	if num(stats, "offers_open") != 7 || num(stats, "by_grade", "2de", "offers_open") != 2 || num(stats, "by_department", "94", "offers_open") != 1 {
		t.Errorf("statistics: %v", stats)
	}
	checkPartnerQueries(t, op, other)
	checkPartnerChanges(t, c, op, other)
	checkPartnerErrors(t, c, op)
}

// checkPartnerQueries lists and searches the pushed offers.
func checkPartnerQueries(t *testing.T, op, other httpclient.Client) {
	t.Helper()
	n, offers := v2Total(t, op, "/api/v2/internship_offers")
	if n != 7 || len(offers) != 7 {
		t.Errorf("the operator's offers: %d, %d listed", n, len(offers))
	}
	if n, _ := v2Total(t, other, "/api/v2/internship_offers"); n != 0 {
		t.Errorf("another operator lists %d offers", n)
	}
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"latitude=48.8606&longitude=2.3698&radius=2000", []string{"bk-1", "bk-2", "far", "gar-1"}}, // around Voltaire, 2 km
		{"latitude=48.8606&longitude=2.3698", []string{"bk-1", "bk-2", "far", "gar-1", "iv-1", "sec-1", "sec-2"}},
		{"latitude=48.8353&longitude=2.2410&radius=1000", []string{"sec-1"}},
		{"keyword=mécanique", []string{"gar-1"}},
		{"keyword=patisserie", []string{"bk-2"}},
		{"keyword=la+patisserie", []string{"bk-2"}}, // "la", a common word, in no text
		{"weeks[]=2026-W14", []string{"iv-1"}},
		{"weeks[]=2026-W14&weeks[]=2026-W25", []string{"iv-1", "sec-1", "sec-2"}},
		{"sectors[]=s5&sectors[]=s12", []string{"gar-1", "sec-1"}},
		{"grades[]=seconde", []string{"sec-1", "sec-2"}},
		{"grades[]=quatrieme", []string{"bk-2"}},
		{"grades[]=quatrieme&grades[]=seconde&sectors[]=s1", []string{"bk-2"}},
	} {
		n, offers := v2Total(t, op, "/api/v2/internship_offers/search?"+c.query)
		if got := remoteIDs(offers); n != len(c.want) || !slices.Equal(got, c.want) {
			t.Errorf("search %s: %d %v, want %v", c.query, n, got, c.want)
		}
	}
	b := op.Must(200, "GET", "/api/v2/internship_offers/search?latitude=48.8606&longitude=2.3698&page=1", nil)
	p := b["pagination"].(map[string]any)
	if p["internshipOffersPerPage"] != 30.0 || p["totalPages"] != 1.0 || p["currentPage"] != 1.0 || p["nextPage"] != nil ||
		p["prevPage"] != nil || p["isFirstPage"] != true || p["isLastPage"] != true {
		t.Errorf("pagination %v", p)
	}
	sectors := op.Do("GET", "/api/v2/sectors", nil)
	if sectors.Status != 200 || !strings.HasPrefix(sectors.Raw, `[{"name":"Agroéquipement","uuid":"s1"}`) || strings.Count(sectors.Raw, `"uuid"`) != 51 {
		t.Errorf("sectors: %d %.200s", sectors.Status, sectors.Raw)
	}
}

// checkPartnerChanges updates, unpublishes, republishes and deletes.
func checkPartnerChanges(t *testing.T, c, op, other httpclient.Client) {
	t.Helper()
	patch := func(remote string, fields map[string]any) map[string]any {
		return op.Must(200, "PATCH", "/api/v2/internship_offers/"+remote, map[string]any{"internship_offer": fields})
	}
	got := patch("bk-1", map[string]any{"title": "Boulangerie : fournil et vente", "max_candidates": 6, "employer_description": "Artisan boulanger"})
	if got["title"] != "Boulangerie : fournil et vente" || got["max_candidates"] != 6.0 || got["employer_description"] != "Artisan boulanger" {
		t.Errorf("updated: %v", got)
	}
	search := func(query string) []string {
		_, offers := v2Total(t, op, "/api/v2/internship_offers/search?"+query)
		return remoteIDs(offers)
	}
	if got := search("keyword=boulangerie+fournil"); !slices.Equal(got, []string{"bk-1"}) {
		t.Errorf("after the update: %v", got)
	}
	if got := patch("bk-1", map[string]any{"published_at": nil}); got["published_at"] != nil {
		t.Errorf("unpublished: %v", got)
	}
	if got := search("sectors[]=s1"); slices.Contains(got, "bk-1") {
		t.Errorf("an unpublished offer is found: %v", got)
	}
	if _, offers := v2Total(t, op, "/api/v2/internship_offers"); len(offers) != 7 {
		t.Errorf("an unpublished offer stays the operator's: %d", len(offers))
	}
	patch("bk-1", map[string]any{"published_at": "2026-03-03T08:00:00Z"})
	if got := search("sectors[]=s1"); !slices.Contains(got, "bk-1") {
		t.Errorf("a republished offer is not found: %v", got)
	}
	v2Error(t, other.Do("PATCH", "/api/v2/internship_offers/bk-1", map[string]any{"internship_offer": map[string]any{"title": "x"}}), 404, "NOT_FOUND")
	v2Error(t, other.Do("DELETE", "/api/v2/internship_offers/bk-1", nil), 404, "NOT_FOUND")
	op.Must(200, "DELETE", "/api/v2/internship_offers/gar-1", nil)
	v2Error(t, op.Do("DELETE", "/api/v2/internship_offers/gar-1", nil), 409, "API_ALREADY_DESTROYED")
	v2Error(t, op.Do("PATCH", "/api/v2/internship_offers/gar-1", map[string]any{"internship_offer": map[string]any{"published_at": "2026-03-04"}}), 409, "API_ALREADY_DESTROYED")
	if got := search("sectors[]=s5"); len(got) != 0 {
		t.Errorf("a deleted offer is found: %v", got)
	}
	if n, _ := v2Total(t, op, "/api/v2/internship_offers"); n != 6 {
		t.Errorf("a deleted offer is listed: %d", n)
	}
	v2Error(t, op.Do("POST", "/api/v2/internship_offers", v2Offer("gar-1")), 409, "DUPLICATE_API")
	if n := num(c.As(auth.Statistician, "insee").Must(200, "GET", "/v1/stats/offers?min_position="+logHead(t, c), nil), "offers_open"); n != 6 {
		t.Errorf("statistics after a delete: %v open", n)
	}
}

// checkPartnerErrors sends what the national API refuses, code by code.
func checkPartnerErrors(t *testing.T, c, op httpclient.Client) {
	t.Helper()
	push := func(body any) httpclient.Reply { return op.Do("POST", "/api/v2/internship_offers", body) }
	for _, bad := range []struct {
		name  string
		body  any
		field string
	}{
		{"title over 150", v2Offer("e1", "title", strings.Repeat("é", 151)), "title"},
		{"no description", v2Offer("e2", "description", nil), "description"},
		{"employer_description over 275", v2Offer("e3", "employer_description", strings.Repeat("a", 276)), "employer_description"},
		{"unknown sector", v2Offer("e4", "sector_uuid", "s52"), "sector_uuid"},
		{"a postal code of 4 digits", v2Offer("e5", "zipcode", "7501"), "zipcode"},
		{"no such postal code", v2Offer("e6", "zipcode", "00000"), "zipcode"},
		{"a grade of ours", v2Offer("e7", "grades", []string{"3e"}), "grades"},
		{"a week that is not one", v2Offer("e8", "weeks", []string{"2026-W54"}), "weeks"},
		{"remote_id over 60", v2Offer(strings.Repeat("r", 61)), "remote_id"},
		{"permalink not a URL", v2Offer("e9", "permalink", "ici"), "permalink"},
		{"max_candidates 0", v2Offer("e10", "max_candidates", 0), "max_candidates"},
		{"max_candidates 6001", v2Offer("e11", "max_candidates", 6001), "max_candidates"},
		{"a week already over", v2Offer("e12", "weeks", []string{"2026-W02"}), "weeks"},
		{"an unknown field", v2Offer("e13", "colour", "blue"), "internship_offer.colour"},
		{"daily hours of another shape", v2Offer("e14", "daily_hours", map[string]any{"lundi": []string{"9h"}}), "daily_hours"},
	} {
		r := push(bad.body)
		v2Error(t, r, 400, "VALIDATION_ERROR")
		if fields, _ := r.Body["error"].(map[string]any); fields[bad.field] == nil {
			t.Errorf("%s: the error does not name %s: %s", bad.name, bad.field, r.Raw)
		}
	}
	v2Error(t, push(map[string]any{}), 422, "BAD_PAYLOAD")
	v2Error(t, push(v2Offer("p1", "grades", nil)), 422, "BAD_PAYLOAD")
	v2Error(t, push(v2Offer("p2", "weeks", []string{})), 422, "BAD_PAYLOAD")
	v2Error(t, push(v2Offer("p3", "grades", []string{"troisieme", "seconde"})), 422, "WRONG_PARAMS")
	v2Error(t, push(v2Offer("p4", "grades", []string{"seconde"}, "weeks", []string{"2026-W25"})), 422, "WRONG_PARAMS")
	v2Error(t, push(v2Offer("p5", "zipcode", "13001", "city", "Marseille")), 403, "FORBIDDEN") // outside the operator's départements
	v2Error(t, op.Do("PATCH", "/api/v2/internship_offers/never-pushed", map[string]any{"internship_offer": map[string]any{}}), 404, "NOT_FOUND")
	v2Error(t, op.Do("PATCH", "/api/v2/internship_offers/bk-2", map[string]any{"internship_offer": map[string]any{"sector_uuid": "s2"}}), 400, "VALIDATION_ERROR")

	anonymous := c
	anonymous.Token = nil
	v2Error(t, anonymous.Do("GET", "/api/v2/internship_offers", nil), 401, "UNAUTHORIZED")
	v2Error(t, anonymous.Do("GET", "/api/v2/sectors", nil, "Authorization", "Bearer not-a-token"), 401, "UNAUTHORIZED")
	v2Error(t, c.As(auth.Employer, neverCreated).Do("GET", "/api/v2/sectors", nil), 403, "FORBIDDEN")
	bad := c.Do("POST", "/api/v2/auth/login", map[string]any{"email": "api@vvmt.example", "password": "not the password"})
	if bad.Status != 401 || bad.Raw != `{"error":"Invalid email or password"}`+"\n" {
		t.Errorf("a wrong password: %d %s", bad.Status, bad.Raw)
	}
	if r := c.Do("POST", "/api/v2/auth/login", map[string]any{"email": "nobody@vvmt.example", "password": "correct horse battery staple"}); r.Status != 401 {
		t.Errorf("an unknown e-mail: %d %s", r.Status, r.Raw)
	}
	// 100 calls a minute per operator: the calls above and these spend them
	var last httpclient.Reply
	for range 110 {
		if last = op.Do("GET", "/api/v2/sectors", nil); last.Status == 429 {
			break
		}
	}
	v2Error(t, last, 429, "TOO_MANY_REQUESTS")
	if last.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

// Two pushes of one remote_id at once: the store lets one in.
func TestPartnerConcurrentPushes(t *testing.T) {
	redistest.EachRedis(t, func(t *testing.T, rd redistest.Redis) {
		a, c := authenticated(t, partnerConfig(t, rd))
		opID, op := operatorAccount(t, c, "api@vvmt.example", nil)
		for round := range 5 {
			remote := fmt.Sprintf("race-%d", round)
			var wg sync.WaitGroup
			replies := make([]httpclient.Reply, 2)
			for i := range replies {
				wg.Go(func() { replies[i] = op.With(t).Do("POST", "/api/v2/internship_offers", v2Offer(remote)) })
			}
			wg.Wait()
			statuses := []int{replies[0].Status, replies[1].Status}
			slices.Sort(statuses)
			if !slices.Equal(statuses, []int{201, 409}) {
				t.Fatalf("two pushes of %s: %d %s / %d %s", remote, replies[0].Status, replies[0].Raw, replies[1].Status, replies[1].Raw)
			}
			for _, r := range replies {
				if r.Status == 409 {
					v2Error(t, r, 409, "DUPLICATE_API")
				}
			}
			evs, err := a.Store.ReadStream(context.Background(), domain.OfferStream(commands.PartnerOfferID(opID, remote)), eventstore.Forwards, 0, 0)
			if err != nil || len(evs) != 1 || evs[0].Type != "OfferPosted" {
				t.Fatalf("the offer's stream: %d events, %v", len(evs), err)
			}
		}
	})
}

// The same feed of 1,000 offers pushed twice: 1,000 offers, the second
// pass refused offer by offer, and nothing appended by it.
func TestPartnerFeedReplay(t *testing.T) {
	redistest.EachRedis(t, func(t *testing.T, rd redistest.Redis) {
		cfg := partnerConfig(t, rd)
		cfg.PartnerRateLimit = -1 // a whole feed at once
		a, c := authenticated(t, cfg)
		_, op := operatorAccount(t, c, "api@vvmt.example", nil)
		const n = 1000
		places := []struct{ zip, city string }{{"75011", "Paris"}, {"94200", "Ivry-sur-Seine"}, {"69003", "Lyon"}, {"33000", "Bordeaux"}, {"59000", "Lille"}}
		feed := make([]map[string]any, n)
		for i := range feed {
			p := places[i%len(places)]
			grades, weeks := []string{"troisieme"}, []string{fmt.Sprintf("2026-W%02d", 12+i%10)}
			if i%4 == 0 {
				grades, weeks = []string{"seconde"}, domain.SecondePeriod
			}
			feed[i] = v2Offer(fmt.Sprintf("feed-%04d", i), "zipcode", p.zip, "city", p.city, "coordinates", nil,
				"employer_name", fmt.Sprintf("Employeur %d", i%50), "sector_uuid", fmt.Sprintf("s%d", 1+i%51), "grades", grades, "weeks", weeks)
		}
		pass := func(want int, code string) {
			t.Helper()
			var wg sync.WaitGroup
			jobs := make(chan map[string]any)
			for range 8 {
				wg.Go(func() {
					for o := range jobs {
						r := op.With(t).Do("POST", "/api/v2/internship_offers", o)
						if r.Status != want || (code != "" && r.Body["code"] != code) {
							t.Errorf("%v: %d %s", o["internship_offer"].(map[string]any)["remote_id"], r.Status, r.Raw)
						}
					}
				})
			}
			for _, o := range feed {
				jobs <- o
			}
			close(jobs)
			wg.Wait()
		}
		ctx := context.Background()
		start := time.Now()
		pass(201, "")
		t.Logf("first pass: %d pushes in %v", n, time.Since(start).Round(time.Millisecond))
		head, err := a.Store.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		pass(409, "DUPLICATE_API")
		t.Logf("second pass: %d pushes refused in %v; log head %s before and after", n, time.Since(start).Round(time.Millisecond), head)
		if again, err := a.Store.Head(ctx); err != nil || again != head {
			t.Fatalf("the second pass moved the log from %s to %s (%v)", head, again, err)
		}
		if total, _ := v2Total(t, op, "/api/v2/internship_offers?min_position="+head.String()); total != n {
			t.Errorf("%d offers listed, want %d", total, n)
		}
		if got := num(c.Must(200, "GET", "/v1/offers?per_page=1&min_position="+head.String(), nil), "total"); got != n {
			t.Errorf("GET /v1/offers: %v offers, want %d", got, n)
		}
	})
}

// FuzzPartnerPush posts arbitrary bodies to POST /api/v2/internship_offers:
// never a 5xx, an error always {"code", "error"}, and a refused push
// appends nothing.
func FuzzPartnerPush(f *testing.F) {
	fa := bootFuzz(f)
	fa.c.Raw("POST", "/v1/operators", "", []byte(with(validOperator())))
	login := fa.c.Raw("POST", "/api/v2/auth/login", "", []byte(`{"email":"api@vvmt.example","password":"`+operatorPassword+`"}`))
	token := "Bearer " + str(login.Body, "token")
	for _, body := range []string{"", "{}", "null", `{"internship_offer":null}`, `{"internship_offer":[]}`, "{", `{"internship_offer":{"grades":["seconde"],"weeks":["2026-W25"]}}`,
		with(validPush("f-1")), with(validPush("f-2"), "internship_offer", map[string]any{"zipcode": "75011"}), "\xff"} {
		f.Add([]byte(body))
	}
	push := validPush("f-3")["internship_offer"].(map[string]any)
	f.Add([]byte(with(map[string]any{"internship_offer": json.RawMessage(with(push, "coordinates", map[string]any{"latitude": 1e308, "longitude": -1e308}, "max_candidates", 6000))})))
	f.Add([]byte(with(map[string]any{"internship_offer": json.RawMessage(with(push, "daily_hours", map[string]any{"lundi": []any{"9:00"}}, "weeks", []string{"2026-W99"}))})))
	f.Fuzz(func(t *testing.T, body []byte) {
		before := fa.logHead(t)
		r := fa.c.With(t).Raw("POST", "/api/v2/internship_offers", "", body, "Authorization", token)
		// 429: past the operator's 100 calls a minute
		if r.Status >= 500 || !slices.Contains([]int{201, 400, 403, 409, 413, 415, 422, 429}, r.Status) {
			t.Fatalf("%q: %d %s", body, r.Status, r.Raw)
		}
		if r.Status == 201 {
			if str(r.Body, "remote_id") == "" || str(r.Body, "id") == "" {
				t.Fatalf("%q: created without ids: %s", body, r.Raw)
			}
			return
		}
		if r.Body == nil || str(r.Body, "code") == "" || r.Body["error"] == nil || len(r.Body) != 2 {
			t.Fatalf("%q: %d is not the partner API's error: %s", body, r.Status, r.Raw)
		}
		if after := fa.logHead(t); after != before {
			t.Fatalf("%q: %d, yet the log moved from %d to %d", body, r.Status, before, after)
		}
	})
}
