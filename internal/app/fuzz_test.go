package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"passerelle/internal/app"
	"passerelle/internal/route"
	"passerelle/internal/testsupport/httpclient"
)

// fuzzApp is one Passerelle over an in-process Redis (miniredis), driven
// through its handler without a network, with a little state to aim at.
type fuzzApp struct {
	a        *app.App
	c        httpclient.Client // straight to the handler: any path reaches the router
	employer string
	offer    string
	pupil    string // registered, never applied
	// a collective offer and a group booking on it
	collective, booking string
	submitted           string // an application in each state
	rejected            string
	confirmed           string
	conv                string
	hash                string
	head                uint64 // the log position after the setup
}

func bootFuzz(tb testing.TB) *fuzzApp {
	tb.Helper()
	// nothing in the background moves the log (a seal, an expiry, the
	// reconciler settling a placement): a rejected command must leave it
	// where it was, and a seed once failed when an event written in the
	// background landed during a rejected confirm
	a, err := app.Open(app.Config{DataDir: tb.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		SealEvery: -1, ExpiryEvery: -1, ReconcileGrace: -1})
	if err != nil {
		tb.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		a.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() { a.Close() })
	fa := &fuzzApp{a: a, c: httpclient.ForHandler(tb, a.Handler())}
	must := func(want int, method, path string, body any) map[string]any {
		tb.Helper()
		var raw []byte
		if body != nil {
			raw, _ = json.Marshal(body)
		}
		path, query, _ := strings.Cut(path, "?")
		r := fa.c.Raw(method, path, query, raw)
		if r.Status != want {
			tb.Fatalf("setup %s %s: %d %s", method, path, r.Status, r.Raw)
		}
		return r.Body
	}
	fa.employer = str(must(201, "POST", "/v1/employers", validEmployer()), "id")
	must(201, "POST", "/v1/schools", validSchool())
	var pupils []string
	for range 4 {
		pupils = append(pupils, str(must(201, "POST", "/v1/pupils", validPupil()), "id"))
	}
	fa.pupil = pupils[3]
	fa.offer = str(must(201, "POST", "/v1/offers", validOffer(fa.employer)), "id")
	group := validOffer(fa.employer)
	group["collective"] = true
	collective := str(must(201, "POST", "/v1/offers", group), "id")
	fa.booking = str(must(201, "POST", "/v1/offers/"+collective+"/group-bookings", map[string]any{
		"school_uai": uai, "pupil_ids": []string{pupils[0]}, "weeks": []string{weekB}}), "id")
	fa.collective = collective
	apply := func(pupil, week string) string {
		return str(must(201, "POST", "/v1/offers/"+fa.offer+"/applications", map[string]any{
			"pupil_id": pupil, "weeks": []string{week}, "motivation": "Curieux.",
		}), "id")
	}
	fa.submitted = apply(pupils[0], weekA)
	fa.rejected = apply(pupils[1], weekA)
	must(200, "POST", "/v1/applications/"+fa.rejected+"/reject", map[string]any{"reason": "complet"})
	fa.confirmed = apply(pupils[2], weekB)
	must(200, "POST", "/v1/applications/"+fa.confirmed+"/accept", nil)
	conf := must(200, "POST", "/v1/applications/"+fa.confirmed+"/confirm", nil)
	fa.conv = str(conf, "convention_id")
	must(200, "POST", "/v1/conventions/"+fa.conv+"/complete", employerPart())
	done := must(200, "POST", "/v1/conventions/"+fa.conv+"/complete", schoolPart())
	fa.hash = str(must(200, "GET", "/v1/conventions/"+fa.conv+"?min_position="+str(done, "position"), nil), "document_hash")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.WaitCaughtUp(ctx); err != nil {
		tb.Fatal(err)
	}
	head, err := a.Store.Head(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	fa.head = uint64(head)
	return fa
}

func (fa *fuzzApp) logHead(t *testing.T) uint64 {
	t.Helper()
	h, err := fa.a.Store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return uint64(h)
}

// commands are the declared command routes, each with the id it is aimed
// at when the fuzzer gives none and a valid body to start from. A command
// without them fails the fuzz test, naming it.
type fuzzCommand struct {
	route.Route
	id     string
	valid  []byte
	fields []string // the JSON fields of its declared body
}

func (fa *fuzzApp) commands(tb testing.TB) []fuzzCommand {
	tb.Helper()
	js := func(v any) []byte { b, _ := json.Marshal(v); return b }
	aims := map[string]struct {
		id    string
		valid []byte
	}{
		"POST /v1/employers":                      {"", []byte(with(validEmployer()))},
		"POST /v1/schools":                        {"", []byte(with(validSchool()))},
		"POST /v1/pupils":                         {"", []byte(with(validPupil()))},
		"POST /v1/pupils/{id}/forget":             {fa.pupil, []byte("")},
		"POST /v1/offers":                         {"", []byte(with(validOffer(fa.employer), "daily_hours", map[string]any{"start": "09:00", "end": "16:00", "lunch_break_minutes": 60}, "reserved", map[string]any{"rep": true}))},
		"POST /v1/offers/{id}/amend":              {fa.offer, js(map[string]any{"title": "Fournil", "seats": 3, "group_size": 2, "family_business": true, "reserved": map[string]any{"schools": []string{uai}}})},
		"POST /v1/offers/{id}/reopen":             {fa.offer, []byte("")},
		"POST /v1/offers/{id}/withdraw":           {fa.offer, js(map[string]any{"reason": "fin de saison"})},
		"POST /v1/offers/{id}/applications":       {fa.offer, js(map[string]any{"pupil_id": fa.pupil, "weeks": []string{weekB}, "motivation": "Curieux."})},
		"POST /v1/applications/{id}/read":         {fa.submitted, []byte("{}")},
		"POST /v1/applications/{id}/cancel":       {fa.confirmed, js(map[string]any{"reason": "fermeture"})},
		"POST /v1/applications/{id}/accept":       {fa.submitted, []byte("{}")},
		"POST /v1/applications/{id}/reject":       {fa.submitted, js(map[string]any{"reason": "complet"})},
		"POST /v1/applications/{id}/withdraw":     {fa.rejected, []byte("")},
		"POST /v1/applications/{id}/confirm":      {fa.confirmed, []byte("{}")},
		"POST /v1/conventions/{id}/complete":      {fa.conv, []byte(with(employerPart()))},
		"POST /v1/conventions/{id}/cancel":        {fa.conv, js(map[string]any{"reason": "fermeture"})},
		"POST /v1/conventions/{id}/signatures":    {fa.conv, js(map[string]any{"role": "pupil", "signer_name": "Lina", "document_hash": fa.hash})},
		"POST /v1/targets":                        {"", js(map[string]any{"scope": "department", "code": "94", "metric": "offers_open", "target": 10})},
		"POST /v1/operators/{id}/employers":       {"op-fuzz", js(map[string]any{"employer_ids": []string{fa.employer}})},
		"POST /v1/offers/{id}/proposals":          {fa.offer, js(map[string]any{"pupil_id": fa.pupil, "weeks": []string{weekB}})},
		"POST /v1/offers/{id}/group-bookings":     {fa.collective, js(map[string]any{"school_uai": uai, "pupil_ids": []string{fa.pupil}, "weeks": []string{weekA}})},
		"POST /v1/group-bookings/{id}/signatures": {fa.booking, js(map[string]any{"role": "employer", "signer_name": "Paul Martin"})},
		"POST /v1/operators":                      {"", js(validOperator())},
		"POST /v1/pupils/{id}/wishes":             {fa.pupil, js(map[string]any{"sectors": []string{"s12"}, "max_distance_km": 10, "weeks": []string{weekB}, "offers": []string{fa.offer}})},
		"POST /v1/campaigns":                      {"", js(map[string]any{"name": "Val-de-Marne", "departments": []string{"94"}, "grades": []string{"3e"}, "weeks": []string{weekB}})},
		"POST /v1/campaigns/{id}/rounds":          {neverCreated, js(map[string]any{"seed": 7, "max_choices": 5})},
		"POST /v1/rounds/{id}/publish":            {neverCreated, []byte("")},
	}
	var out []fuzzCommand
	for _, rt := range fa.a.Routes() {
		if rt.Method != http.MethodPost || strings.HasPrefix(rt.Pattern, "/api/v2/") {
			continue // the partner API answers in its own words: FuzzPartnerPush
		}
		aim, ok := aims[rt.Key()]
		if !ok {
			tb.Fatalf("the command %s has no fuzz target: add it to aims", rt.Key())
		}
		fields, _ := route.BodyFields(rt.Body)
		out = append(out, fuzzCommand{Route: rt, id: aim.id, valid: aim.valid, fields: fields})
	}
	return out
}

// path is the command's path with {id} replaced by id, or by its own
// target when id is empty.
func (c fuzzCommand) path(id string) string {
	if id == "" {
		id = c.id
	}
	return strings.Replace(c.Pattern, "{id}", id, 1)
}

// checkAnswer fails on a 5xx and on anything but a JSON object: a command
// response {id, position} for a success, the error envelope otherwise.
func checkAnswer(t *testing.T, what string, rec httpclient.Reply, allowed ...int) {
	t.Helper()
	body := []byte(rec.Raw)
	if rec.Status >= 500 {
		t.Fatalf("%s: %d %s", what, rec.Status, body)
	}
	if len(allowed) > 0 && !containsInt(allowed, rec.Status) {
		t.Fatalf("%s: status %d, not one of %v: %s", what, rec.Status, allowed, body)
	}
	if ct := rec.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s: content type %q: %s", what, ct, body)
	}
	if rec.Status >= 400 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		var env struct {
			Error *contractError `json:"error"`
		}
		if err := dec.Decode(&env); err != nil || env.Error == nil || env.Error.Code == "" || env.Error.Message == "" {
			t.Fatalf("%s: %d is not the error envelope (%v): %s", what, rec.Status, err, body)
		}
		if env.Error.Code == "validation_failed" && len(env.Error.Fields) == 0 {
			t.Fatalf("%s: validation_failed names no field: %s", what, body)
		}
		return
	}
	var ok map[string]any
	if err := json.Unmarshal(body, &ok); err != nil {
		t.Fatalf("%s: %d with a body that is not a JSON object (%v): %s", what, rec.Status, err, body)
	}
	if str(ok, "id") == "" || str(ok, "position") == "" {
		t.Fatalf("%s: %d without id and position: %s", what, rec.Status, body)
	}
}

