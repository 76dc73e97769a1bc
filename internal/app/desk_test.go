package app_test

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"passerelle/domain"
	"passerelle/internal/app"
	"passerelle/internal/auth"
	"passerelle/internal/testsupport/httpclient"
	"passerelle/internal/testsupport/redistest"
)

// deskWorld is a small campaign near Créteil: two collèges (A in REP), a
// company and a public employer, pupils and offers that each exercise one
// rule of eligibility.
type deskWorld struct {
	company, public                            string
	schoolA, schoolB                           string
	pupilA, young, old, fourth, placed         string
	plain, companyOffer, rep, forth, full, far string
	withdrawn                                  string
	last                                       string // position of the last command
}

func buildDeskWorld(t *testing.T, bo httpclient.Client) deskWorld {
	t.Helper()
	w := deskWorld{schoolA: uai, schoolB: "0940002B"}
	var last map[string]any
	must := func(status int, path string, body any) string {
		t.Helper()
		last = bo.Must(status, "POST", path, body)
		w.last = str(last, "position")
		return str(last, "id")
	}
	w.company = must(201, "/v1/employers", validEmployer()) // a company
	pub := validEmployer()
	pub["siret"], pub["kind"], pub["name"] = "44201123456701", "public", "Mairie de Créteil"
	w.public = must(201, "/v1/employers", pub)
	must(201, "/v1/schools", validSchool()) // A: REP
	b := validSchool()
	b["uai"], b["education_priority"], b["qpv"], b["name"] = w.schoolB, "none", false, "Collège Victor Hugo"
	must(201, "/v1/schools", b)

	startA, _ := domain.ParseWeek(weekA)
	pupil := func(school, grade string, birth time.Time) string {
		p := validPupil()
		p["school_uai"], p["grade"], p["birth_date"] = school, grade, birth.Format(time.DateOnly)
		return must(201, "/v1/pupils", p)
	}
	older := startA.AddDate(-14, -6, 0)
	w.pupilA = pupil(w.schoolA, "3e", older)
	w.young = pupil(w.schoolB, "3e", startA.AddDate(-14, 0, 14)) // 14 two weeks after weekA starts: under 14 in weekA and weekB
	w.old = pupil(w.schoolB, "3e", older)
	w.fourth = pupil(w.schoolB, "4e", older)
	w.placed = pupil(w.schoolB, "3e", older)

	offer := func(employer string, edit ...any) string {
		return must(201, "/v1/offers", json.RawMessage(with(validOffer(employer), edit...)))
	}
	w.plain = offer(w.public, "weeks", []string{weekA, weekB}, "seats", 4) // more seats left than the others
	w.companyOffer = offer(w.company, "weeks", []string{weekA}, "sector", "s12")
	w.rep = offer(w.public, "reserved", map[string]any{"rep": true})
	w.forth = offer(w.public, "grades", []string{"4e"})
	w.full = offer(w.public, "weeks", []string{weekA}, "seats", 1)
	// Orléans, 105 km away: beyond the 20 km of a pupil without wishes
	w.far = offer(w.public, "commune_code", "45234", "lat", 47.9025, "lon", 1.909)
	w.withdrawn = offer(w.public)
	must(200, "/v1/offers/"+w.withdrawn+"/withdraw", nil)

	// the placed pupil takes the last seat of the full offer in weekA
	application := must(201, "/v1/offers/"+w.full+"/applications", map[string]any{"pupil_id": w.placed, "weeks": []string{weekA}, "motivation": "Oui."})
	must(200, "/v1/applications/"+application+"/accept", nil)
	must(200, "/v1/applications/"+application+"/confirm", nil)
	return w
}

// ids are the ids of the items of a desk answer, in order.
func ids(t *testing.T, page map[string]any, key string) []string {
	t.Helper()
	items, _ := page["items"].([]any)
	out := []string{}
	for _, it := range items {
		out = append(out, str(it.(map[string]any), key))
	}
	if total, _ := page["total"].(float64); int(total) != len(out) {
		t.Fatalf("total %v for %d items (one page): %v", page["total"], len(out), page)
	}
	return out
}

// checkScores: each item's score is the sum of its parts, and the items
// come best first.
func checkScores(t *testing.T, page map[string]any) {
	t.Helper()
	prev := 1e9
	for _, it := range page["items"].([]any) {
		item := it.(map[string]any)
		parts, _ := item["score_parts"].(map[string]any)
		if len(parts) < 4 {
			t.Fatalf("score_parts %v: each part is returned", parts)
		}
		sum := 0.0
		for _, v := range parts {
			sum += v.(float64)
		}
		score := item["score"].(float64)
		if d := sum - score; d > 0.011 || d < -0.011 {
			t.Errorf("score %v is not the sum of its parts %v", score, parts)
		}
		if score > prev {
			t.Errorf("score %v after %v: not best first", score, prev)
		}
		prev = score
	}
}

