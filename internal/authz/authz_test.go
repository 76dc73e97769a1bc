package authz_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"passerelle/commands"
	"passerelle/domain"
	"passerelle/domain/refdata"
	"passerelle/eventstore"
	"passerelle/internal/app"
	"passerelle/internal/auth"
	"passerelle/internal/authz"
	"passerelle/internal/route"
	"passerelle/internal/testsupport/httpclient"
	"passerelle/internal/testsupport/redistest"
)

// world is two tenants, A and B: each with an employer, a school, a pupil,
// an offer and an application; A's application is confirmed (convention).
type world struct {
	empA, empB, uaiA, uaiB, pupilA, pupilB, offerA, offerB, appA, appB, convA string
	bookingA                                                                  string // school A's group booking on employer A's collective offer
}

func build(t *testing.T, store eventstore.Store) world {
	t.Helper()
	svc := commands.NewService(store, refdata.MustLoad())
	ctx := context.Background()
	n := 0
	meta := func(role, subject string) commands.Meta {
		n++
		return commands.Meta{CommandID: "w" + string(rune('a'+n)) + time.Now().Format("150405.000000000"),
			Actor: eventstore.Actor{Role: role, Subject: subject}, Now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	}
	must := func(r commands.Result, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	w := world{uaiA: "0941234A", uaiB: "0751234B"}
	// operator A registered employer A; the back office linked operator B
	// to employer B: each operator acts for its tenant's employer only
	w.empA = must(svc.RegisterEmployer(ctx, meta("operator", "op-A"), domain.RegisterEmployerInput{Name: "A", SIRET: "73282932000074", Kind: "public", CommuneCode: "94028", Address: "a"}))
	w.empB = must(svc.RegisterEmployer(ctx, meta("backoffice", "bo"), domain.RegisterEmployerInput{Name: "B", SIRET: "44201123456701", Kind: "public", CommuneCode: "75056", Address: "b"}))
	must(svc.LinkOperator(ctx, meta("backoffice", "bo"), "op-B", []string{w.empB}))
	for _, uai := range []string{w.uaiA, w.uaiB} {
		must(svc.RegisterSchool(ctx, meta("backoffice", "bo"), domain.RegisterSchoolInput{UAI: uai, Name: uai, Kind: "college", CommuneCode: "94028", EducationPriority: "none"}))
	}
	pupil := func(uai string) string {
		return must(svc.RegisterPupil(ctx, meta("school", uai), domain.RegisterPupilInput{SchoolUAI: uai, Grade: "3e", ClassName: "3e", FirstName: "P", LastName: uai,
			BirthDate: "2011-05-01", Guardians: []domain.Guardian{{Name: "G", Email: "g@example.fr", Phone: "0600000000"}}}))
	}
	w.pupilA, w.pupilB = pupil(w.uaiA), pupil(w.uaiB)
	offer := func(emp, role, subject string) string {
		return must(svc.PostOffer(ctx, meta(role, subject), commands.PostOfferInput{EmployerID: emp, PostOfferInput: domain.PostOfferInput{
			Title: "t", Description: "d", Sector: "s1", Grades: []string{"3e"}, Weeks: []string{"2027-W05"}, Seats: 2,
			CommuneCode: "94028", Address: "a", Lat: 48.8, Lon: 2.4}}))
	}
	w.offerA, w.offerB = offer(w.empA, "operator", "op-A"), offer(w.empB, "employer", w.empB)
	apply := func(offer, pupil string) string {
		return must(svc.Apply(ctx, meta("pupil", pupil), commands.ApplyInput{OfferID: offer, PupilID: pupil,
			SubmitInput: domain.SubmitInput{Weeks: []string{"2027-W05"}, Motivation: "m"}}))
	}
	w.appA, w.appB = apply(w.offerA, w.pupilA), apply(w.offerB, w.pupilB)
	must(svc.Accept(ctx, meta("employer", w.empA), w.appA))
	res, err := svc.Confirm(ctx, meta("pupil", w.pupilA), w.appA)
	if err != nil {
		t.Fatal(err)
	}
	w.convA = res.ConventionID
	group := must(svc.PostOffer(ctx, meta("employer", w.empA), commands.PostOfferInput{EmployerID: w.empA, PostOfferInput: domain.PostOfferInput{
		Title: "atelier", Description: "d", Sector: "s1", Grades: []string{"3e"}, Weeks: []string{"2027-W06"}, Seats: 4,
		CommuneCode: "94028", Address: "a", Lat: 48.8, Lon: 2.4, Collective: true}}))
	w.bookingA = must(svc.Book(ctx, meta("school", w.uaiA), group, commands.BookingInput{SchoolUAI: w.uaiA, PupilIDs: []string{w.pupilA}, Weeks: []string{"2027-W06"}}))
	return w
}

// subjects of each role on the A side and on the B side.
func (w world) subject(role string, a bool) string {
	pick := func(x, y string) string {
		if a {
			return x
		}
		return y
	}
	switch role {
	case auth.Pupil:
		return pick(w.pupilA, w.pupilB)
	case auth.Guardian:
		return auth.GuardianSubject(pick(w.pupilA, w.pupilB), 1)
	case auth.School:
		return pick(w.uaiA, w.uaiB)
	case auth.Employer:
		return pick(w.empA, w.empB)
	case auth.Operator:
		return pick("op-A", "op-B")
	}
	return role + pick("-1", "-2")
}

// row is one request of the table: who may do it. "any": every subject of
// the role; "own": only the A-side subject (the resources are A's).
type row struct {
	route  string // METHOD pattern
	path   string
	body   map[string]any
	allow  map[string]string
	public bool
}

const anyone, own = "any", "own"

func rows(w world) []row {
	o, a, c := "/v1/offers/"+w.offerA, "/v1/applications/"+w.appA, "/v1/conventions/"+w.convA
	users := func(extra ...string) map[string]string {
		m := map[string]string{}
		for _, r := range append([]string{auth.Pupil, auth.Guardian, auth.School, auth.Employer, auth.Operator, auth.Backoffice}, extra...) {
			m[r] = anyone
		}
		return m
	}
	bo := func(m map[string]string) map[string]string { m[auth.Backoffice] = anyone; return m }
	sign := func(role, who string) row {
		return row{route: "POST /v1/conventions/{id}/signatures", path: c + "/signatures", body: map[string]any{"role": role}, allow: map[string]string{who: own}}
	}
	groupSign := func(role, who string) row {
		return row{route: "POST /v1/group-bookings/{id}/signatures", path: "/v1/group-bookings/" + w.bookingA + "/signatures", body: map[string]any{"role": role}, allow: map[string]string{who: own}}
	}
	return []row{
		{route: "POST /v1/offers/{id}/proposals", path: o + "/proposals", body: map[string]any{"pupil_id": w.pupilA}, allow: bo(map[string]string{auth.School: own})},
		{route: "POST /v1/offers/{id}/group-bookings", path: o + "/group-bookings", body: map[string]any{"school_uai": w.uaiA}, allow: bo(map[string]string{auth.School: own})},
		groupSign("employer", auth.Employer),
		groupSign("school_head", auth.School),
		{route: "POST /v1/group-bookings/{id}/signatures", path: "/v1/group-bookings/" + w.bookingA + "/signatures", body: map[string]any{"role": "pupil"}, allow: map[string]string{auth.Employer: own, auth.School: own}},
		{route: "POST /v1/employers", path: "/v1/employers", allow: bo(map[string]string{auth.Operator: anyone})},
		{route: "POST /v1/schools", path: "/v1/schools", allow: bo(map[string]string{})},
		{route: "POST /v1/pupils", path: "/v1/pupils", body: map[string]any{"school_uai": w.uaiA}, allow: bo(map[string]string{auth.School: own})},
		{route: "POST /v1/offers", path: "/v1/offers", body: map[string]any{"employer_id": w.empA}, allow: bo(map[string]string{auth.Employer: own, auth.Operator: own})},
		{route: "POST /v1/offers", path: "/v1/offers", body: map[string]any{"employer_id": w.empB}, allow: bo(map[string]string{auth.Employer: "B", auth.Operator: "B"})},
		{route: "POST /v1/offers", path: "/v1/offers", body: map[string]any{"employer_id": "00000000-0000-4000-8000-000000000000"}, allow: bo(map[string]string{})},
		{route: "POST /v1/operators/{id}/employers", path: "/v1/operators/op-A/employers", body: map[string]any{"employer_ids": []string{w.empB}}, allow: bo(map[string]string{})},
		{route: "POST /v1/offers/{id}/withdraw", path: o + "/withdraw", allow: bo(map[string]string{auth.Employer: own, auth.Operator: own})},
		{route: "POST /v1/offers/{id}/amend", path: o + "/amend", allow: bo(map[string]string{auth.Employer: own, auth.Operator: own})},
		{route: "POST /v1/offers/{id}/reopen", path: "/v1/offers/" + w.offerB + "/reopen", allow: bo(map[string]string{auth.Employer: "B", auth.Operator: "B"})},
		{route: "POST /v1/offers/{id}/applications", path: o + "/applications", body: map[string]any{"pupil_id": w.pupilA}, allow: bo(map[string]string{auth.Pupil: own, auth.Guardian: own})},
		{route: "POST /v1/applications/{id}/read", path: a + "/read", allow: bo(map[string]string{auth.Employer: own})},
		{route: "POST /v1/applications/{id}/accept", path: a + "/accept", allow: bo(map[string]string{auth.Employer: own})},
		{route: "POST /v1/applications/{id}/reject", path: a + "/reject", allow: bo(map[string]string{auth.Employer: own})},
		{route: "POST /v1/applications/{id}/cancel", path: a + "/cancel", allow: bo(map[string]string{auth.Employer: own})},
		{route: "POST /v1/applications/{id}/withdraw", path: a + "/withdraw", allow: bo(map[string]string{auth.Pupil: own, auth.Guardian: own})},
		{route: "POST /v1/applications/{id}/confirm", path: a + "/confirm", allow: bo(map[string]string{auth.Pupil: own, auth.Guardian: own})},
		{route: "POST /v1/conventions/{id}/complete", path: c + "/complete", body: map[string]any{"party": "employer"}, allow: bo(map[string]string{auth.Employer: own})},
		{route: "POST /v1/conventions/{id}/complete", path: c + "/complete", body: map[string]any{"party": "school"}, allow: bo(map[string]string{auth.School: own})},
		{route: "POST /v1/conventions/{id}/cancel", path: c + "/cancel", allow: bo(map[string]string{auth.Employer: own, auth.School: own})},
		sign("employer", auth.Employer),
		sign("school_head", auth.School),
		sign("pupil", auth.Pupil),
		sign("guardian", auth.Guardian),
		sign("second_guardian", auth.Guardian),
		{route: "GET /v1/offers", path: "/v1/offers", public: true},
		{route: "GET /v1/offers", path: "/v1/offers?grade=3e&for_pupil=", allow: bo(map[string]string{})},
		{route: "GET /v1/offers", path: "/v1/offers?for_pupil=" + w.pupilA, allow: bo(map[string]string{auth.Pupil: own, auth.Guardian: own, auth.School: own})},
		{route: "GET /v1/offers", path: "/v1/offers?for_pupil=00000000-0000-4000-8000-000000000000", allow: bo(map[string]string{})},
		{route: "GET /v1/offers/{id}", path: o, public: true},
		{route: "GET /v1/stats/offers", path: "/v1/stats/offers", allow: users(auth.Statistician)},
		{route: "GET /v1/stats/stream", path: "/v1/stats/stream", allow: users(auth.Statistician)},
		{route: "GET /v1/stats/placements", path: "/v1/stats/placements", allow: map[string]string{auth.Backoffice: anyone, auth.Statistician: anyone, auth.School: anyone}},
		{route: "GET /v1/applications/{id}", path: a, allow: bo(map[string]string{auth.Pupil: own, auth.Guardian: own, auth.School: own, auth.Employer: own})},
		{route: "GET /v1/conventions/{id}", path: c, allow: bo(map[string]string{auth.Pupil: own, auth.Guardian: own, auth.School: own, auth.Employer: own})},
		{route: "GET /v1/conventions/{id}/document", path: c + "/document", allow: bo(map[string]string{auth.Pupil: own, auth.Guardian: own, auth.School: own, auth.Employer: own})},
		{route: "GET /v1/pupils/{id}/applications", path: "/v1/pupils/" + w.pupilA + "/applications", allow: bo(map[string]string{auth.Pupil: own, auth.Guardian: own, auth.School: own})},
		{route: "GET /v1/pupils/{id}", path: "/v1/pupils/" + w.pupilA, allow: bo(map[string]string{auth.Pupil: own, auth.Guardian: own, auth.School: own})},
		{route: "POST /v1/pupils/{id}/forget", path: "/v1/pupils/" + w.pupilA + "/forget", allow: bo(map[string]string{})},
		{route: "GET /v1/employers/{id}/applications", path: "/v1/employers/" + w.empA + "/applications", allow: bo(map[string]string{auth.Employer: own})},
		{route: "GET /v1/schools/{uai}/dashboard", path: "/v1/schools/" + w.uaiA + "/dashboard", allow: bo(map[string]string{auth.School: own})},
		{route: "GET /v1/schools/{uai}/pupils", path: "/v1/schools/" + w.uaiA + "/pupils", allow: bo(map[string]string{auth.School: own})},
		{route: "GET /v1/schools/{uai}/pupils/{id}", path: "/v1/schools/" + w.uaiA + "/pupils/" + w.pupilA, allow: bo(map[string]string{auth.School: own})},
		{route: "GET /v1/pupils/{id}/follow-up", path: "/v1/pupils/" + w.pupilA + "/follow-up", allow: bo(map[string]string{auth.Pupil: own, auth.Guardian: own, auth.School: own})},
		{route: "POST /v1/targets", path: "/v1/targets", allow: bo(map[string]string{})},
		{route: "POST /v1/pupils/{id}/wishes", path: "/v1/pupils/" + w.pupilA + "/wishes", allow: bo(map[string]string{auth.Pupil: own, auth.Guardian: own, auth.School: own})},
		{route: "GET /v1/pupils/{id}/suggestions", path: "/v1/pupils/" + w.pupilA + "/suggestions", allow: bo(map[string]string{auth.Pupil: own, auth.Guardian: own, auth.School: own})},
		{route: "GET /v1/offers/{id}/candidates", path: o + "/candidates", allow: bo(map[string]string{auth.Employer: own, auth.Operator: own})},
		{route: "GET /v1/desk/pupils", path: "/v1/desk/pupils?school=" + w.uaiA, allow: bo(map[string]string{auth.School: own})},
		{route: "GET /v1/desk/pupils", path: "/v1/desk/pupils?department=94", allow: bo(map[string]string{})},
		{route: "POST /v1/campaigns", path: "/v1/campaigns", allow: bo(map[string]string{})},
		{route: "POST /v1/campaigns/{id}/rounds", path: "/v1/campaigns/00000000-0000-4000-8000-000000000000/rounds", allow: bo(map[string]string{})},
		{route: "POST /v1/rounds/{id}/publish", path: "/v1/rounds/00000000-0000-4000-8000-000000000000/publish", allow: bo(map[string]string{})},
		{route: "GET /v1/rounds/{id}", path: "/v1/rounds/00000000-0000-4000-8000-000000000000", allow: bo(map[string]string{})},
		{route: "GET /v1/audit/applications/{id}", path: "/v1/audit/applications/" + w.appA, allow: map[string]string{auth.Auditor: anyone, auth.Backoffice: anyone}},
		{route: "GET /healthz", path: "/healthz", public: true},
		{route: "GET /readyz", path: "/readyz", public: true},
		{route: "GET /metrics", path: "/metrics", public: true},
		{route: "GET /openapi.json", path: "/openapi.json", public: true},
		{route: "GET /", path: "/", public: true},
		{route: "GET /assets/{name}", path: "/assets/app.js", public: true},
		// operator accounts, and the partner API v2: any operator, each on its own offers
		{route: "POST /v1/operators", path: "/v1/operators", allow: bo(map[string]string{})},
		{route: "POST /api/v2/auth/login", path: "/api/v2/auth/login", public: true},
		{route: "POST /api/v2/internship_offers", path: "/api/v2/internship_offers", allow: map[string]string{auth.Operator: anyone}},
		{route: "PATCH /api/v2/internship_offers/{remote_id}", path: "/api/v2/internship_offers/r-1", allow: map[string]string{auth.Operator: anyone}},
		{route: "DELETE /api/v2/internship_offers/{remote_id}", path: "/api/v2/internship_offers/r-1", allow: map[string]string{auth.Operator: anyone}},
		{route: "GET /api/v2/internship_offers", path: "/api/v2/internship_offers", allow: map[string]string{auth.Operator: anyone}},
		{route: "GET /api/v2/internship_offers/search", path: "/api/v2/internship_offers/search", allow: map[string]string{auth.Operator: anyone}},
		{route: "GET /api/v2/sectors", path: "/api/v2/sectors", allow: map[string]string{auth.Operator: anyone}},
	}
}

// TestAuthorizationTable runs every route × every role, on the owner's
// side and across tenants, against the real route table (handlers replaced
// by a 204 so that allowed calls change nothing).
func TestAuthorizationTable(t *testing.T) {
	a, err := app.Open(app.Config{DataDir: t.TempDir(), RedisURL: redistest.Mini(t).URL})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	w := build(t, a.Store)

	stub, served := stubbed(a.Routes())
	issuer, err := auth.NewHMAC([]byte(strings.Repeat("x", 32)), nil)
	if err != nil {
		t.Fatal(err)
	}
	guard := authz.New(stub, issuer, a.Store, route.Rules(a.Routes()))
	c := withTokens(t, guard, issuer)
	call := func(r row, role, subject string) int {
		method, _, _ := strings.Cut(r.route, " ")
		if role != "" {
			return c.As(role, subject).Do(method, r.path, r.body).Status
		}
		return c.Do(method, r.path, r.body).Status
	}
	covered := map[string]bool{}
	for _, r := range rows(w) {
		covered[r.route] = true
		if !served[r.route] {
			t.Errorf("%s: in the table but not a declared route", r.route)
			continue
		}
		if r.public {
			if code := call(r, "", ""); code != http.StatusNoContent {
				t.Errorf("%s without a token: %d, want 204", r.route, code)
			}
			for _, role := range auth.Roles {
				if code := call(r, role, w.subject(role, false)); code != http.StatusNoContent {
					t.Errorf("%s as %s: %d, want 204", r.path, role, code)
				}
			}
			continue
		}
		if code := call(r, "", ""); code != http.StatusUnauthorized {
			t.Errorf("%s %s without a token: %d, want 401", r.route, r.path, code)
		}
		for _, role := range auth.Roles {
			for _, side := range []string{"A", "B"} {
				want := http.StatusForbidden
				switch r.allow[role] {
				case anyone:
					want = http.StatusNoContent
				case own:
					if side == "A" {
						want = http.StatusNoContent
					}
				case "B":
					if side == "B" {
						want = http.StatusNoContent
					}
				}
				if code := call(r, role, w.subject(role, side == "A")); code != want {
					t.Errorf("%s %s %v as %s of tenant %s: %d, want %d", r.route, r.path, r.body, role, side, code, want)
				}
			}
		}
	}
	for _, rt := range a.Routes() {
		if !covered[rt.Key()] {
			t.Errorf("%s is declared but has no row in the authorization table", rt.Key())
		}
	}
}

// withTokens is a client of h whose tokens issuer signs.
func withTokens(t *testing.T, h http.Handler, issuer *auth.HMAC) httpclient.Client {
	c := httpclient.ForHandler(t, h)
	c.Token = func(role, subject string) string {
		tok, err := issuer.Issue(auth.Principal{Role: role, Subject: subject}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	return c
}

// stubbed serves the declared routes with handlers replaced by a 204, so
// that allowed calls change nothing.
func stubbed(routes []route.Route) (*chi.Mux, map[string]bool) {
	stub := chi.NewRouter()
	served := map[string]bool{}
	for _, rt := range routes {
		served[rt.Key()] = true
		stub.Method(rt.Method, rt.Pattern, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	}
	return stub, served
}

// A route declared without a rule is refused to every role, the back
// office included, and still asks for a token.
func TestRouteWithoutRuleIsClosed(t *testing.T) {
	stub := chi.NewRouter()
	stub.Get("/v1/forgotten", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	stub.Get("/v1/zero", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	issuer, _ := auth.NewHMAC([]byte(strings.Repeat("v", 32)), nil)
	c := withTokens(t, authz.New(stub, issuer, nil, map[string]authz.Rule{"GET /v1/zero": {}}), issuer)
	for _, path := range []string{"/v1/forgotten", "/v1/zero"} {
		if r := c.Do("GET", path, nil); r.Status != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: %d, want 401", path, r.Status)
		}
		for _, role := range auth.Roles {
			if r := c.As(role, "s").Do("GET", path, nil); r.Status != http.StatusForbidden {
				t.Errorf("GET %s as %s: %d, want 403", path, role, r.Status)
			}
		}
	}
}

// A resource that does not exist is refused exactly like one that belongs
// to someone else: the answer does not reveal existence.
func TestForbiddenDoesNotRevealExistence(t *testing.T) {
	a, err := app.Open(app.Config{DataDir: t.TempDir(), RedisURL: redistest.Mini(t).URL})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	w := build(t, a.Store)
	issuer, _ := auth.NewHMAC([]byte(strings.Repeat("y", 32)), nil)
	stub, _ := stubbed(a.Routes())
	guard := authz.New(stub, issuer, a.Store, route.Rules(a.Routes()))
	c := withTokens(t, guard, issuer).As(auth.Employer, w.empB)
	answer := func(path string) string {
		r := c.Do("POST", path, nil)
		return fmt.Sprint(r.Status, " ", r.Raw)
	}
	exists := answer("/v1/applications/" + w.appA + "/accept")
	missing := answer("/v1/applications/00000000-0000-4000-8000-000000000000/accept")
	if exists != missing || !strings.HasPrefix(exists, "403") {
		t.Fatalf("another tenant's application: %q; a missing one: %q", exists, missing)
	}
}

// Tokens: expired, signed with another key, or naming no known role are
// refused with 401.
func TestBadTokens(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	issuer, _ := auth.NewHMAC([]byte(strings.Repeat("z", 32)), func() time.Time { return now })
	other, _ := auth.NewHMAC([]byte(strings.Repeat("w", 32)), func() time.Time { return now })
	good, _ := issuer.Issue(auth.Principal{Role: auth.Backoffice, Subject: "bo"}, time.Hour)
	if p, err := issuer.Verify(good); err != nil || p.Role != auth.Backoffice || p.Subject != "bo" {
		t.Fatalf("good token: %+v %v", p, err)
	}
	expired, _ := issuer.Issue(auth.Principal{Role: auth.Backoffice}, -time.Minute)
	forged, _ := other.Issue(auth.Principal{Role: auth.Backoffice}, time.Hour)
	none := "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJyb2xlIjoiYmFja29mZmljZSIsImlzcyI6InBhc3NlcmVsbGUifQ."
	for name, tok := range map[string]string{"expired": expired, "forged": forged, "alg none": none, "garbage": "abc"} {
		if _, err := issuer.Verify(tok); err == nil {
			t.Errorf("%s token verified", name)
		}
	}
	if _, err := issuer.Issue(auth.Principal{Role: "root"}, time.Hour); err == nil {
		t.Error("a token for an unknown role was issued")
	}
}

// A guardian's subject names the child and the guardian: the first
// guardian of a pupil with one is let in, by the subject of today's tokens
// and by a bare pupil id (tokens issued before); a rank the pupil's
// registration does not have, a malformed subject or another's child is
// refused.
func TestGuardianSubjects(t *testing.T) {
	a, err := app.Open(app.Config{DataDir: t.TempDir(), RedisURL: redistest.Mini(t).URL})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	w := build(t, a.Store)
	issuer, _ := auth.NewHMAC([]byte(strings.Repeat("g", 32)), nil)
	stub, _ := stubbed(a.Routes())
	c := withTokens(t, authz.New(stub, issuer, a.Store, route.Rules(a.Routes())), issuer)
	for subject, want := range map[string]int{
		w.pupilA + ":1": http.StatusNoContent, w.pupilA: http.StatusNoContent,
		w.pupilA + ":2": http.StatusForbidden, w.pupilA + ":0": http.StatusForbidden, w.pupilA + ":01": http.StatusForbidden,
		w.pupilA + ":x": http.StatusForbidden, ":1": http.StatusForbidden, w.pupilB + ":1": http.StatusForbidden,
	} {
		g := c.As(auth.Guardian, subject)
		for _, call := range []struct{ method, path string }{
			{"GET", "/v1/pupils/" + w.pupilA},
			{"GET", "/v1/conventions/" + w.convA},
			{"POST", "/v1/conventions/" + w.convA + "/signatures"},
		} {
			body := map[string]any{"role": "guardian"}
			if r := g.Do(call.method, call.path, body); r.Status != want {
				t.Errorf("%s %s as guardian %q: %d, want %d", call.method, call.path, subject, r.Status, want)
			}
		}
	}
}

// The guard matches the path the router routes on: an encoded slash in a
// parameter ("..%2F") keeps the request on its route, so the guard checks
// it there rather than handing it to the router unguarded.
func TestGuardSeesEncodedSlashes(t *testing.T) {
	a, err := app.Open(app.Config{DataDir: t.TempDir(), RedisURL: redistest.Mini(t).URL})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	stub, _ := stubbed(a.Routes())
	issuer, err := auth.NewHMAC([]byte(strings.Repeat("x", 32)), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(authz.New(stub, issuer, a.Store, route.Rules(a.Routes())))
	defer srv.Close()
	c := httpclient.New(t, srv.URL)
	for _, path := range []string{"/v1/applications/..%2F..%2Fx/accept", "/v1/conventions/a%2Fb/signatures", "/v1/pupils/%2F/forget"} {
		if r := c.Do("POST", path, `{}`); r.Status != http.StatusUnauthorized {
			t.Errorf("POST %s without a token: %d, want 401", path, r.Status)
		}
	}
}
