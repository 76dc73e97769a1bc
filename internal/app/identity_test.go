package app_test

import (
	"strings"
	"testing"
	"time"

	"passerelle/commands"
	"passerelle/internal/app"
	"passerelle/internal/auth"
	"passerelle/internal/testsupport/httpclient"
	"passerelle/internal/testsupport/redistest"
)

// A pupil's identity, as an employer must not learn it before hosting them.
type identity struct {
	first, last, birth, class, uai, school, guardian, email, phone string
}

// hostingSeen is what the host sees of the pupil once the pupil confirms:
// everything but the birth date.
func (p identity) hostingSeen() []string {
	return []string{p.first, p.last, p.class, p.uai, p.school, p.guardian, p.email, p.phone}
}

func (p identity) all() []string { return append(p.hostingSeen(), p.birth) }

var (
	waiting = identity{first: "Ysolde", last: "Brocéliande-Attente", birth: "2011-04-17", class: "3eQ", uai: "0947381Q",
		school: "Collège Hélène-Boucher", guardian: "Gauvain Brocéliande", email: "gauvain.b@example.fr", phone: "0677889911"}
	hosted = identity{first: "Maëlys", last: "Kervella-Accueillie", birth: "2011-09-03", class: "3eW", uai: "0756192W",
		school: "Collège Rosa-Parks", guardian: "Tanguy Kervella", email: "tanguy.k@example.fr", phone: "0655443322"}
)

// employerWorld: employers A and B; pupils waiting and hosted of two
// schools, both applying to A's offer; B has an offer of its own.
type employerWorld struct {
	empA, empB, offerA, offerB, pupilWaiting, pupilHosted, appWaiting, appHosted, conv string
}

// employerRow is one request an employer can make. placement: the
// request is about A's placement, which B is refused.
type employerRow struct {
	route     string
	path      func(w employerWorld) string
	body      map[string]any
	placement bool
}