func TestDeskSuggestionsAndCandidates(t *testing.T) {
	redistest.EachRedis(t, func(t *testing.T, r redistest.Redis) {
		_, c := authenticated(t, app.Config{DataDir: t.TempDir(), RedisURL: r.URL, SealEvery: -1, ExpiryEvery: -1})
		bo := c.As(auth.Backoffice, "desk-agent")
		w := buildDeskWorld(t, bo)
		at := "?min_position=" + w.last
		suggestions := func(pupil string) map[string]any {
			t.Helper()
			return bo.Must(200, "GET", "/v1/pupils/"+pupil+"/suggestions"+at+"&per_page=100", nil)
		}
		for _, tc := range []struct {
			name, pupil string
			want        []string
		}{
			// not rep (reserved to REP collèges), forth (4e), full (no free seat),
			// far (105 km), withdrawn; best first: the same distance, more seats left
			{"a pupil of a school outside éducation prioritaire", w.old, []string{w.plain, w.companyOffer}},
			{"the reserved offer comes first for a pupil of a REP collège", w.pupilA, []string{w.rep, w.plain, w.companyOffer}},
			{"the company takes no pupil under 14", w.young, []string{w.plain}},
			{"a 4e pupil", w.fourth, []string{w.forth}},
			{"no week overlapping a confirmed placement", w.placed, []string{w.plain}},
		} {
			got := suggestions(tc.pupil)
			checkScores(t, got)
			if ids := ids(t, got, "id"); !slices.Equal(ids, tc.want) {
				t.Errorf("%s: suggestions %v, want %v", tc.name, ids, tc.want)
			}
		}
		first := suggestions(w.pupilA)["items"].([]any)[0].(map[string]any)
		if parts := first["score_parts"].(map[string]any); parts["reserved_for_you"] != 20.0 || first["reserved_for_you"] != true {
			t.Errorf("the reserved offer's parts: %v", first)
		}
		placed := suggestions(w.placed)["items"].([]any)[0].(map[string]any)
		if fmt := placed["weeks_for_pupil"].([]any); len(fmt) != 1 || fmt[0] != weekB {
			t.Errorf("the placed pupil can take weekB only: %v", placed["weeks_for_pupil"])
		}

		// wishes: a wished sector ranks its offers first; weeks narrow them
		pupil := c.As(auth.Pupil, w.old)
		res := pupil.Must(200, "POST", "/v1/pupils/"+w.old+"/wishes", map[string]any{"sectors": []string{"s12"}, "max_distance_km": 30})
		got := pupil.Must(200, "GET", "/v1/pupils/"+w.old+"/suggestions?min_position="+str(res, "position"), nil)
		checkScores(t, got)
		if ids := ids(t, got, "id"); !slices.Equal(ids, []string{w.companyOffer, w.plain}) {
			t.Errorf("with s12 wished first: %v", ids)
		}
		if parts := got["items"].([]any)[0].(map[string]any)["score_parts"].(map[string]any); parts["sector"] != 30.0 {
			t.Errorf("the first wished sector is worth 30: %v", parts)
		}
		guardian := c.As(auth.Guardian, auth.GuardianSubject(w.old, 1))
		res = guardian.Must(200, "POST", "/v1/pupils/"+w.old+"/wishes", map[string]any{"sectors": []string{"s12"}, "max_distance_km": 30, "weeks": []string{weekB}, "offers": []string{w.rep, w.plain}})
		got = guardian.Must(200, "GET", "/v1/pupils/"+w.old+"/suggestions?min_position="+str(res, "position"), nil)
		if ids := ids(t, got, "id"); !slices.Equal(ids, []string{w.plain}) {
			t.Errorf("weekB only (the company's offer runs in weekA): %v", ids)
		}
		if parts := got["items"].([]any)[0].(map[string]any)["score_parts"].(map[string]any); parts["offer"] != 46.0 {
			t.Errorf("the second wished offer is worth 46: %v", parts)
		}

		// candidates: the employer's own offer, anonymous, best first
		employer := c.As(auth.Employer, w.public)
		cand := employer.Must(200, "GET", "/v1/offers/"+w.plain+"/candidates"+at, nil)
		checkScores(t, cand)
		// old and young may take this offer only (scarcity 40), old wished
		// it (10) and looks further (30 km: more of the distance part); A is
		// in REP (20) with three offers; placed has a placement
		if got := ids(t, cand, "pupil_id"); !slices.Equal(got, []string{w.old, w.young, w.pupilA}) {
			t.Errorf("candidates %v, want old, young, pupilA", got)
		}
		for _, it := range cand["items"].([]any) {
			item := it.(map[string]any)
			for _, k := range slices.Sorted(maps.Keys(item)) {
				if !slices.Contains([]string{"pupil_id", "grade", "weeks", "score", "score_parts", "eligible_offers", "education_priority"}, k) {
					t.Errorf("a candidate carries %q: %v", k, item)
				}
			}
		}
		raw := employer.Do("GET", "/v1/offers/"+w.plain+"/candidates", nil).Raw
		for _, personal := range []string{"Lina", "Benali", w.schoolA, w.schoolB, "-03-", "birth", "school"} {
			if strings.Contains(raw, personal) {
				t.Errorf("the candidates name %q: %s", personal, raw)
			}
		}
		old := cand["items"].([]any)[0].(map[string]any)
		if parts := old["score_parts"].(map[string]any); old["eligible_offers"] != 1.0 || parts["scarcity"] != 40.0 || parts["offer"] != 10.0 {
			t.Errorf("the pupil with one offer, which they wished: %v", old)
		}
		if a := cand["items"].([]any)[2].(map[string]any); a["education_priority"] != "rep" || a["eligible_offers"] != 3.0 {
			t.Errorf("the REP pupil: %v", a)
		}

		// who may ask
		for _, as := range []struct {
			c    httpclient.Client
			path string
			want int
		}{
			{c.As(auth.Employer, w.company), "/v1/offers/" + w.plain + "/candidates", 403},
			{c.As(auth.Pupil, w.old), "/v1/offers/" + w.plain + "/candidates", 403},
			{c.As(auth.School, w.schoolB), "/v1/pupils/" + w.old + "/suggestions", 200},
			{c.As(auth.School, w.schoolA), "/v1/pupils/" + w.old + "/suggestions", 403},
			{c.As(auth.Pupil, w.young), "/v1/pupils/" + w.old + "/suggestions", 403},
			{c.As(auth.Employer, w.public), "/v1/pupils/" + w.old + "/suggestions", 403},
			{c.As(auth.Pupil, w.young), "/v1/pupils/" + w.old + "/wishes", 403},
		} {
			method := "GET"
			if strings.HasSuffix(as.path, "/wishes") {
				method = "POST"
			}
			if r := as.c.Do(method, as.path, map[string]any{"sectors": []string{}, "max_distance_km": 5}); r.Status != as.want {
				t.Errorf("%s %s: %d, want %d: %s", method, as.path, r.Status, as.want, r.Raw)
			}
		}
		school := c.As(auth.School, w.schoolB)
		res = school.Must(200, "POST", "/v1/pupils/"+w.young+"/wishes", map[string]any{"sectors": []string{}, "max_distance_km": 5})

		// the desk figure: school B's pupils without a placement, fewest
		// eligible offers first
		desk := school.Must(200, "GET", "/v1/desk/pupils?school="+w.schoolB+"&min_position="+str(res, "position"), nil)
		if got := ids(t, desk, "pupil_id"); !sameMembers(got, []string{w.fourth, w.old, w.young}) {
			t.Errorf("unplaced pupils of B: %v", got)
		}
		counts := map[string]float64{}
		for _, it := range desk["items"].([]any) {
			item := it.(map[string]any)
			counts[str(item, "pupil_id")] = item["eligible_offers"].(float64)
		}
		if counts[w.young] != 1 || counts[w.fourth] != 1 || counts[w.old] != 1 {
			t.Errorf("eligible offers: %v", counts)
		}
		if r := school.Do("GET", "/v1/desk/pupils?school="+w.schoolA, nil); r.Status != 403 {
			t.Errorf("another school's pupils: %d", r.Status)
		}

		// a position the log has not reached: 503 not_ready after the wait
		if r := bo.Do("GET", "/v1/pupils/"+w.old+"/suggestions?min_position=999999", nil); r.Status != 503 || r.Header.Get("Retry-After") == "" {
			t.Errorf("min_position ahead of the log: %d %s", r.Status, r.Raw)
		}
	})
}

func sameMembers(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}