func errorCode(body []byte) string {
	var env struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &env)
	return env.Error.Code
}

func containsInt(xs []int, x int) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// FuzzCommandBodies posts arbitrary bodies to every command route: the
// answer is never a 5xx and always well-formed JSON.
func FuzzCommandBodies(f *testing.F) {
	fa := bootFuzz(f)
	commands := fa.commands(f)
	index := func(key string) uint8 {
		for i, c := range commands {
			if c.Key() == key {
				return uint8(i)
			}
		}
		f.Fatalf("%s is not a declared command", key)
		return 0
	}
	for i := range commands {
		for _, body := range []string{"", "{}", "null", "[]", `"x"`, "{", `{"zzz":1}`, `{} x`, `{"a":1} {"b":2}`, "\xff\xfe", `{"reason":"ok"}`} {
			f.Add(uint8(i), "", []byte(body))
		}
		f.Add(uint8(i), neverCreated, []byte("{}"))
		f.Add(uint8(i), "..%2F..", []byte("{}"))
		f.Add(uint8(i), "é", []byte(""))
	}
	// the valid bodies in the order of a placement, so that each finds its
	// target in the state it needs
	for _, key := range []string{"POST /v1/employers", "POST /v1/schools", "POST /v1/pupils", "POST /v1/offers",
		"POST /v1/offers/{id}/withdraw", "POST /v1/offers/{id}/applications", "POST /v1/applications/{id}/accept",
		"POST /v1/applications/{id}/reject", "POST /v1/applications/{id}/withdraw", "POST /v1/applications/{id}/confirm",
		"POST /v1/conventions/{id}/signatures", "POST /v1/offers/{id}/amend", "POST /v1/offers/{id}/reopen",
		"POST /v1/applications/{id}/read", "POST /v1/applications/{id}/cancel", "POST /v1/conventions/{id}/complete",
		"POST /v1/conventions/{id}/cancel", "POST /v1/pupils/{id}/forget", "POST /v1/targets", "POST /v1/operators",
		"POST /v1/pupils/{id}/wishes"} {
		f.Add(index(key), "", commands[index(key)].valid)
	}
	f.Add(index("POST /v1/offers"), "", []byte(with(validOffer(fa.employer), "seats", 1e300, "lat", -1e-320)))
	f.Add(index("POST /v1/pupils"), "", []byte(with(validPupil(), "guardians", []any{map[string]any{"name": 1}})))
	f.Add(index("POST /v1/conventions/{id}/complete"), "", []byte(with(schoolPart(), "both_guardians", true)))
	f.Add(index("POST /v1/conventions/{id}/complete"), "", []byte(with(employerPart(), "tutor", map[string]any{"name": "x", "email": "a@b", "phone": "+33 6 12 34 56 78"})))
	f.Add(index("POST /v1/offers/{id}/amend"), "", []byte(`{"weeks":["`+weekB+`"],"seats":1}`))
	f.Add(index("POST /v1/conventions/{id}/signatures"), "", []byte(`{"role":"guardian","signer_name":"`+strings.Repeat("\\u0000", 50)+`","document_hash":"`+strings.ToUpper(fa.hash)+`"}`))

	f.Fuzz(func(t *testing.T, n uint8, id string, body []byte) {
		cmd := commands[int(n)%len(commands)]
		path := cmd.path(id)
		before := fa.logHead(t)
		rec := fa.c.With(t).Raw("POST", path, "", body)
		what := "POST " + path
		checkAnswer(t, what, rec, 200, 201, 400, 404, 405, 409, 413, 422)
		if rec.Status >= 400 {
			if after := fa.logHead(t); after != before {
				t.Fatalf("%s: %d, yet the log moved from %d to %d: %s", what, rec.Status, before, after, rec.Raw)
			}
			return
		}
		// A command ran: its body was one JSON object (or nothing) whose
		// fields, spelt exactly, are the route's.
		trimmed := bytes.TrimSpace(body)
		if len(trimmed) == 0 || string(trimmed) == "null" {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		var top map[string]json.RawMessage
		if err := dec.Decode(&top); err != nil {
			t.Fatalf("%s: %d for a body that is not a JSON object (%v): %q", what, rec.Status, err, body)
		}
		if _, err := dec.Token(); err != io.EOF {
			t.Fatalf("%s: %d for a body with more than one JSON value: %q", what, rec.Status, body)
		}
		for k := range top {
			if !slices.Contains(cmd.fields, k) {
				t.Fatalf("%s: %d for a body with the field %q, which its declared body does not have: %q", what, rec.Status, k, body)
			}
		}
	})
}

// FuzzQueryParams sends arbitrary query strings to GET /v1/offers: never a
// 5xx, a well-formed page or error, a page only for valid parameters, and
// the same answer twice.
func FuzzQueryParams(f *testing.F) {
	fa := bootFuzz(f)
	for _, q := range []string{
		"", "grade=3e", "grade=5e", "sector=s1", "sector=s1&department=94&commune=94028",
		"week=" + weekA, "week=" + weekA + "&available=true", "available=true", "available=yes", "week=2026-W60",
		"near=48.79,2.455", "near=48.79,2.455&radius_km=5", "near=48.79,2.455&radius_km=-1", "near=abc", "near=,",
		"radius_km=5", "page=2&per_page=1", "page=0", "per_page=1000", "page=1000000&per_page=100",
		"min_position=0", "min_position=-3", "min_position=abc", "colour=blue", "grade=3e&grade=4e",
		"near=-85,-180&radius_km=1000", "near=1e2,2", "%ZZ=1", "a;b=c", "sector=" + strings.Repeat("x", 11),
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		req := httptest.NewRequest("GET", "/v1/offers", nil)
		req.URL.RawQuery = rawQuery
		q := req.URL.Query()
		if mp, err := strconv.ParseUint(q.Get("min_position"), 10, 64); err == nil && mp > fa.head {
			t.Skip("a position never reached only waits 5 s for a 503")
		}
		rec := fa.c.With(t).Raw("GET", "/v1/offers", rawQuery, nil)
		what := "GET /v1/offers?" + rawQuery
		if rec.Status >= 500 {
			t.Fatalf("%s: %d %s", what, rec.Status, rec.Raw)
		}
		switch rec.Status {
		case 200:
			var pg struct {
				Items   []map[string]any `json:"items"`
				Total   int              `json:"total"`
				Page    int              `json:"page"`
				PerPage int              `json:"per_page"`
				Pos     string           `json:"position"`
			}
			if err := json.Unmarshal([]byte(rec.Raw), &pg); err != nil || pg.Items == nil {
				t.Fatalf("%s: not a page (%v): %s", what, err, rec.Raw)
			}
			if pg.Page < 1 || pg.PerPage < 1 || pg.PerPage > 100 || len(pg.Items) > pg.PerPage || pg.Total < len(pg.Items) || pg.Pos == "" {
				t.Fatalf("%s: inconsistent page: %s", what, rec.Raw)
			}
			// A page means every parameter was valid.
			if near := q.Get("near"); near != "" {
				lat, lon, ok := strings.Cut(near, ",")
				la, err1 := strconv.ParseFloat(lat, 64)
				lo, err2 := strconv.ParseFloat(lon, 64)
				if !ok || err1 != nil || err2 != nil || math.IsNaN(la) || math.IsNaN(lo) || math.Abs(la) > 85 || math.Abs(lo) > 180 {
					t.Fatalf("%s: near=%q accepted", what, near)
				}
				for _, it := range pg.Items {
					if _, ok := it["distance_km"].(float64); !ok {
						t.Fatalf("%s: an item without distance_km: %s", what, rec.Raw)
					}
				}
			}
		case 400:
			checkAnswer(t, what, rec, 400)
		default:
			t.Fatalf("%s: status %d: %s", what, rec.Status, rec.Raw)
		}
		// The same query gets the same status and code. (Which of several
		// bad parameters an error names is pinned by TestBadQueryAnswersAlike.)
		again := fa.c.With(t).Raw("GET", "/v1/offers", rawQuery, nil)
		if again.Status != rec.Status || (rec.Status == 200 && !sameJSON(again.Raw, rec.Raw)) ||
			errorCode([]byte(again.Raw)) != errorCode([]byte(rec.Raw)) {
			t.Fatalf("%s: answered %d %s, then %d %s", what, rec.Status, rec.Raw, again.Status, again.Raw)
		}
	})
}