// probe is a body every command refuses before deciding anything (an
// unknown field): the employer's commands are called without changing the
// world, and their error answers are scanned too.
func probe(kv ...any) map[string]any {
	m := map[string]any{"zzz_probe": true}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// employerRows lists every route an employer can call, on employer A's
// resources. TestEmployerSeesIdentityOnlyWhenHosting fails when a declared
// route lets an employer in and is not listed here.
func employerRows() []employerRow {
	fixed := func(p string) func(employerWorld) string { return func(employerWorld) string { return p } }
	return []employerRow{
		{route: "GET /healthz", path: fixed("/healthz")},
		{route: "GET /readyz", path: fixed("/readyz")},
		{route: "GET /metrics", path: fixed("/metrics")},
		{route: "GET /openapi.json", path: fixed("/openapi.json")},
		{route: "GET /", path: fixed("/")},                           // the dashboard's page
		{route: "GET /assets/{name}", path: fixed("/assets/app.js")}, // and its files
		{route: "GET /v1/offers", path: fixed("/v1/offers")},
		{route: "POST /api/v2/auth/login", path: fixed("/api/v2/auth/login")}, // public: an operator's sign-in
		{route: "GET /v1/offers/{id}", path: func(w employerWorld) string { return "/v1/offers/" + w.offerA }},
		{route: "GET /v1/stats/offers", path: fixed("/v1/stats/offers")},
		{route: "GET /v1/stats/stream", path: fixed("/v1/stats/stream")}, // the figures of /v1/stats/offers, unread
		{route: "GET /v1/applications/{id}", path: func(w employerWorld) string { return "/v1/applications/" + w.appWaiting }, placement: true},
		{route: "GET /v1/applications/{id}", path: func(w employerWorld) string { return "/v1/applications/" + w.appHosted }, placement: true},
		{route: "GET /v1/employers/{id}/applications", path: func(w employerWorld) string { return "/v1/employers/" + w.empA + "/applications" }, placement: true},
		{route: "GET /v1/conventions/{id}", path: func(w employerWorld) string { return "/v1/conventions/" + w.conv }, placement: true},
		{route: "GET /v1/conventions/{id}/document", path: func(w employerWorld) string { return "/v1/conventions/" + w.conv + "/document" }, placement: true},
		{route: "GET /v1/offers/{id}/candidates", path: func(w employerWorld) string { return "/v1/offers/" + w.offerA + "/candidates" }, placement: true},
		{route: "POST /v1/offers", path: fixed("/v1/offers"), body: probe("employer_id", "")}, // employer_id set per caller
		{route: "POST /v1/offers/{id}/withdraw", path: func(w employerWorld) string { return "/v1/offers/" + w.offerA + "/withdraw" }, body: probe(), placement: true},
		{route: "POST /v1/offers/{id}/amend", path: func(w employerWorld) string { return "/v1/offers/" + w.offerA + "/amend" }, body: probe(), placement: true},
		{route: "POST /v1/offers/{id}/reopen", path: func(w employerWorld) string { return "/v1/offers/" + w.offerA + "/reopen" }, body: probe(), placement: true},
		{route: "POST /v1/applications/{id}/read", path: func(w employerWorld) string { return "/v1/applications/" + w.appWaiting + "/read" }, body: probe(), placement: true},
		{route: "POST /v1/applications/{id}/accept", path: func(w employerWorld) string { return "/v1/applications/" + w.appWaiting + "/accept" }, body: probe(), placement: true},
		{route: "POST /v1/applications/{id}/reject", path: func(w employerWorld) string { return "/v1/applications/" + w.appWaiting + "/reject" }, body: probe(), placement: true},
		{route: "POST /v1/applications/{id}/cancel", path: func(w employerWorld) string { return "/v1/applications/" + w.appHosted + "/cancel" }, body: probe(), placement: true},
		{route: "POST /v1/conventions/{id}/complete", path: func(w employerWorld) string { return "/v1/conventions/" + w.conv + "/complete" }, body: probe("party", "employer"), placement: true},
		{route: "POST /v1/conventions/{id}/cancel", path: func(w employerWorld) string { return "/v1/conventions/" + w.conv + "/cancel" }, body: probe(), placement: true},
		{route: "POST /v1/conventions/{id}/signatures", path: func(w employerWorld) string { return "/v1/conventions/" + w.conv + "/signatures" }, body: probe("role", "employer"), placement: true},
	}
}

// TestEmployerSeesIdentityOnlyWhenHosting calls every route an employer can
// call, with authentication on: before acceptance no answer names the
// pupils, their school, class or birth date; once a pupil confirms, their
// employer reads that pupil's name, class and school and the guardian's
// contact in the convention's document, and nothing of the pupil still
// waiting; another employer is refused every route of that placement.
func TestEmployerSeesIdentityOnlyWhenHosting(t *testing.T) {
	redistest.EachRedis(t, testEmployerSeesIdentityOnlyWhenHosting)
}

func testEmployerSeesIdentityOnlyWhenHosting(t *testing.T, rd redistest.Redis) {
	issuer, err := auth.NewHMAC([]byte(strings.Repeat("i", 32)), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, c := bootWith(t, app.Config{DataDir: t.TempDir(), RedisURL: rd.URL, Verifier: issuer, SealEvery: -1, ExpiryEvery: -1})
	c.Token = func(role, subject string) string {
		tok, err := issuer.Issue(auth.Principal{Role: role, Subject: subject}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	bo := c.As(auth.Backoffice, "agent")
	w := employerWorld{}
	employer := func(name, siret string) string {
		return str(bo.Must(201, "POST", "/v1/employers", map[string]any{"name": name, "siret": siret, "kind": "company", "commune_code": "94028", "address": "1 rue"}), "id")
	}
	w.empA, w.empB = employer("Boulangerie A", siret), employer("Fromagerie B", "44201123456701")
	pupil := func(p identity) string {
		bo.Must(201, "POST", "/v1/schools", map[string]any{"uai": p.uai, "name": p.school, "kind": "college", "commune_code": "94028", "education_priority": "none", "qpv": false})
		return str(bo.Must(201, "POST", "/v1/pupils", map[string]any{"school_uai": p.uai, "grade": "3e", "class_name": p.class, "first_name": p.first,
			"last_name": p.last, "birth_date": p.birth, "guardians": []any{map[string]any{"name": p.guardian, "email": p.email, "phone": p.phone}}}), "id")
	}
	w.pupilWaiting, w.pupilHosted = pupil(waiting), pupil(hosted)
	offer := func(emp string) string {
		return str(bo.Must(201, "POST", "/v1/offers", map[string]any{"employer_id": emp, "title": "Stage", "description": "Découverte", "sector": "s1",
			"grades": []any{"3e"}, "weeks": []any{weekAhead(12)}, "seats": 2, "commune_code": "94028", "address": "1 rue", "lat": 48.79, "lon": 2.455}), "id")
	}
	w.offerA, w.offerB = offer(w.empA), offer(w.empB)
	apply := func(p string) string {
		return str(c.As(auth.Pupil, p).Must(201, "POST", "/v1/offers/"+w.offerA+"/applications", map[string]any{"pupil_id": p, "weeks": []any{weekAhead(12)}, "motivation": "Le pain"}), "id")
	}
	w.appWaiting, w.appHosted = apply(w.pupilWaiting), apply(w.pupilHosted)
	w.conv = commands.ConventionID(w.appHosted)

	rows := employerRows()
	call := func(as httpclient.Client, r employerRow, emp string) httpclient.Reply {
		method, _, _ := strings.Cut(r.route, " ")
		body := any(nil)
		if r.body != nil {
			b := map[string]any{}
			for k, v := range r.body {
				b[k] = v
			}
			if _, ok := b["employer_id"]; ok {
				b["employer_id"] = emp
			}
			body = b
		}
		return as.Do(method, r.path(w), body)
	}
	reveals := func(raw string, values []string) []string {
		var found []string
		for _, v := range values {
			if strings.Contains(raw, v) {
				found = append(found, v)
			}
		}
		return found
	}
	asA, asB := c.As(auth.Employer, w.empA), c.As(auth.Employer, w.empB)
	caughtUp := func() {
		t.Helper()
		bo.Must(200, "GET", "/v1/applications/"+w.appHosted+"?min_position="+logHead(t, c), nil)
	}

	// Before acceptance: nothing of either pupil.
	caughtUp()
	for _, r := range rows {
		got := call(asA, r, w.empA)
		if found := reveals(got.Raw, append(waiting.all(), hosted.all()...)); len(found) > 0 {
			t.Errorf("before acceptance, %s (%s) shows employer A %v: %.400s", r.route, r.path(w), found, got.Raw)
		}
	}

	// The hosted pupil is accepted, then confirms.
	accepted := asA.Do("POST", "/v1/applications/"+w.appHosted+"/accept", nil)
	if accepted.Status != 200 || len(reveals(accepted.Raw, hosted.all())) > 0 {
		t.Fatalf("accept: %d %s", accepted.Status, accepted.Raw)
	}
	confirmed := c.As(auth.Pupil, w.pupilHosted).Must(200, "POST", "/v1/applications/"+w.appHosted+"/confirm", nil)
	if str(confirmed, "convention_id") != w.conv {
		t.Fatalf("confirm: %v", confirmed)
	}
	caughtUp()

	// After confirmation: the host reads its pupil's identity in the
	// document, and nowhere the pupil still waiting nor a birth date.
	revealed := false
	for _, r := range rows {
		got := call(asA, r, w.empA)
		if found := reveals(got.Raw, append(waiting.all(), hosted.birth)); len(found) > 0 {
			t.Errorf("after confirmation, %s (%s) shows employer A %v: %.400s", r.route, r.path(w), found, got.Raw)
		}
		if r.route != "GET /v1/conventions/{id}/document" {
			// the school may show once accepted (the inbox, the
			// application), the names only in the document
			if found := reveals(got.Raw, []string{hosted.first, hosted.last, hosted.guardian, hosted.email, hosted.phone}); len(found) > 0 {
				t.Errorf("after confirmation, %s (%s) shows employer A %v outside the document: %.400s", r.route, r.path(w), found, got.Raw)
			}
			continue
		}
		revealed = true
		if got.Status != 200 {
			t.Fatalf("the host's convention document: %d %s", got.Status, got.Raw)
		}
		if found := reveals(got.Raw, hosted.hostingSeen()); len(found) != len(hosted.hostingSeen()) {
			t.Errorf("the host's convention document shows %v of %v: %s", found, hosted.hostingSeen(), got.Raw)
		}
	}
	if !revealed {
		t.Fatal("no row reads the convention document")
	}

	// Another employer: refused on A's placement, and sees no identity.
	for _, r := range rows {
		got := call(asB, r, w.empB)
		if r.placement && got.Status != 403 {
			t.Errorf("employer B on A's placement, %s (%s): %d, want 403: %.300s", r.route, r.path(w), got.Status, got.Raw)
		}
		if found := reveals(got.Raw, append(waiting.all(), hosted.all()...)); len(found) > 0 {
			t.Errorf("%s (%s) shows employer B %v: %.400s", r.route, r.path(w), found, got.Raw)
		}
	}

	// Every other declared route refuses employer A, on any of its
	// resources: the table above is every route an employer can call.
	listed := map[string]bool{}
	for _, r := range rows {
		listed[r.route] = true
	}
	ids := []string{w.offerA, w.appWaiting, w.appHosted, w.conv, w.empA, w.pupilWaiting, w.pupilHosted}
	for _, rt := range a.Routes() {
		if listed[rt.Key()] {
			continue
		}
		for _, id := range ids {
			path := strings.NewReplacer("{id}", id, "{uai}", hosted.uai).Replace(rt.Pattern)
			if got := asA.Do(rt.Method, path, probe("employer_id", w.empA)); got.Status != 403 {
				t.Errorf("%s (%s) answers employer A %d: an employer can call it, list it in employerRows", rt.Key(), path, got.Status)
				break
			}
		}
	}

	// Forgotten: the document keeps no name, even for its host, and the
	// read models never held one.
	if page := asA.Do("GET", "/v1/conventions/"+w.conv+"/document?format=html", nil); !strings.Contains(page.Raw, hosted.first) {
		t.Fatalf("the page's document does not name the pupil its host hosts: %d %s", page.Status, page.Raw)
	}
	bo.Must(200, "POST", "/v1/pupils/"+w.pupilHosted+"/forget", nil)
	caughtUp()
	if found := reveals(string(redisDump(t, rd.Client(t))), []string{hosted.first, hosted.last, hosted.guardian, hosted.email, hosted.phone, hosted.birth}); len(found) > 0 {
		t.Errorf("Redis holds %v of a forgotten pupil", found)
	}
	doc := asA.Do("GET", "/v1/conventions/"+w.conv+"/document", nil)
	if doc.Status != 200 || doc.Body["personal_data_erased"] != true {
		t.Fatalf("the document of a forgotten pupil: %d %s", doc.Status, doc.Raw)
	}
	if found := reveals(doc.Raw, []string{hosted.first, hosted.last, hosted.guardian, hosted.email, hosted.phone, hosted.birth}); len(found) > 0 {
		t.Errorf("the document of a forgotten pupil shows %v", found)
	}
	// the page's rendering is made anew from the log, not kept from before
	page := asA.Do("GET", "/v1/conventions/"+w.conv+"/document?format=html", nil)
	if found := reveals(page.Raw, []string{hosted.first, hosted.last, hosted.guardian, hosted.email, hosted.phone}); page.Status != 200 || len(found) > 0 {
		t.Errorf("the page's document of a forgotten pupil: %d, shows %v", page.Status, found)
	}
}
