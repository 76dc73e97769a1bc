package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"passerelle/domain"
	"passerelle/internal/app"
	"passerelle/internal/auth"
	"passerelle/internal/route"
	"passerelle/internal/testsupport/httpclient"
	"passerelle/internal/testsupport/redistest"
)

// neverCreated is a well-formed id the server never hands out: its ids are
// name-based (version 5) UUIDs, this one is a version 4.
const neverCreated = "5f0c8d36-2b7a-4a8e-9f0e-5d3c1b2a4e77"

// The fixtures' weeks, far enough ahead for no internship to have started.
var (
	weekA = domain.WeekOf(time.Now().AddDate(0, 3, 0))
	weekB = domain.WeekOf(time.Now().AddDate(0, 3, 7))
	weekC = domain.WeekOf(time.Now().AddDate(0, 3, 14)) // not in the offer
)

// badFixture is the state the bad-input cases run against.
type badFixture struct {
	employer, offer                string
	employer2                      string // another employer, a co-host
	pupilFree                      string // registered, never applied
	rejectedPupil                  string // the pupil of the rejected application
	rejected, submitted, confirmed string // applications in those states
	convention, hash               string
	collective, booking            string // a collective offer and a group booking on it (conventions not completed)
	head                           string // log position after the setup
	// an operator account: its partner API token and an offer it pushed
	operatorToken, remoteID string
}

func setupBadFixture(t *testing.T, a *app.App, c httpclient.Client) badFixture {
	t.Helper()
	var f badFixture
	f.employer = str(c.Must(201, "POST", "/v1/employers", validEmployer()), "id")
	f.employer2 = str(c.Must(201, "POST", "/v1/employers", with(validEmployer(), "siret", "35212345678908", "name", "Atelier du Val")), "id")
	c.Must(201, "POST", "/v1/schools", validSchool())
	pupils := make([]string, 4)
	for i := range pupils {
		p := validPupil()
		p["first_name"] = fmt.Sprintf("Élève %d", i)
		pupils[i] = str(c.Must(201, "POST", "/v1/pupils", p), "id")
	}
	f.pupilFree = pupils[3]
	f.offer = str(c.Must(201, "POST", "/v1/offers", validOffer(f.employer)), "id")
	apply := func(pupil, week string) string {
		return str(c.Must(201, "POST", "/v1/offers/"+f.offer+"/applications", map[string]any{
			"pupil_id": pupil, "weeks": []string{week}, "motivation": "J'aime le pain.",
		}), "id")
	}
	f.rejectedPupil = pupils[0]
	f.rejected = apply(pupils[0], weekA)
	c.Must(200, "POST", "/v1/applications/"+f.rejected+"/reject", map[string]any{"reason": "complet"})
	f.submitted = apply(pupils[1], weekA)
	f.confirmed = apply(pupils[2], weekB)
	c.Must(200, "POST", "/v1/applications/"+f.confirmed+"/accept", nil)
	conf := c.Must(200, "POST", "/v1/applications/"+f.confirmed+"/confirm", nil)
	f.convention = str(conf, "convention_id")
	c.Must(200, "POST", "/v1/conventions/"+f.convention+"/complete", employerPart())
	done := c.Must(200, "POST", "/v1/conventions/"+f.convention+"/complete", schoolPart())
	conv := c.Must(200, "GET", "/v1/conventions/"+f.convention+"?min_position="+str(done, "position"), nil)
	f.hash = str(conv, "document_hash")
	if str(conv, "status") != "ready" || len(f.hash) != 64 {
		t.Fatalf("the completed convention is not ready to sign: %v", conv)
	}
	c.Must(201, "POST", "/v1/operators", validOperator())
	f.operatorToken = str(c.Must(200, "POST", "/api/v2/auth/login", map[string]any{"email": "api@vvmt.example", "password": operatorPassword}), "token")
	f.remoteID = "vvmt-1"
	c.Must(201, "POST", "/api/v2/internship_offers", validPush(f.remoteID), "Authorization", "Bearer "+f.operatorToken)
	booked := str(c.Must(201, "POST", "/v1/pupils", validPupil()), "id")
	f.collective = str(c.Must(201, "POST", "/v1/offers", with(validOffer(f.employer), "collective", true, "min_group_size", 1)), "id")
	f.booking = str(c.Must(201, "POST", "/v1/offers/"+f.collective+"/group-bookings", map[string]any{
		"school_uai": uai, "pupil_ids": []any{booked}, "weeks": []any{weekA}}), "id")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	f.head = logHead(t, c)
	return f
}

const operatorPassword = "correct horse battery staple"

func validOperator() map[string]any {
	return map[string]any{"name": "Viens voir mon taf", "email": "api@vvmt.example", "password": operatorPassword, "departments": []string{}}
}

// validPush is a push of the partner API v2: the fixture's offer, in its words.
func validPush(remoteID string) map[string]any {
	return map[string]any{"internship_offer": map[string]any{
		"title": "Découverte du fournil", "description": "Pétrissage, cuisson, vente", "employer_name": "Boulangerie Martin",
		"employer_description": "Boulangerie de quartier", "zipcode": "94200", "city": "Ivry-sur-Seine", "sector_uuid": "s1",
		"weeks": []string{weekA, weekB}, "grades": []string{"troisieme"}, "remote_id": remoteID,
		"permalink": "https://vvmt.example/offres/" + remoteID,
	}}
}

func employerPart() map[string]any {
	return map[string]any{"party": "employer", "activities": "Pétrissage et cuisson",
		"tutor": map[string]any{"name": "Paul Martin", "email": "p.martin@example.fr", "phone": "0612345678"}}
}

func schoolPart() map[string]any {
	return map[string]any{"party": "school", "both_guardians": false,
		"referent_teacher": map[string]any{"name": "Claire Durand", "email": "c.durand@example.fr"}}
}

func validEmployer() map[string]any {
	return map[string]any{"name": "Boulangerie Martin", "siret": siret, "kind": "company", "commune_code": "94028", "address": "1 rue de Paris"}
}

func validSchool() map[string]any {
	return map[string]any{"uai": uai, "name": "Collège Jean Macé", "kind": "college", "commune_code": "94028", "education_priority": "rep", "qpv": true}
}

func validPupil() map[string]any {
	return map[string]any{
		"school_uai": uai, "grade": "3e", "class_name": "3eB", "first_name": "Lina", "last_name": "Benali", "birth_date": "2012-03-14",
		"guardians": []any{map[string]any{"name": "Karim Benali", "email": "k.benali@example.fr", "phone": "0612345678"}},
	}
}

func validOffer(employer string) map[string]any {
	return map[string]any{
		"employer_id": employer, "title": "Découverte du fournil", "description": "Pétrissage, cuisson, vente",
		"sector": "s1", "grades": []any{"3e"}, "weeks": []any{weekA, weekB}, "seats": 2,
		"commune_code": "94028", "address": "1 rue de Paris", "lat": 48.79, "lon": 2.455,
	}
}

// with returns a JSON body: m with the changes applied; a nil value
// removes the field.
func with(m map[string]any, kv ...any) string {
	m = maps.Clone(m)
	for i := 0; i+1 < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(m, k)
		} else {
			m[k] = kv[i+1]
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// logHead is the position of the last event in the log, from /readyz.
func logHead(t *testing.T, c httpclient.Client) string {
	t.Helper()
	r := c.Do("GET", "/readyz", nil)
	h := str(r.Body, "head")
	if h == "" {
		t.Fatalf("/readyz gave no head: %d %s", r.Status, r.Raw)
	}
	return h
}

// contractError is the body of every error answer.
type contractError struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields"`
	Rule    string            `json:"rule"` // extension: the business rule behind a conflict
}

// checkErrorEnvelope fails unless raw is exactly {"error": {"code",
// "message", "fields"?}} with code want and, when field is not empty, a
// fields entry naming field.
func checkErrorEnvelope(t *testing.T, raw, want, field string) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(raw))
	if len(raw) > 400 {
		raw = raw[:400] + "…" // for the messages
	}
	dec.DisallowUnknownFields()
	var env struct {
		Error *contractError `json:"error"`
	}
	if err := dec.Decode(&env); err != nil || dec.More() {
		t.Errorf("not the contract's error envelope (%v): %s", err, raw)
		return
	}
	e := env.Error
	if e == nil {
		t.Errorf("no error object: %s", raw)
		return
	}
	if e.Code != want {
		t.Errorf("error code %q, want %q: %s", e.Code, want, raw)
	}
	if strings.TrimSpace(e.Message) == "" {
		t.Errorf("empty error message: %s", raw)
	}
	for k, v := range e.Fields {
		if k == "" || strings.TrimSpace(v) == "" {
			t.Errorf("fields entry %q: %q is not a named problem: %s", k, v, raw)
		}
	}
	if e.Code == "validation_failed" && len(e.Fields) == 0 {
		t.Errorf("validation_failed names no field: %s", raw)
	}
	if field != "" {
		if _, ok := e.Fields[field]; !ok {
			t.Errorf("fields does not name %q: %s", field, raw)
		}
	}
}

// checkV2Envelope checks an error of the partner API v2: {"code", "error"}
// with code want, and error a message or, for VALIDATION_ERROR, each
// field's messages, naming field when it is not empty.
func checkV2Envelope(t *testing.T, raw, want, field string) {
	t.Helper()
	var env struct {
		Code  string          `json:"code"`
		Error json.RawMessage `json:"error"`
	}
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil || env.Code != want || len(env.Error) == 0 {
		t.Errorf("not the partner API's error %s (%v): %.300s", want, err, raw)
		return
	}
	var fields map[string][]string
	var msg string
	switch {
	case json.Unmarshal(env.Error, &msg) == nil && strings.TrimSpace(msg) != "" && (field == "" || want != "VALIDATION_ERROR"):
	case json.Unmarshal(env.Error, &fields) == nil && want == "VALIDATION_ERROR" && (field == "" || len(fields[field]) > 0):
	default:
		t.Errorf("error does not say what is wrong (%s): %.300s", field, raw)
	}
}

// badCase is one request with bad input and the answer the contract gives.
type badCase struct {
	route  string // the router's "METHOD pattern" exercised; "unmatched" for none
	name   string
	method string
	path   string
	body   string
	header []string
	status int
	code   string // expected error code; "" when the answer is not an error
	field  string // the field error.fields must name; "a,b": each of them
	// contains is text the answer must hold (a message, an id); allow, the
	// Allow header a 405 must carry.
	contains, allow string
	v2              bool // answered in the partner API v2's words: {"code", "error"}
}

// badInputCases are the cases for the declared routes: those every
// command and every query gets from its declaration, then each route's
// own. A route without a target for the derived cases fails the test.
func badInputCases(t *testing.T, f badFixture, routes []route.Route) []badCase {
	bad := func(route, name, method, path, body string, status int, code, field string) badCase {
		return badCase{route: route, name: name, method: method, path: path, body: body, status: status, code: code, field: field}
	}
	invalid := func(route, name, method, path, body, field string) badCase {
		return bad(route, name, method, path, body, 400, "validation_failed", field)
	}
	rule := func(route, name, method, path, body, field string) badCase {
		return bad(route, name, method, path, body, 422, "validation_failed", field)
	}
	notFound := func(route, name, method, path, body string) badCase {
		return bad(route, name, method, path, body, 404, "not_found", "")
	}
	conflict := func(route, name, method, path, body string) badCase {
		return bad(route, name, method, path, body, 409, "conflict", "")
	}

	var cs []badCase

	// Every command: the body is decoded strictly before anything else. The
	// targets are chosen so that a body wrongly taken for an empty object
	// cannot change the state the other cases rely on.
	commandTargets := map[string]string{
		"POST /v1/employers":                   "/v1/employers",
		"POST /v1/schools":                     "/v1/schools",
		"POST /v1/pupils":                      "/v1/pupils",
		"POST /v1/offers":                      "/v1/offers",
		"POST /v1/offers/{id}/withdraw":        "/v1/offers/" + neverCreated + "/withdraw",
		"POST /v1/offers/{id}/amend":           "/v1/offers/" + neverCreated + "/amend",
		"POST /v1/offers/{id}/reopen":          "/v1/offers/" + neverCreated + "/reopen",
		"POST /v1/offers/{id}/applications":    "/v1/offers/" + f.offer + "/applications",
		"POST /v1/applications/{id}/accept":    "/v1/applications/" + f.rejected + "/accept",
		"POST /v1/applications/{id}/reject":    "/v1/applications/" + f.submitted + "/reject",
		"POST /v1/applications/{id}/withdraw":  "/v1/applications/" + f.rejected + "/withdraw",
		"POST /v1/applications/{id}/confirm":   "/v1/applications/" + f.submitted + "/confirm",
		"POST /v1/applications/{id}/read":      "/v1/applications/" + f.rejected + "/read",
		"POST /v1/applications/{id}/cancel":    "/v1/applications/" + f.submitted + "/cancel",
		"POST /v1/conventions/{id}/complete":   "/v1/conventions/" + neverCreated + "/complete",
		"POST /v1/conventions/{id}/cancel":     "/v1/conventions/" + f.convention + "/cancel",
		"POST /v1/conventions/{id}/signatures": "/v1/conventions/" + f.convention + "/signatures",
		"POST /v1/pupils/{id}/forget":          "/v1/pupils/" + neverCreated + "/forget",
		"POST /v1/targets":                     "/v1/targets",
		"POST /v1/operators/{id}/employers":    "/v1/operators/op-bad/employers",
		"POST /v1/operators":                   "/v1/operators",
		"POST /v1/pupils/{id}/wishes":          "/v1/pupils/" + f.pupilFree + "/wishes",
		"POST /v1/offers/{id}/proposals":       "/v1/offers/" + f.offer + "/proposals",
		"POST /v1/offers/{id}/group-bookings":  "/v1/offers/" + f.collective + "/group-bookings",
		groupSignatures:                        "/v1/group-bookings/" + f.booking + "/signatures",
		"POST /v1/campaigns":                   "/v1/campaigns",
		"POST /v1/campaigns/{id}/rounds":       "/v1/campaigns/" + neverCreated + "/rounds",
		"POST /v1/rounds/{id}/publish":         "/v1/rounds/" + neverCreated + "/publish",
	}
	// Every query, at a resource that exists.
	queryTargets := map[string]string{
		"GET /v1/offers":                      "/v1/offers",
		"GET /v1/offers/{id}":                 "/v1/offers/" + f.offer,
		"GET /v1/applications/{id}":           "/v1/applications/" + f.submitted,
		"GET /v1/conventions/{id}":            "/v1/conventions/" + f.convention,
		"GET /v1/conventions/{id}/document":   "/v1/conventions/" + f.convention + "/document",
		"GET /v1/pupils/{id}/applications":    "/v1/pupils/" + f.pupilFree + "/applications",
		"GET /v1/employers/{id}/applications": "/v1/employers/" + f.employer + "/applications",
		"GET /v1/stats/offers":                "/v1/stats/offers",
		"GET /v1/stats/stream":                "/v1/stats/stream",
		"GET /v1/schools/{uai}/dashboard":     "/v1/schools/" + uai + "/dashboard",
		"GET /v1/schools/{uai}/pupils":        "/v1/schools/" + uai + "/pupils",
		"GET /v1/schools/{uai}/pupils/{id}":   "/v1/schools/" + uai + "/pupils/" + f.pupilFree,
		"GET /v1/pupils/{id}/follow-up":       "/v1/pupils/" + f.pupilFree + "/follow-up",
		"GET /v1/stats/placements":            "/v1/stats/placements",
		"GET /v1/audit/applications/{id}":     "/v1/audit/applications/" + f.confirmed,
		"GET /v1/pupils/{id}":                 "/v1/pupils/" + f.pupilFree,
		"GET /v1/pupils/{id}/suggestions":     "/v1/pupils/" + f.pupilFree + "/suggestions",
		"GET /v1/offers/{id}/candidates":      "/v1/offers/" + f.offer + "/candidates",
		"GET /v1/desk/pupils":                 "/v1/desk/pupils",
		"GET /v1/rounds/{id}":                 "/v1/rounds/" + neverCreated,
	}
	// Every path: a method it does not serve is a 405 listing those it
	// does in Allow.
	methods := map[string][]string{}
	for _, rt := range routes {
		methods[rt.Pattern] = append(methods[rt.Pattern], rt.Method)
	}
	for pattern, ms := range methods {
		if strings.HasPrefix(pattern, "/api/v2/") {
			continue // partnerBadCases, in the partner API's words
		}
		path, ok := commandTargets["POST "+pattern]
		if !ok {
			path, ok = queryTargets["GET "+pattern]
		}
		if !ok {
			path = pattern // the operations routes take no parameter
		}
		slices.Sort(ms)
		for _, m := range []string{"DELETE", "PUT", "PATCH", "GET", "POST"} {
			if !slices.Contains(ms, m) {
				cs = append(cs, badCase{route: ms[0] + " " + pattern, name: m + " is not allowed", method: m, path: path, body: `{}`,
					status: 405, code: "method_not_allowed", allow: strings.Join(ms, ", ")})
				break
			}
		}
	}

	for _, rt := range routes {
		switch {
		case strings.HasPrefix(rt.Pattern, "/api/v2/"):
			continue // partnerBadCases
		case rt.Method == "POST":
			path, ok := commandTargets[rt.Key()]
			if !ok {
				t.Errorf("the command %s has no bad-input target: add it to commandTargets", rt.Key())
				continue
			}
			cs = append(cs, badBodies(rt, path)...)
		case strings.HasPrefix(rt.Pattern, "/v1/"):
			path, ok := queryTargets[rt.Key()]
			if !ok {
				t.Errorf("the query %s has no bad-input target: add it to queryTargets", rt.Key())
				continue
			}
			if !slices.Contains(rt.Query, "min_position") {
				t.Errorf("the query %s does not take min_position", rt.Key())
			}
			cs = append(cs,
				invalid(rt.Key(), "min_position=-3", "GET", path+"?min_position=-3", "", "min_position"),
				invalid(rt.Key(), "min_position=1.5", "GET", path+"?min_position=1.5", "", "min_position"),
			)
			// every parameter: its value decoded must be valid UTF-8, without NUL
			for _, p := range rt.Query {
				cs = append(cs,
					invalid(rt.Key(), p+" with invalid UTF-8", "GET", path+"?"+p+"=ab%FFcd", "", p),
					invalid(rt.Key(), p+" with a NUL", "GET", path+"?"+p+"=ab%00cd", "", p),
				)
			}
			if rt.StrictQuery {
				cs = append(cs, invalid(rt.Key(), "unknown parameter", "GET", path+"?zzz_unknown=1", "", "zzz_unknown"))
			}
		}
	}
	cs = append(cs, badCase{route: "POST /v1/employers", name: "Idempotency-Key over 255 characters", method: "POST", path: "/v1/employers",
		body: with(validEmployer()), header: []string{"Idempotency-Key", strings.Repeat("k", 256)}, status: 400, code: "validation_failed", field: "Idempotency-Key"})

	// POST /v1/employers
	r := "POST /v1/employers"
	emp := validEmployer()
	cs = append(cs,
		invalid(r, "name is a number", "POST", "/v1/employers", with(emp, "name", 42), "name"),
		invalid(r, "siret is a number", "POST", "/v1/employers", with(emp, "siret", 73282932000074), "siret"),
		invalid(r, "kind is a list", "POST", "/v1/employers", with(emp, "kind", []string{"company"}), "kind"),
		rule(r, "missing name", "POST", "/v1/employers", with(emp, "name", nil), "name"),
		rule(r, "blank name", "POST", "/v1/employers", with(emp, "name", "   "), "name"),
		rule(r, "missing siret", "POST", "/v1/employers", with(emp, "siret", nil), "siret"),
		rule(r, "siret with a wrong Luhn key", "POST", "/v1/employers", with(emp, "siret", "73282932000075"), "siret"),
		rule(r, "siret of 13 digits", "POST", "/v1/employers", with(emp, "siret", "7328293200007"), "siret"),
		rule(r, "unknown kind", "POST", "/v1/employers", with(emp, "kind", "sarl"), "kind"),
		rule(r, "unknown commune", "POST", "/v1/employers", with(emp, "commune_code", "99999"), "commune_code"),
		rule(r, "missing address", "POST", "/v1/employers", with(emp, "address", nil), "address"),
		rule(r, "null name", "POST", "/v1/employers", with(emp, "name", json.RawMessage("null")), "name"),
		rule(r, "name over 200 bytes", "POST", "/v1/employers", with(emp, "name", strings.Repeat("é", 101)), "name"),
		invalid(r, "a field name in the wrong case", "POST", "/v1/employers", with(emp, "siret", nil, "SIRET", siret), "SIRET"),
		badCase{route: r, name: "bad input under an Idempotency-Key", method: "POST", path: "/v1/employers", body: with(emp, "kind", "sarl"),
			header: []string{"Idempotency-Key", "bad-input-1"}, status: 422, code: "validation_failed", field: "kind"},
		// the issue's cases, as reported
		invalid(r, "invalid UTF-8 in the name", "POST", "/v1/employers", strings.Replace(with(emp, "name", "ab~cd"), "~", "\xff", 1), "name"),
		invalid(r, "a NUL in the address", "POST", "/v1/employers", with(emp, "address", "1 rue\x00de Paris"), "address"),
		invalid(r, "siret given twice with two values", "POST", "/v1/employers", strings.Replace(with(emp), `"siret":`, `"siret":"44201123456701","siret":`, 1), "siret"),
		badCase{route: r, name: "Content-Type text/plain", method: "POST", path: "/v1/employers", body: with(emp),
			header: []string{"Content-Type", "text/plain"}, status: 415, code: "unsupported_media_type"},
		badCase{route: r, name: "name in a list, in contract words", method: "POST", path: "/v1/employers", body: with(emp, "name", []string{"x"}),
			status: 400, code: "validation_failed", field: "name", contains: "name: must be a string"},
		badCase{route: r, name: "an array body, in contract words", method: "POST", path: "/v1/employers", body: "[" + with(emp) + "]",
			status: 400, code: "validation_failed", field: "body", contains: "body: must be a JSON object"},
		// one employer per SIRET: another body is refused naming the
		// employer, the same body is answered as the first time
		badCase{route: r, name: "a second employer with the SIRET", method: "POST", path: "/v1/employers", body: with(emp, "name", "Autre enseigne"),
			status: 409, code: "conflict", field: "siret", contains: f.employer},
		badCase{route: r, name: "the same employer again", method: "POST", path: "/v1/employers", body: with(emp),
			status: 201, contains: `"id":"` + f.employer + `"`},
	)

	// POST /v1/schools
	r = "POST /v1/schools"
	sch := validSchool()
	sch["uai"] = "0751234B" // not registered: a success would register it
	cs = append(cs,
		invalid(r, "qpv is a string", "POST", "/v1/schools", with(sch, "qpv", "yes"), "qpv"),
		invalid(r, "uai is a number", "POST", "/v1/schools", with(sch, "uai", 751234), "uai"),
		rule(r, "lower-case uai", "POST", "/v1/schools", with(sch, "uai", "0751234b"), "uai"),
		rule(r, "uai of 8 digits", "POST", "/v1/schools", with(sch, "uai", "07512345"), "uai"),
		rule(r, "missing uai", "POST", "/v1/schools", with(sch, "uai", nil), "uai"),
		rule(r, "unknown kind", "POST", "/v1/schools", with(sch, "kind", "ecole"), "kind"),
		rule(r, "education_priority in upper case", "POST", "/v1/schools", with(sch, "education_priority", "REP"), "education_priority"),
		rule(r, "missing commune_code", "POST", "/v1/schools", with(sch, "commune_code", nil), "commune_code"),
		rule(r, "missing qpv", "POST", "/v1/schools", with(sch, "qpv", nil), "qpv"),
		conflict(r, "the registered UAI with other data", "POST", "/v1/schools", with(validSchool(), "name", "Autre collège")),
	)

	// POST /v1/pupils
	r = "POST /v1/pupils"
	pup := validPupil()
	guardian := func(kv ...any) []any {
		g := map[string]any{"name": "Karim Benali", "email": "k.benali@example.fr", "phone": "0612345678"}
		for i := 0; i+1 < len(kv); i += 2 {
			g[kv[i].(string)] = kv[i+1]
		}
		return []any{g}
	}
	cs = append(cs,
		invalid(r, "guardians is an object", "POST", "/v1/pupils", with(pup, "guardians", map[string]any{"name": "K"}), "guardians"),
		invalid(r, "a guardian's name is a number", "POST", "/v1/pupils", with(pup, "guardians", guardian("name", 7)), "guardians.name"),
		invalid(r, "a guardian has an unknown field", "POST", "/v1/pupils", with(pup, "guardians", guardian("nickname", "K")), "guardians[0].nickname"),
		invalid(r, "birth_date is a number", "POST", "/v1/pupils", with(pup, "birth_date", 20120314), "birth_date"),
		rule(r, "unregistered school", "POST", "/v1/pupils", with(pup, "school_uai", "0000000A"), "school_uai"),
		rule(r, "malformed school_uai", "POST", "/v1/pupils", with(pup, "school_uai", "../../x"), "school_uai"),
		rule(r, "unknown grade", "POST", "/v1/pupils", with(pup, "grade", "5e"), "grade"),
		rule(r, "a 2de in a collège", "POST", "/v1/pupils", with(pup, "grade", "2de"), "grade"),
		rule(r, "30 February", "POST", "/v1/pupils", with(pup, "birth_date", "2012-02-30"), "birth_date"),
		rule(r, "French date format", "POST", "/v1/pupils", with(pup, "birth_date", "14/03/2012"), "birth_date"),
		rule(r, "a pupil of 3", "POST", "/v1/pupils", with(pup, "birth_date", "2023-01-01"), "birth_date"),
		rule(r, "no guardian", "POST", "/v1/pupils", with(pup, "guardians", []any{}), "guardians"),
		rule(r, "missing guardians", "POST", "/v1/pupils", with(pup, "guardians", nil), "guardians"),
		rule(r, "three guardians", "POST", "/v1/pupils", with(pup, "guardians", append(append(guardian(), guardian()...), guardian()...)), "guardians"),
		rule(r, "a guardian's e-mail", "POST", "/v1/pupils", with(pup, "guardians", guardian("email", "nope")), "guardians[0].email"),
		rule(r, "a guardian's phone", "POST", "/v1/pupils", with(pup, "guardians", guardian("phone", "12")), "guardians[0].phone"),
		rule(r, "missing last_name", "POST", "/v1/pupils", with(pup, "last_name", nil), "last_name"),
		rule(r, "missing class_name", "POST", "/v1/pupils", with(pup, "class_name", nil), "class_name"),
	)

	// POST /v1/offers
	r = "POST /v1/offers"
	off := validOffer(f.employer)
	cs = append(cs,
		invalid(r, "malformed employer_id", "POST", "/v1/offers", with(off, "employer_id", "../../employer"), "employer_id"),
		badCase{route: r, name: "seats is a fraction", method: "POST", path: "/v1/offers", body: with(off, "seats", 1.5),
			status: 400, code: "validation_failed", field: "seats", contains: "seats: must be a whole number"},
		rule(r, "a week already over", "POST", "/v1/offers", with(off, "weeks", []any{domain.WeekOf(time.Now().AddDate(0, 0, -7)), weekA}), "weeks"),
		rule(r, "every week in the past", "POST", "/v1/offers", with(off, "weeks", []any{"2025-W10", "2025-W11"}), "weeks"),
		rule(r, "a point 390 km from the commune", "POST", "/v1/offers", with(off, "lat", 48.5734, "lon", 7.7521), "lat,lon"),
		rule(r, "a point 25 km from the commune", "POST", "/v1/offers", with(off, "lat", 48.78454+25/111.2), "lat,lon"),
		invalid(r, "seats is a string", "POST", "/v1/offers", with(off, "seats", "2"), "seats"),
		invalid(r, "seats overflows", "POST", "/v1/offers", with(off, "seats", json.RawMessage("1e400")), "seats"),
		invalid(r, "lat is a string", "POST", "/v1/offers", with(off, "lat", "48.79"), "lat"),
		invalid(r, "weeks is a string", "POST", "/v1/offers", with(off, "weeks", weekA), "weeks"),
		invalid(r, "reserved.rep is a string", "POST", "/v1/offers", with(off, "reserved", map[string]any{"rep": "yes"}), "reserved.rep"),
		rule(r, "unknown employer", "POST", "/v1/offers", with(off, "employer_id", neverCreated), "employer_id"),
		rule(r, "co-hosts of an individual offer", "POST", "/v1/offers", with(off, "co_hosts", []any{f.employer2}), "co_hosts"),
		rule(r, "an unknown co-host", "POST", "/v1/offers", with(off, "collective", true, "co_hosts", []any{f.employer2, neverCreated}), "co_hosts[1]"),
		rule(r, "the host as its own co-host", "POST", "/v1/offers", with(off, "collective", true, "co_hosts", []any{f.employer}), "co_hosts[0]"),
		rule(r, "a co-host twice", "POST", "/v1/offers", with(off, "collective", true, "co_hosts", []any{f.employer2, f.employer2}), "co_hosts[1]"),
		invalid(r, "co_hosts is a string", "POST", "/v1/offers", with(off, "collective", true, "co_hosts", f.employer2), "co_hosts"),
		rule(r, "sector s52", "POST", "/v1/offers", with(off, "sector", "s52"), "sector"),
		rule(r, "sector S1", "POST", "/v1/offers", with(off, "sector", "S1"), "sector"),
		rule(r, "sector s0", "POST", "/v1/offers", with(off, "sector", "s0"), "sector"),
		rule(r, "week 60", "POST", "/v1/offers", with(off, "weeks", []any{"2026-W60"}), "weeks"),
		rule(r, "week 53 of 2025", "POST", "/v1/offers", with(off, "weeks", []any{"2025-W53"}), "weeks"),
		rule(r, "a week twice", "POST", "/v1/offers", with(off, "weeks", []any{weekA, weekA}), "weeks"),
		rule(r, "no week", "POST", "/v1/offers", with(off, "weeks", []any{}), "weeks"),
		rule(r, "13 weeks", "POST", "/v1/offers", with(off, "weeks", []any{"2026-W01", "2026-W02", "2026-W03", "2026-W04", "2026-W05", "2026-W06", "2026-W07", "2026-W08", "2026-W09", "2026-W10", "2026-W11", "2026-W12", "2026-W13"}), "weeks"),
		rule(r, "no grade", "POST", "/v1/offers", with(off, "grades", nil), "grades"),
		rule(r, "2de mixed with 3e", "POST", "/v1/offers", with(off, "grades", []any{"2de", "3e"}), "grades"),
		rule(r, "unknown grade", "POST", "/v1/offers", with(off, "grades", []any{"CM2"}), "grades"),
		rule(r, "zero seats", "POST", "/v1/offers", with(off, "seats", 0), "seats"),
		rule(r, "missing seats", "POST", "/v1/offers", with(off, "seats", nil), "seats"),
		rule(r, "501 seats", "POST", "/v1/offers", with(off, "seats", 501), "seats"),
		rule(r, "missing title", "POST", "/v1/offers", with(off, "title", nil), "title"),
		rule(r, "unknown commune", "POST", "/v1/offers", with(off, "commune_code", "00000"), "commune_code"),
		rule(r, "a point in the Atlantic", "POST", "/v1/offers", with(off, "lat", 40.0, "lon", -30.0), "lat"),
		rule(r, "missing lat", "POST", "/v1/offers", with(off, "lat", nil), "lat"),
		rule(r, "missing lon", "POST", "/v1/offers", with(off, "lon", nil), "lon"),
		rule(r, "work before 06:00", "POST", "/v1/offers", with(off, "daily_hours", map[string]any{"start": "05:00", "end": "12:00"}), "daily_hours.start"),
		rule(r, "work after 20:00", "POST", "/v1/offers", with(off, "daily_hours", map[string]any{"start": "13:00", "end": "21:00"}), "daily_hours.end"),
		rule(r, "a 10-hour day", "POST", "/v1/offers", with(off, "daily_hours", map[string]any{"start": "08:00", "end": "19:00", "lunch_break_minutes": 30}), "daily_hours"),
		rule(r, "daily hours in a wrong format", "POST", "/v1/offers", with(off, "daily_hours", map[string]any{"start": "9h", "end": "17h"}), "daily_hours.start"),
	)

	// POST /v1/offers/{id}/withdraw
	r = "POST /v1/offers/{id}/withdraw"
	cs = append(cs,
		notFound(r, "unknown offer", "POST", "/v1/offers/"+neverCreated+"/withdraw", `{}`),
		notFound(r, "malformed id", "POST", "/v1/offers/not-an-id/withdraw", ""),
		notFound(r, "encoded traversal id", "POST", "/v1/offers/..%2F..%2Fetc%2Fpasswd/withdraw", ""),
		notFound(r, "unicode id", "POST", "/v1/offers/%C3%A9t%C3%A9-%F0%9F%8E%93/withdraw", ""),
		notFound(r, "a UUID in braces", "POST", "/v1/offers/%7B"+neverCreated+"%7D/withdraw", ""),
		invalid(r, "reason is a number", "POST", "/v1/offers/"+f.offer+"/withdraw", `{"reason":5}`, "reason"),
		rule(r, "reason over 1000 bytes", "POST", "/v1/offers/"+f.offer+"/withdraw", with(map[string]any{}, "reason", strings.Repeat("r", 1001)), "reason"),
	)

	// POST /v1/offers/{id}/applications
	r = "POST /v1/offers/{id}/applications"
	app := map[string]any{"pupil_id": f.pupilFree, "weeks": []any{weekA}, "motivation": "Curieux."}
	apply := "/v1/offers/" + f.offer + "/applications"
	cs = append(cs,
		notFound(r, "unknown offer", "POST", "/v1/offers/"+neverCreated+"/applications", with(app)),
		notFound(r, "malformed offer id", "POST", "/v1/offers/%27%20OR%201=1--/applications", with(app)),
		invalid(r, "malformed pupil_id", "POST", apply, with(app, "pupil_id", "pupil-1"), "pupil_id"),
		invalid(r, "weeks is a string", "POST", apply, with(app, "weeks", weekA), "weeks"),
		rule(r, "unknown pupil", "POST", apply, with(app, "pupil_id", neverCreated), "pupil_id"),
		rule(r, "a week the offer does not run", "POST", apply, with(app, "weeks", []any{weekC}), "weeks"),
		rule(r, "week 60", "POST", apply, with(app, "weeks", []any{"2026-W60"}), "weeks"),
		rule(r, "two weeks for a 3e", "POST", apply, with(app, "weeks", []any{weekA, weekB}), "weeks"),
		rule(r, "missing motivation", "POST", apply, with(app, "motivation", nil), "motivation"),
		rule(r, "missing weeks", "POST", apply, with(app, "weeks", nil), "weeks"),
		conflict(r, "a rejected pupil applies again", "POST", apply, with(app, "pupil_id", f.rejectedPupil)),
	)

	// The application transitions.
	accept := func(id string) string { return "/v1/applications/" + id + "/accept" }
	reject := func(id string) string { return "/v1/applications/" + id + "/reject" }
	withdraw := func(id string) string { return "/v1/applications/" + id + "/withdraw" }
	confirm := func(id string) string { return "/v1/applications/" + id + "/confirm" }
	r = "POST /v1/applications/{id}/accept"
	cs = append(cs,
		conflict(r, "accept a rejected application", "POST", accept(f.rejected), ""),
		conflict(r, "accept a confirmed application", "POST", accept(f.confirmed), `{}`),
		notFound(r, "unknown application", "POST", accept(neverCreated), ""),
		notFound(r, "malformed id", "POST", accept("12345"), ""),
		notFound(r, "upper-case unknown id", "POST", accept(strings.ToUpper(neverCreated)), ""),
		invalid(r, "a field where none is taken", "POST", accept(f.submitted), `{"seats":1}`, "seats"),
	)
	r = "POST /v1/applications/{id}/reject"
	cs = append(cs,
		rule(r, "missing reason", "POST", reject(f.submitted), `{}`, "reason"),
		rule(r, "blank reason", "POST", reject(f.submitted), `{"reason":"  "}`, "reason"),
		rule(r, "reason over 1000 bytes", "POST", reject(f.submitted), with(map[string]any{}, "reason", strings.Repeat("r", 1001)), "reason"),
		invalid(r, "reason is a number", "POST", reject(f.submitted), `{"reason":7}`, "reason"),
		notFound(r, "unknown application", "POST", reject(neverCreated), `{"reason":"non"}`),
		notFound(r, "malformed id", "POST", reject("%00"), `{"reason":"non"}`),
		conflict(r, "reject a confirmed application", "POST", reject(f.confirmed), `{"reason":"non"}`),
	)
	r = "POST /v1/applications/{id}/withdraw"
	cs = append(cs,
		conflict(r, "withdraw a rejected application", "POST", withdraw(f.rejected), ""),
		notFound(r, "unknown application", "POST", withdraw(neverCreated), ""),
		notFound(r, "malformed id", "POST", withdraw("%E2%80%AE"+neverCreated[:30]), ""),
		invalid(r, "a field it does not take", "POST", withdraw(f.submitted), `{"motive":"x"}`, "motive"),
		invalid(r, "reason is a number", "POST", withdraw(f.submitted), `{"reason":1}`, "reason"),
		invalid(r, "reason over 1000 bytes", "POST", withdraw(f.submitted), with(map[string]any{}, "reason", strings.Repeat("r", 1001)), "reason"),
	)
	r = "POST /v1/applications/{id}/confirm"
	cs = append(cs,
		conflict(r, "confirm a submitted application", "POST", confirm(f.submitted), ""),
		conflict(r, "confirm a rejected application", "POST", confirm(f.rejected), `{}`),
		notFound(r, "unknown application", "POST", confirm(neverCreated), ""),
		notFound(r, "malformed id", "POST", confirm("application-1"), ""),
	)

	// POST /v1/pupils/{id}/forget: only unknown targets, a success would
	// erase a fixture pupil.
	r = "POST /v1/pupils/{id}/forget"
	cs = append(cs,
		notFound(r, "unknown pupil", "POST", "/v1/pupils/"+neverCreated+"/forget", ""),
		notFound(r, "malformed id", "POST", "/v1/pupils/..%2F..%2Fetc/forget", ""),
		notFound(r, "a UAI for an id", "POST", "/v1/pupils/"+uai+"/forget", "{}"),
	)

	// POST /v1/offers/{id}/amend and /reopen
	r = "POST /v1/offers/{id}/amend"
	amend := "/v1/offers/" + f.offer + "/amend"
	cs = append(cs,
		notFound(r, "unknown offer", "POST", "/v1/offers/"+neverCreated+"/amend", `{"title":"Autre"}`),
		notFound(r, "malformed id", "POST", "/v1/offers/offer-1/amend", `{"title":"Autre"}`),
		invalid(r, "seats is a string", "POST", amend, `{"seats":"3"}`, "seats"),
		invalid(r, "a field it does not take", "POST", amend, `{"sector":"s2"}`, "sector"),
		rule(r, "zero seats", "POST", amend, `{"seats":0}`, "seats"),
		rule(r, "blank title", "POST", amend, `{"title":" "}`, "title"),
		rule(r, "week 60", "POST", amend, `{"weeks":["2026-W60"]}`, "weeks"),
		rule(r, "a week already over added", "POST", amend, with(map[string]any{}, "weeks", []any{domain.WeekOf(time.Now().AddDate(0, 0, -7)), weekA, weekB}), "weeks"),
		rule(r, "a group larger than the seats", "POST", amend, `{"group_size":3}`, "group_size"),
		rule(r, "a reserved school that is no UAI", "POST", amend, `{"reserved":{"schools":["x"]}}`, "reserved.schools"),
		conflict(r, "drop a week with a held seat", "POST", amend, with(map[string]any{}, "weeks", []any{weekA})),
	)
	r = "POST /v1/offers/{id}/reopen"
	cs = append(cs,
		notFound(r, "unknown offer", "POST", "/v1/offers/"+neverCreated+"/reopen", ""),
		notFound(r, "malformed id", "POST", "/v1/offers/%20/reopen", ""),
		invalid(r, "a field it does not take", "POST", "/v1/offers/"+f.offer+"/reopen", `{"reason":"x"}`, "reason"),
	)

	// POST /v1/applications/{id}/read and /cancel
	r = "POST /v1/applications/{id}/read"
	cs = append(cs,
		notFound(r, "unknown application", "POST", "/v1/applications/"+neverCreated+"/read", ""),
		notFound(r, "malformed id", "POST", "/v1/applications/x/read", ""),
		invalid(r, "a field it does not take", "POST", "/v1/applications/"+f.submitted+"/read", `{"read":true}`, "read"),
	)
	r = "POST /v1/applications/{id}/cancel"
	cancelApp := func(id string) string { return "/v1/applications/" + id + "/cancel" }
	cs = append(cs,
		notFound(r, "unknown application", "POST", cancelApp(neverCreated), `{"reason":"fermeture"}`),
		notFound(r, "malformed id", "POST", cancelApp("..%2F"), `{"reason":"fermeture"}`),
		invalid(r, "reason is a list", "POST", cancelApp(f.confirmed), `{"reason":["a"]}`, "reason"),
		rule(r, "missing reason", "POST", cancelApp(f.confirmed), `{}`, "reason"),
		conflict(r, "cancel a submitted application", "POST", cancelApp(f.submitted), `{"reason":"fermeture"}`),
		conflict(r, "cancel a rejected application", "POST", cancelApp(f.rejected), `{"reason":"fermeture"}`),
	)

	// POST /v1/conventions/{id}/complete and /cancel
	r = "POST /v1/conventions/{id}/complete"
	complete := "/v1/conventions/" + f.convention + "/complete"
	cs = append(cs,
		notFound(r, "unknown convention", "POST", "/v1/conventions/"+neverCreated+"/complete", with(employerPart())),
		notFound(r, "malformed id", "POST", "/v1/conventions/%C3%A9/complete", with(employerPart())),
		invalid(r, "tutor is a string", "POST", complete, with(employerPart(), "tutor", "Paul"), "tutor"),
		invalid(r, "both_guardians is a string", "POST", complete, with(schoolPart(), "both_guardians", "yes"), "both_guardians"),
		rule(r, "unknown party", "POST", complete, with(employerPart(), "party", "mayor"), "party"),
		rule(r, "missing party", "POST", complete, with(employerPart(), "party", nil), "party"),
		rule(r, "employer without a tutor", "POST", complete, with(employerPart(), "tutor", nil), "tutor"),
		rule(r, "employer without activities", "POST", complete, with(employerPart(), "activities", nil), "activities"),
		rule(r, "a tutor's e-mail", "POST", complete, with(employerPart(), "tutor", map[string]any{"name": "Paul", "email": "paul"}), "tutor.email"),
		rule(r, "school without a referent teacher", "POST", complete, with(schoolPart(), "referent_teacher", nil), "referent_teacher"),
	)
	r = "POST /v1/conventions/{id}/cancel"
	cs = append(cs,
		notFound(r, "unknown convention", "POST", "/v1/conventions/"+neverCreated+"/cancel", `{"reason":"fermeture"}`),
		notFound(r, "malformed id", "POST", "/v1/conventions/1/cancel", `{"reason":"fermeture"}`),
		rule(r, "missing reason", "POST", "/v1/conventions/"+f.convention+"/cancel", `{}`, "reason"),
		rule(r, "reason over 1000 bytes", "POST", "/v1/conventions/"+f.convention+"/cancel", with(map[string]any{}, "reason", strings.Repeat("r", 1001)), "reason"),
	)

	// POST /v1/conventions/{id}/signatures
	r = "POST /v1/conventions/{id}/signatures"
	sign := "/v1/conventions/" + f.convention + "/signatures"
	sig := map[string]any{"role": "employer", "signer_name": "Paul Martin", "document_hash": f.hash}
	cs = append(cs,
		rule(r, "unknown role", "POST", sign, with(sig, "role", "mayor"), "role"),
		rule(r, "role in capitals", "POST", sign, with(sig, "role", "Employer"), "role"),
		rule(r, "missing role", "POST", sign, with(sig, "role", nil), "role"),
		rule(r, "missing signer_name", "POST", sign, with(sig, "signer_name", nil), "signer_name"),
		rule(r, "malformed document_hash", "POST", sign, with(sig, "document_hash", "abc"), "document_hash"),
		rule(r, "document_hash of 63 digits", "POST", sign, with(sig, "document_hash", f.hash[:63]), "document_hash"),
		invalid(r, "role is a number", "POST", sign, with(sig, "role", 1), "role"),
		conflict(r, "another version of the document", "POST", sign, with(sig, "document_hash", strings.Repeat("0", 64))),
		notFound(r, "unknown convention", "POST", "/v1/conventions/"+neverCreated+"/signatures", with(sig)),
		notFound(r, "malformed id", "POST", "/v1/conventions/..%2F"+f.convention+"/signatures", with(sig)),
	)

	cs = append(cs, groupCases(f, rule, invalid, notFound, conflict)...)

	// GET /v1/offers
	r = "GET /v1/offers"
	q := func(query string) string { return "/v1/offers?" + query }
	cs = append(cs,
		invalid(r, "page=0", "GET", q("page=0"), "", "page"),
		invalid(r, "page=-1", "GET", q("page=-1"), "", "page"),
		invalid(r, "page=abc", "GET", q("page=abc"), "", "page"),
		invalid(r, "per_page=1000", "GET", q("per_page=1000"), "", "per_page"),
		invalid(r, "per_page=0", "GET", q("per_page=0"), "", "per_page"),
		invalid(r, "week=2026-W60", "GET", q("week=2026-W60"), "", "week"),
		invalid(r, "week=2026-25", "GET", q("week=2026-25"), "", "week"),
		invalid(r, "grade=5e", "GET", q("grade=5e"), "", "grade"),
		invalid(r, "available=yes", "GET", q("available=yes"), "", "available"),
		invalid(r, "sector too long", "GET", q("sector="+strings.Repeat("s", 11)), "", "sector"),
		invalid(r, "near=abc", "GET", q("near=abc"), "", "near"),
		invalid(r, "near with one number", "GET", q("near=48.8"), "", "near"),
		invalid(r, "near off the globe", "GET", q("near=91,2.3"), "", "near"),
		invalid(r, "near=NaN,2.4", "GET", q("near=NaN,2.4"), "", "near"),
		invalid(r, "near=48.8,NaN", "GET", q("near=48.8,NaN"), "", "near"),
		invalid(r, "radius_km=-1", "GET", q("near=48.79,2.45&radius_km=-1"), "", "radius_km"),
		invalid(r, "radius_km=NaN", "GET", q("near=48.79,2.45&radius_km=NaN"), "", "radius_km"),
		invalid(r, "radius_km=1e309", "GET", q("near=48.79,2.45&radius_km=1e309"), "", "radius_km"),
		invalid(r, "radius_km without near", "GET", q("radius_km=5"), "", "radius_km"),
		invalid(r, "min_position=-3", "GET", q("min_position=-3"), "", "min_position"),
		invalid(r, "min_position=abc", "GET", q("min_position=abc"), "", "min_position"),
		invalid(r, "min_position over 64 bits", "GET", q("min_position=99999999999999999999"), "", "min_position"),
		invalid(r, "unknown parameter", "GET", q("colour=blue"), "", "colour"),
		invalid(r, "misspelt parameter", "GET", q("perpage=10"), "", "perpage"),
	)
	notReady := badCase{route: r, name: "min_position never reached", method: "GET", path: q("min_position=" + f.head + "000"), status: 503, code: "not_ready"}
	cs = append(cs, notReady)

	// The other queries.
	for _, g := range []struct{ route, prefix, suffix string }{
		{"GET /v1/offers/{id}", "/v1/offers/", ""},
		{"GET /v1/applications/{id}", "/v1/applications/", ""},
		{"GET /v1/conventions/{id}", "/v1/conventions/", ""},
		{"GET /v1/pupils/{id}/applications", "/v1/pupils/", "/applications"},
		{"GET /v1/employers/{id}/applications", "/v1/employers/", "/applications"},
		{"GET /v1/schools/{uai}/dashboard", "/v1/schools/", "/dashboard"},
		{"GET /v1/audit/applications/{id}", "/v1/audit/applications/", ""},
		{"GET /v1/pupils/{id}", "/v1/pupils/", ""},
	} {
		cs = append(cs,
			notFound(g.route, "unknown id", "GET", g.prefix+neverCreated+g.suffix, ""),
			notFound(g.route, "malformed id", "GET", g.prefix+"nope"+g.suffix, ""),
			notFound(g.route, "encoded traversal id", "GET", g.prefix+"..%2F..%2F..%2Fetc%2Fpasswd"+g.suffix, ""),
			notFound(g.route, "unicode id", "GET", g.prefix+"%D0%BF%D1%80%D0%B8%D0%B2%D0%B5%D1%82"+g.suffix, ""),
			notFound(g.route, "a 5000-character id", "GET", g.prefix+strings.Repeat("a", 5000)+g.suffix, ""),
			notFound(g.route, "a UUID without dashes", "GET", g.prefix+strings.ReplaceAll(neverCreated, "-", "")+g.suffix, ""),
		)
	}
	inbox := queryTargets["GET /v1/employers/{id}/applications"]
	mine := queryTargets["GET /v1/pupils/{id}/applications"]
	cs = append(cs,
		invalid("GET /v1/pupils/{id}/applications", "page=0", "GET", mine+"?page=0", "", "page"),
		invalid("GET /v1/pupils/{id}/applications", "per_page=1000", "GET", mine+"?per_page=1000", "", "per_page"),
		invalid("GET /v1/employers/{id}/applications", "unknown status", "GET", inbox+"?status=pending", "", "status"),
		invalid("GET /v1/employers/{id}/applications", "malformed offer_id", "GET", inbox+"?offer_id=..%2Fx", "", "offer_id"),
		invalid("GET /v1/employers/{id}/applications", "page=abc", "GET", inbox+"?page=abc", "", "page"),
		invalid("GET /v1/employers/{id}/applications", "per_page=-5", "GET", inbox+"?per_page=-5", "", "per_page"),
		invalid("GET /v1/audit/applications/{id}", "as_of=yesterday", "GET", queryTargets["GET /v1/audit/applications/{id}"]+"?as_of=yesterday", "", "as_of"),
		invalid("GET /v1/audit/applications/{id}", "format=xml", "GET", queryTargets["GET /v1/audit/applications/{id}"]+"?format=xml", "", "format"),
		invalid("GET /v1/conventions/{id}/document", "format=xml", "GET", queryTargets["GET /v1/conventions/{id}/document"]+"?format=xml", "", "format"),
		invalid("GET /v1/conventions/{id}/document", "format empty", "GET", queryTargets["GET /v1/conventions/{id}/document"]+"?format=", "", "format"),
		badCase{route: "GET /v1/conventions/{id}/document", name: "Accept: image/png only", method: "GET", path: queryTargets["GET /v1/conventions/{id}/document"],
			header: []string{"Accept", "image/png"}, status: 406, code: "not_acceptable"},
		notFound("GET /v1/schools/{uai}/dashboard", "unregistered UAI", "GET", "/v1/schools/0000000A/dashboard", ""),
		notFound("GET /v1/schools/{uai}/dashboard", "lower-case UAI", "GET", "/v1/schools/0941234a/dashboard", ""),
		invalid("GET /v1/stats/placements", "malformed department", "GET", "/v1/stats/placements?department=9", "", "department"),
		invalid("GET /v1/stats/placements", "department too long", "GET", "/v1/stats/placements?department=9400", "", "department"),
		invalid("GET /v1/stats/placements", "unknown parameter", "GET", "/v1/stats/placements?school=x", "", "school"),
		bad("GET /v1/employers/{id}/applications", "status=read is a status", "GET", inbox+"?status=read", "", 200, "", ""),
		bad("GET /v1/employers/{id}/applications", "status=cancelled is a status", "GET", inbox+"?status=cancelled", "", 200, "", ""),
		bad("GET /v1/employers/{id}/applications", "status=expired is a status", "GET", inbox+"?status=expired", "", 200, "", ""),
		badCase{route: "GET /v1/stats/offers", name: "min_position never reached", method: "GET", path: "/v1/stats/offers?min_position=" + f.head + "000", status: 503, code: "not_ready"},
		withAllow(bad("GET /v1/stats/stream", "POST to the stream", "POST", "/v1/stats/stream", `{}`, 405, "method_not_allowed", ""), "GET"),
	)

	// Follow-up views and campaign targets.
	for _, g := range []struct{ route, prefix, suffix string }{
		{"GET /v1/pupils/{id}/follow-up", "/v1/pupils/", "/follow-up"},
		{"GET /v1/schools/{uai}/pupils/{id}", "/v1/schools/" + uai + "/pupils/", ""},
	} {
		cs = append(cs,
			notFound(g.route, "unknown id", "GET", g.prefix+neverCreated+g.suffix, ""),
			notFound(g.route, "malformed id", "GET", g.prefix+"nope"+g.suffix, ""),
			notFound(g.route, "encoded traversal id", "GET", g.prefix+"..%2F..%2F..%2Fetc%2Fpasswd"+g.suffix, ""),
			notFound(g.route, "a 5000-character id", "GET", g.prefix+strings.Repeat("a", 5000)+g.suffix, ""),
		)
	}
	r = "GET /v1/schools/{uai}/pupils"
	pupils := "/v1/schools/" + uai + "/pupils"
	cs = append(cs,
		notFound(r, "unregistered UAI", "GET", "/v1/schools/0000000A/pupils", ""),
		notFound(r, "lower-case UAI", "GET", "/v1/schools/0941234a/pupils", ""),
		notFound("GET /v1/schools/{uai}/pupils/{id}", "the pupil of an unregistered school", "GET", "/v1/schools/0000000A/pupils/"+f.pupilFree, ""),
		invalid(r, "unknown status", "GET", pupils+"?status=lost", "", "status"),
		invalid(r, "grade=5e", "GET", pupils+"?grade=5e", "", "grade"),
		invalid(r, "class over 100 bytes", "GET", pupils+"?class="+strings.Repeat("x", 101), "", "class"),
		invalid(r, "page=0", "GET", pupils+"?page=0", "", "page"),
		invalid(r, "unknown parameter", "GET", pupils+"?colour=blue", "", "colour"),
	)
	r = "POST /v1/targets"
	target := map[string]any{"scope": "department", "code": "94", "metric": "offers_open", "target": 10}
	cs = append(cs,
		invalid(r, "target is a string", "POST", "/v1/targets", with(target, "target", "10"), "target"),
		rule(r, "unknown scope", "POST", "/v1/targets", with(target, "scope", "planet"), "scope"),
		rule(r, "unknown département", "POST", "/v1/targets", with(target, "code", "999"), "code"),
		rule(r, "unknown metric", "POST", "/v1/targets", with(target, "metric", "smiles"), "metric"),
		rule(r, "negative target", "POST", "/v1/targets", with(target, "target", -1), "target"),
		rule(r, "a code with the scope all", "POST", "/v1/targets", with(target, "scope", "all"), "code"),
	)
	cs = append(cs, campaignCases(f)...)
	r = "POST /v1/operators/{id}/employers"
	link := "/v1/operators/op-bad/employers"
	cs = append(cs,
		rule(r, "no employer", "POST", link, `{"employer_ids":[]}`, "employer_ids"),
		rule(r, "an unknown employer", "POST", link, with(map[string]any{"employer_ids": []string{f.employer, neverCreated}}), "employer_ids[1]"),
		rule(r, "not an id", "POST", link, `{"employer_ids":["x"]}`, "employer_ids[0]"),
		notFound(r, "an operator id with a slash", "POST", "/v1/operators/a%2Fb/employers", with(map[string]any{"employer_ids": []string{f.employer}})),
		notFound(r, "a 65-character operator id", "POST", "/v1/operators/"+strings.Repeat("o", 65)+"/employers", with(map[string]any{"employer_ids": []string{f.employer}})),
	)

	r = "POST /v1/pupils/{id}/wishes"
	wishes := "/v1/pupils/" + f.pupilFree + "/wishes"
	wish := map[string]any{"sectors": []string{"s1", "s12"}, "max_distance_km": 15}
	cs = append(cs,
		invalid(r, "sectors is a string", "POST", wishes, with(wish, "sectors", "s1"), "sectors"),
		invalid(r, "max_distance_km is a string", "POST", wishes, with(wish, "max_distance_km", "far"), "max_distance_km"),
		invalid(r, "max_distance_km is a fraction", "POST", wishes, with(wish, "max_distance_km", 2.5), "max_distance_km"),
		rule(r, "missing sectors", "POST", wishes, with(wish, "sectors", nil), "sectors"),
		rule(r, "six sectors", "POST", wishes, with(wish, "sectors", []string{"s1", "s2", "s3", "s4", "s5", "s6"}), "sectors"),
		rule(r, "an unknown sector", "POST", wishes, with(wish, "sectors", []string{"s1", "s52"}), "sectors"),
		rule(r, "a sector twice", "POST", wishes, with(wish, "sectors", []string{"s1", "s1"}), "sectors"),
		rule(r, "missing max_distance_km", "POST", wishes, with(wish, "max_distance_km", nil), "max_distance_km"),
		rule(r, "max_distance_km of 500", "POST", wishes, with(wish, "max_distance_km", 500), "max_distance_km"),
		rule(r, "a week that is not one", "POST", wishes, with(wish, "weeks", []string{"2027-W60"}), "weeks"),
		rule(r, "an unknown offer", "POST", wishes, with(wish, "offers", []string{neverCreated}), "offers"),
		rule(r, "an offer id that is not one", "POST", wishes, with(wish, "offers", []string{"x"}), "offers"),
		notFound(r, "an unknown pupil", "POST", "/v1/pupils/"+neverCreated+"/wishes", with(wish)),
	)
	r = "GET /v1/pupils/{id}/suggestions"
	cs = append(cs,
		invalid(r, "per_page of 0", "GET", "/v1/pupils/"+f.pupilFree+"/suggestions?per_page=0", "", "per_page"),
		invalid(r, "page is a word", "GET", "/v1/pupils/"+f.pupilFree+"/suggestions?page=one", "", "page"),
		notFound(r, "an unknown pupil", "GET", "/v1/pupils/"+neverCreated+"/suggestions", ""),
		notFound(r, "not an id", "GET", "/v1/pupils/x/suggestions", ""),
	)
	r = "GET /v1/offers/{id}/candidates"
	cs = append(cs,
		invalid(r, "per_page of 101", "GET", "/v1/offers/"+f.offer+"/candidates?per_page=101", "", "per_page"),
		notFound(r, "an unknown offer", "GET", "/v1/offers/"+neverCreated+"/candidates", ""),
	)
	r = "GET /v1/desk/pupils"
	cs = append(cs,
		invalid(r, "a lower-case UAI", "GET", "/v1/desk/pupils?school=0941234a", "", "school"),
		invalid(r, "an unknown département code", "GET", "/v1/desk/pupils?department=9999", "", "department"),
	)

	// Operations endpoints and the dashboard's page take no input: wrong
	// methods are refused, junk is ignored, unknown files are not found.
	cs = append(cs,
		withAllow(bad("GET /healthz", "POST", "POST", "/healthz", `{}`, 405, "method_not_allowed", ""), "GET"),
		bad("GET /healthz", "junk query and body", "GET", "/healthz?x=%ZZ&page=-1", `{"a":`, 200, "", ""),
		withAllow(bad("GET /readyz", "DELETE", "DELETE", "/readyz", "", 405, "method_not_allowed", ""), "GET"),
		withAllow(bad("GET /openapi.json", "PUT", "PUT", "/openapi.json", `{}`, 405, "method_not_allowed", ""), "GET"),
		bad("GET /metrics", "junk query", "GET", "/metrics?min_position=-3&x=%ZZ", "", 200, "", ""),
		withAllow(bad("GET /", "POST", "POST", "/", `{}`, 405, "method_not_allowed", ""), "GET"),
		bad("GET /", "junk query", "GET", "/?x=%ZZ&page=-1", "", 200, "", ""),
		bad("GET /assets/{name}", "unknown file", "GET", "/assets/nope.js", "", 404, "not_found", ""),
		bad("GET /assets/{name}", "encoded traversal", "GET", "/assets/..%2F..%2Fgo.mod", "", 404, "not_found", ""),
		bad("GET /assets/{name}", "the page under another name", "GET", "/assets/index.html", "", 404, "not_found", ""),
		withAllow(bad("GET /assets/{name}", "POST", "POST", "/assets/app.js", `{}`, 405, "method_not_allowed", ""), "GET"),
		bad("unmatched", "unknown route", "GET", "/v1/nope", "", 404, "not_found", ""),
		withAllow(bad("unmatched", "unknown method on a route", "DELETE", "/v1/offers", "", 405, "method_not_allowed", ""), "GET, POST"),
		bad("unmatched", "trailing slash", "GET", "/v1/offers/", "", 404, "not_found", ""),
		bad("unmatched", "raw traversal", "GET", "/v1/offers/../../etc/passwd", "", 404, "not_found", ""),
	)

	// POST /v1/operators
	r = "POST /v1/operators"
	opr := validOperator()
	opr["email"] = "autre@vvmt.example" // not registered: a success would register it
	cs = append(cs,
		rule(r, "not an e-mail", "POST", "/v1/operators", with(opr, "email", "api at vvmt"), "email"),
		rule(r, "a password of 11 characters", "POST", "/v1/operators", with(opr, "password", "onze caract"), "password"),
		rule(r, "an unknown département", "POST", "/v1/operators", with(opr, "departments", []string{"99"}), "departments[0]"),
		rule(r, "an unknown employer", "POST", "/v1/operators", with(opr, "employer_ids", []string{neverCreated}), "employer_ids[0]"),
		rule(r, "departments missing", "POST", "/v1/operators", with(opr, "departments", nil), "departments"),
		badCase{route: r, name: "an e-mail already registered, in other case", method: "POST", path: "/v1/operators",
			body: with(validOperator(), "email", "API@VVMT.example"), status: 409, code: "conflict", field: "email"},
	)
	return append(cs, partnerBadCases(f)...)
}

// partnerBadCases are the bad-input cases of the partner API v2, answered
// {"code", "error"} in its words, sent with the fixture operator's token.
func partnerBadCases(f badFixture) []badCase {
	const offers = "/api/v2/internship_offers"
	mine := offers + "/" + f.remoteID
	tok := []string{"Authorization", "Bearer " + f.operatorToken}
	v2 := func(route, name, method, path, body string, status int, code, field string) badCase {
		return badCase{route: route, name: name, method: method, path: path, body: body, header: tok, status: status, code: code, field: field, v2: true}
	}
	push := func(kv ...any) string {
		o := validPush("bad-1")["internship_offer"].(map[string]any)
		return with(map[string]any{"internship_offer": json.RawMessage(with(o, kv...))})
	}
	login, post, patch, del := "POST /api/v2/auth/login", "POST "+offers, "PATCH "+offers+"/{remote_id}", "DELETE "+offers+"/{remote_id}"
	list, search, sectors := "GET "+offers, "GET "+offers+"/search", "GET /api/v2/sectors"
	cs := []badCase{
		v2(login, "truncated JSON", "POST", "/api/v2/auth/login", `{"email":`, 400, "VALIDATION_ERROR", "body"),
		v2(login, "an unknown field", "POST", "/api/v2/auth/login", `{"email":"a@b.fr","password":"x","zzz":1}`, 400, "VALIDATION_ERROR", "zzz"),
		v2(login, "over 1 MiB", "POST", "/api/v2/auth/login", `{"email":"`+strings.Repeat("a", 1<<20)+`"}`, 413, "PAYLOAD_TOO_LARGE", ""),
		{route: login, name: "a wrong password", method: "POST", path: "/api/v2/auth/login", body: with(map[string]any{"email": "api@vvmt.example", "password": "nope"}),
			status: 401, contains: `{"error":"Invalid email or password"}`},
		v2(post, "not JSON", "POST", offers, `name=x`, 400, "VALIDATION_ERROR", "body"),
		v2(post, "no internship_offer", "POST", offers, `{}`, 422, "BAD_PAYLOAD", ""),
		v2(post, "no grades", "POST", offers, push("grades", nil), 422, "BAD_PAYLOAD", ""),
		v2(post, "no weeks", "POST", offers, push("weeks", []string{}), 422, "BAD_PAYLOAD", ""),
		v2(post, "seconde and troisieme", "POST", offers, push("grades", []string{"seconde", "troisieme"}), 422, "WRONG_PARAMS", ""),
		v2(post, "seconde outside the national period", "POST", offers, push("grades", []string{"seconde"}), 422, "WRONG_PARAMS", ""),
		v2(post, "an unknown sector", "POST", offers, push("sector_uuid", "s99"), 400, "VALIDATION_ERROR", "sector_uuid"),
		v2(post, "an unknown postal code", "POST", offers, push("zipcode", "00000"), 400, "VALIDATION_ERROR", "zipcode"),
		v2(post, "title over 150", "POST", offers, push("title", strings.Repeat("t", 151)), 400, "VALIDATION_ERROR", "title"),
		v2(post, "max_candidates of the wrong type", "POST", offers, push("max_candidates", "4"), 400, "VALIDATION_ERROR", "internship_offer.max_candidates"),
		v2(post, "an unknown field", "POST", offers, push("zzz", 1), 400, "VALIDATION_ERROR", "internship_offer.zzz"),
		v2(post, "a NUL in the title", "POST", offers, push("title", "ab\u0000cd"), 400, "VALIDATION_ERROR", "internship_offer.title"),
		v2(post, "the remote_id pushed already", "POST", offers, with(validPush(f.remoteID)), 409, "DUPLICATE_API", ""),
		{route: post, name: "Content-Type text/plain", method: "POST", path: offers, body: push(), header: append(tok, "Content-Type", "text/plain"),
			status: 415, code: "UNSUPPORTED_MEDIA_TYPE", v2: true},
		{route: post, name: "no token", method: "POST", path: offers, body: push(), header: []string{"Authorization", ""},
			status: 401, code: "UNAUTHORIZED", v2: true},
		v2(patch, "an unknown remote_id", "PATCH", offers+"/never-pushed", `{"internship_offer":{}}`, 404, "NOT_FOUND", ""),
		v2(patch, "a field that cannot change", "PATCH", mine, `{"internship_offer":{"zipcode":"75011"}}`, 400, "VALIDATION_ERROR", "zipcode"),
		v2(patch, "published_at not a date", "PATCH", mine, `{"internship_offer":{"published_at":"hier"}}`, 400, "VALIDATION_ERROR", "published_at"),
		v2(patch, "truncated JSON", "PATCH", mine, `{"internship_offer":`, 400, "VALIDATION_ERROR", "body"),
		v2(del, "an unknown remote_id", "DELETE", offers+"/never-pushed", "", 404, "NOT_FOUND", ""),
		v2(list, "page 0", "GET", offers+"?page=0", "", 400, "VALIDATION_ERROR", "page"),
		v2(list, "min_position -3", "GET", offers+"?min_position=-3", "", 400, "VALIDATION_ERROR", "min_position"),
		v2(search, "radius without a point", "GET", offers+"/search?radius=1000", "", 400, "VALIDATION_ERROR", "radius"),
		v2(search, "latitude not a number", "GET", offers+"/search?latitude=abc&longitude=2.3", "", 400, "VALIDATION_ERROR", "latitude"),
		v2(search, "a grade of ours", "GET", offers+"/search?grades[]=3e", "", 400, "VALIDATION_ERROR", "grades[]"),
		v2(search, "a week that is not one", "GET", offers+"/search?weeks[]=2026-W60", "", 400, "VALIDATION_ERROR", "weeks[]"),
		v2(search, "keyword with invalid UTF-8", "GET", offers+"/search?keyword=ab%FFcd", "", 400, "VALIDATION_ERROR", "keyword"),
		v2(search, "keyword of common words only", "GET", offers+"/search?keyword=de+la", "", 400, "VALIDATION_ERROR", "keyword"),
		{route: sectors, name: "no token", method: "GET", path: "/api/v2/sectors", header: []string{"Authorization", ""},
			status: 401, code: "UNAUTHORIZED", v2: true},
	}
	// every path: a method it does not serve is a 405 naming those it does
	for _, c := range []struct{ route, path, allow string }{
		{login, "/api/v2/auth/login", "POST"}, {post, offers, "GET, POST"}, {patch, mine, "PATCH, DELETE"},
		{search, offers + "/search", "GET, PATCH, DELETE"}, {sectors, "/api/v2/sectors", "GET"},
	} {
		cs = append(cs, badCase{route: c.route, name: "PUT is not allowed", method: "PUT", path: c.path, body: `{}`, header: tok,
			status: 405, code: "METHOD_NOT_ALLOWED", allow: c.allow, v2: true})
	}
	return cs
}

// withAllow is c answered with Allow: methods.
func withAllow(c badCase, methods string) badCase {
	c.allow = methods
	return c
}

// badBodies are the bodies every command refuses with 400 or 413, derived
// from its declaration: malformed JSON, an unknown field, too large, empty
// unless the body is optional, and each field with a value of the wrong
// type.
func badBodies(rt route.Route, path string) []badCase {
	const mib = 1 << 20
	key := rt.Key()
	invalid := func(name, body, field string) badCase {
		return badCase{route: key, name: name, method: "POST", path: path, body: body, status: 400, code: "validation_failed", field: field}
	}
	cs := []badCase{
		invalid("truncated JSON", `{"name":`, "body"),
		invalid("not JSON", `name=Martin`, "body"),
		invalid("an array", `[1,2]`, "body"),
		invalid("a string", `"hello"`, "body"),
		invalid("two objects", `{} {}`, "body"),
		invalid("trailing garbage", `{} x`, "body"),
		invalid("a stray closing brace", `{}}`, "body"),
		invalid("a stray closing bracket", `{}]`, "body"),
		invalid("unknown field", `{"zzz_unknown":1}`, "zzz_unknown"),
		{route: key, name: "body over 1 MiB", method: "POST", path: path, body: `{"name":"` + strings.Repeat("a", mib) + `"}`, status: 413, code: "too_large"},
		{route: key, name: "body of whitespace over 1 MiB", method: "POST", path: path, body: "{}" + strings.Repeat(" ", mib), status: 413, code: "too_large"},
	}
	if !rt.OptionalBody {
		cs = append(cs, invalid("empty body", "", "body"))
	}
	// a body must be declared JSON, whatever it holds
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "", "application/json; charset=iso-8859-1"} {
		cs = append(cs, badCase{route: key, name: "Content-Type " + strconv.Quote(ct), method: "POST", path: path, body: `{}`,
			header: []string{"Content-Type", ct}, status: 415, code: "unsupported_media_type"})
	}
	if rt.Body == nil {
		// the encoding is checked before the fields: a key is named even
		// where no field is taken
		return append(cs,
			invalid("invalid UTF-8 in a key", "{\"zz\xffz\":1}", "zz\uFFFDz"),
			invalid("a key given twice", `{"zzz":1,"zzz":1}`, "zzz"),
		)
	}
	// fields that must be present even when zero are given their zero value
	present := map[string]any{}
	for f := range rt.Body.Fields() {
		if f.Tag.Get("required") == "true" {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			present[name] = reflect.Zero(f.Type).Interface()
		}
	}
	// each string field with invalid UTF-8 or a NUL, and each field twice
	for f := range rt.Body.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		cs = append(cs, invalid(name+" given twice", fmt.Sprintf(`{"%s":1,"%s":1}`, name, name), name))
		if f.Type.Kind() != reflect.String {
			continue
		}
		cs = append(cs,
			invalid(name+" with invalid UTF-8", strings.Replace(with(present, name, "ab~cd"), "~", "\xff", 1), name),
			invalid(name+" with a NUL byte", strings.Replace(with(present, name, "ab~cd"), "~", "\x00", 1), name),
			invalid(name+" with an escaped NUL", strings.Replace(with(present, name, "ab~cd"), "~", `\u0000`, 1), name),
		)
	}
	for f := range rt.Body.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		t := f.Type
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		var wrong any = "x" // numbers, booleans, lists and objects
		if t.Kind() == reflect.String {
			wrong = 5
		}
		cs = append(cs, invalid(name+" of the wrong type", with(present, name, wrong), name))
	}
	return cs
}

// TestBadInput sends bad input to every route and checks the contract's
// answer: the status, the error envelope and its code, the offending field,
// never a 500, the same answer to the same request, and nothing appended.
// It runs without authentication and with it, each case by a principal the
// route lets in, so that the guard, which reads the body first, changes no
// answer.
func TestBadInput(t *testing.T) {
	for _, authOn := range []bool{false, true} {
		t.Run(fmt.Sprintf("authentication %v", authOn), func(t *testing.T) {
			redistest.EachRedis(t, func(t *testing.T, rd redistest.Redis) { testBadInput(t, rd, authOn) })
		})
	}
}

// signatures is the route the back office may not call: its cases are sent
// by the convention's employer.
const signatures = "POST /v1/conventions/{id}/signatures"

// groupSignatures likewise: its cases are sent by the booking's employer.
const groupSignatures = "POST /v1/group-bookings/{id}/signatures"

type caseFunc func(route, name, method, path, body, field string) badCase

// groupCases are the proposals', group bookings' and group signatures'
// own cases.
func groupCases(f badFixture, rule, invalid caseFunc, notFound, conflict func(route, name, method, path, body string) badCase) []badCase {
	r := "POST /v1/offers/{id}/proposals"
	prop := map[string]any{"pupil_id": f.pupilFree, "weeks": []any{weekA}}
	propose := "/v1/offers/" + f.offer + "/proposals"
	cs := []badCase{
		notFound(r, "unknown offer", "POST", "/v1/offers/"+neverCreated+"/proposals", with(prop)),
		invalid(r, "malformed pupil_id", "POST", propose, with(prop, "pupil_id", "pupil-1"), "pupil_id"),
		invalid(r, "weeks is a string", "POST", propose, with(prop, "weeks", weekA), "weeks"),
		rule(r, "unknown pupil", "POST", propose, with(prop, "pupil_id", neverCreated), "pupil_id"),
		rule(r, "a week the offer does not run", "POST", propose, with(prop, "weeks", []any{weekC}), "weeks"),
		rule(r, "missing weeks", "POST", propose, with(prop, "weeks", nil), "weeks"),
		conflict(r, "a rejected pupil proposed again", "POST", propose, with(prop, "pupil_id", f.rejectedPupil)),
		conflict(r, "a collective offer", "POST", "/v1/offers/"+f.collective+"/proposals", with(prop)),
	}
	r = "POST /v1/offers/{id}/group-bookings"
	bk := map[string]any{"school_uai": uai, "pupil_ids": []any{f.pupilFree}, "weeks": []any{weekA}}
	book := "/v1/offers/" + f.collective + "/group-bookings"
	cs = append(cs,
		notFound(r, "unknown offer", "POST", "/v1/offers/"+neverCreated+"/group-bookings", with(bk)),
		invalid(r, "pupil_ids is a string", "POST", book, with(bk, "pupil_ids", f.pupilFree), "pupil_ids"),
		rule(r, "no pupil", "POST", book, with(bk, "pupil_ids", []any{}), "pupil_ids"),
		rule(r, "unknown pupil", "POST", book, with(bk, "pupil_ids", []any{neverCreated}), "pupil_ids"),
		rule(r, "a pupil twice", "POST", book, with(bk, "pupil_ids", []any{f.pupilFree, f.pupilFree}), "pupil_ids"),
		rule(r, "unknown school", "POST", book, with(bk, "school_uai", "0000000X"), "school_uai"),
		rule(r, "week 60", "POST", book, with(bk, "weeks", []any{"2026-W60"}), "weeks"),
		conflict(r, "more pupils than seats left", "POST", book, with(bk, "pupil_ids", []any{f.pupilFree, f.rejectedPupil})),
		conflict(r, "an offer that is not collective", "POST", "/v1/offers/"+f.offer+"/group-bookings", with(bk)),
	)
	r = groupSignatures
	sig := map[string]any{"role": "employer", "signer_name": "Paul Martin"}
	sign := "/v1/group-bookings/" + f.booking + "/signatures"
	return append(cs,
		rule(r, "the pupil's role", "POST", sign, with(sig, "role", "pupil"), "role"),
		rule(r, "missing signer_name", "POST", sign, with(sig, "signer_name", nil), "signer_name"),
		invalid(r, "role is a number", "POST", sign, with(sig, "role", 1), "role"),
		conflict(r, "conventions not completed", "POST", sign, with(sig)),
		notFound(r, "unknown booking", "POST", "/v1/group-bookings/"+neverCreated+"/signatures", with(sig)),
	)
}

func testBadInput(t *testing.T, rd redistest.Redis, authOn bool) {
	cfg := app.Config{DataDir: t.TempDir(), RedisURL: rd.URL, SealEvery: -1} // a seal would move the log mid-case
	var issuer *auth.HMAC
	if authOn {
		var err error
		if issuer, err = auth.NewHMAC([]byte(strings.Repeat("b", 32)), nil); err != nil {
			t.Fatal(err)
		}
		cfg.Verifier = issuer
	}
	a, c := bootWith(t, cfg)
	if authOn {
		c.Token = func(role, subject string) string {
			tok, err := issuer.Issue(auth.Principal{Role: role, Subject: subject}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
	}
	bo := c.As(auth.Backoffice, "agent-1")
	f := setupBadFixture(t, a, bo)
	cases := badInputCases(t, f, a.Routes())

	// Every declared route has bad-input cases.
	covered := map[string]bool{}
	for _, bc := range cases {
		covered[bc.route] = true
	}
	for _, rt := range a.Routes() {
		if !covered[rt.Key()] {
			t.Errorf("no bad-input case for %s", rt.Key())
		}
	}

	for _, bc := range cases {
		c := bo
		if bc.route == signatures || bc.route == groupSignatures {
			c = c.As(auth.Employer, f.employer)
			if authOn && bc.status == 404 {
				// the guard reads the owner first: a missing convention
				// is refused like another's
				bc.status, bc.code = 403, "forbidden"
			}
		}
		t.Run(bc.route+"/"+bc.name, func(t *testing.T) {
			before := logHead(t, c)
			first := c.With(t).Do(bc.method, bc.path, bc.body, bc.header...)
			again := c.With(t).Do(bc.method, bc.path, bc.body, bc.header...)
			after := logHead(t, c)

			for _, got := range []httpclient.Reply{first, again} {
				if got.Status >= 500 && (got.Status != 503 || bc.code != "not_ready") {
					t.Errorf("%s %s: server error %d: %.300s", bc.method, bc.path, got.Status, got.Raw)
				}
			}
			if first.Status != bc.status {
				t.Errorf("%s %.120s: status %d, want %d: %.300s", bc.method, bc.path, first.Status, bc.status, first.Raw)
			}
			if bc.code != "" {
				if ct := first.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Errorf("content type %q", ct)
				}
				for field := range strings.SplitSeq(bc.field, ",") {
					if bc.v2 {
						checkV2Envelope(t, first.Raw, bc.code, field)
						continue
					}
					checkErrorEnvelope(t, first.Raw, bc.code, field)
				}
				if goType.MatchString(first.Raw) {
					t.Errorf("the answer names a Go type: %.300s", first.Raw)
				}
				if bc.code == "not_ready" && first.Header.Get("Retry-After") == "" {
					t.Errorf("503 not_ready without Retry-After")
				}
			}
			if !strings.Contains(first.Raw, bc.contains) {
				t.Errorf("the answer does not say %q: %.300s", bc.contains, first.Raw)
			}
			if got := first.Header.Get("Allow"); got != bc.allow {
				t.Errorf("Allow: %q, want %q", got, bc.allow)
			}
			if again.Status != first.Status || (bc.code != "" && !sameJSON(first.Raw, again.Raw)) {
				t.Errorf("the same request answered differently:\nfirst %d %.300s\nagain %d %.300s", first.Status, first.Raw, again.Status, again.Raw)
			}
			if before != after {
				t.Errorf("the log moved from %s to %s: a rejected request appended events", before, after)
			}
		})
	}
}

// goType matches Go's names for types, which an answer must never show.
var goType = regexp.MustCompile(`\b(u?int(8|16|32|64)?|float(32|64)|complex(64|128)|struct ?\{|map\[|\[\][a-z]|interface ?\{|bool)\b|json:\\?"`)

func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return a == b
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// TestBadQueryAnswersAlike sends the same query with several bad parameters
// again and again: the answer must not change from one request to the
// next, and must name a parameter at fault.
func TestBadQueryAnswersAlike(t *testing.T) {
	_, c := boot(t, t.TempDir(), redistest.Mini(t).URL)
	for _, query := range []string{
		"colour=blue&size=xl&shape=round",
		"page=0&per_page=0",
		"grade=5e&week=2026-W60&available=yes",
	} {
		first := c.With(t).Do("GET", "/v1/offers?"+query, "")
		checkErrorEnvelope(t, first.Raw, "validation_failed", "")
		for range 20 {
			again := c.With(t).Do("GET", "/v1/offers?"+query, "")
			if again.Status != first.Status || !sameJSON(again.Raw, first.Raw) {
				t.Errorf("GET /v1/offers?%s answered differently:\nfirst %d %s\nthen  %d %s", query, first.Status, first.Raw, again.Status, again.Raw)
				break
			}
		}
	}
}

// TestEmployerInboxCarriesNoPupilIdentity: before acceptance, an item of the
// employer's inbox names neither the pupil, nor their school, address or
// birth date (the contract); only opaque ids.
func TestEmployerInboxCarriesNoPupilIdentity(t *testing.T) {
	a, c := boot(t, t.TempDir(), redistest.Mini(t).URL)
	f := setupBadFixture(t, a, c)
	inbox := c.Must(200, "GET", "/v1/employers/"+f.employer+"/applications?min_position="+f.head, nil)
	items, _ := inbox["items"].([]any)
	if len(items) == 0 {
		t.Fatalf("empty inbox: %v", inbox)
	}
	for _, x := range items {
		it, _ := x.(map[string]any)
		switch str(it, "status") {
		case "submitted", "read":
		default:
			continue
		}
		for _, k := range []string{"school_uai", "school_name", "school", "first_name", "last_name", "name", "birth_date", "address", "guardians"} {
			if _, ok := it[k]; ok {
				t.Errorf("a %s application in the employer inbox carries %q: %v", str(it, "status"), k, it)
			}
		}
		if raw, _ := json.Marshal(it); strings.Contains(string(raw), uai) || strings.Contains(string(raw), "Benali") || strings.Contains(string(raw), "2012-03-14") {
			t.Errorf("a %s application in the employer inbox identifies the pupil: %s", str(it, "status"), raw)
		}
	}
}

// campaignCases: campaigns and allocation rounds.
func campaignCases(f badFixture) []badCase {
	bad := func(route, name, method, path, body string, status int, code, field string) badCase {
		return badCase{route: route, name: name, method: method, path: path, body: body, status: status, code: code, field: field}
	}
	invalid := func(route, name, method, path, body, field string) badCase {
		return bad(route, name, method, path, body, 400, "validation_failed", field)
	}
	rule := func(route, name, method, path, body, field string) badCase {
		return bad(route, name, method, path, body, 422, "validation_failed", field)
	}
	notFound := func(route, name, method, path, body string) badCase {
		return bad(route, name, method, path, body, 404, "not_found", "")
	}
	r := "POST /v1/campaigns"
	campaign := map[string]any{"name": "Val-de-Marne", "departments": []string{"94"}, "grades": []string{"3e"}, "weeks": []string{weekB}}
	rounds := "/v1/campaigns/" + neverCreated + "/rounds"
	return []badCase{
		invalid(r, "departments is a string", "POST", "/v1/campaigns", with(campaign, "departments", "94"), "departments"),
		rule(r, "missing name", "POST", "/v1/campaigns", with(campaign, "name", nil), "name"),
		rule(r, "no département", "POST", "/v1/campaigns", with(campaign, "departments", []string{}), "departments"),
		rule(r, "unknown département", "POST", "/v1/campaigns", with(campaign, "departments", []string{"999"}), "departments"),
		rule(r, "a commune of another département", "POST", "/v1/campaigns", with(campaign, "communes", []string{"75056"}), "communes"),
		rule(r, "unknown grade", "POST", "/v1/campaigns", with(campaign, "grades", []string{"5e"}), "grades"),
		rule(r, "missing weeks", "POST", "/v1/campaigns", with(campaign, "weeks", nil), "weeks"),
		rule(r, "malformed week", "POST", "/v1/campaigns", with(campaign, "weeks", []string{"2027-W99"}), "weeks"),
		rule(r, "negative target", "POST", "/v1/campaigns", with(campaign, "target", -1), "target"),
		invalid("POST /v1/campaigns/{id}/rounds", "seed is a string", "POST", rounds, `{"seed":"7"}`, "seed"),
		rule("POST /v1/campaigns/{id}/rounds", "max_choices over 50", "POST", rounds, `{"max_choices":51}`, "max_choices"),
		rule("POST /v1/campaigns/{id}/rounds", "negative max_choices", "POST", rounds, `{"max_choices":-1}`, "max_choices"),
		notFound("POST /v1/campaigns/{id}/rounds", "unknown campaign", "POST", rounds, `{"seed":7}`),
		notFound("POST /v1/campaigns/{id}/rounds", "malformed campaign id", "POST", "/v1/campaigns/nope/rounds", ""),
		notFound("POST /v1/campaigns/{id}/rounds", "an employer's id as a campaign", "POST", "/v1/campaigns/"+f.employer+"/rounds", ""),
		notFound("POST /v1/rounds/{id}/publish", "unknown round", "POST", "/v1/rounds/"+neverCreated+"/publish", ""),
		notFound("POST /v1/rounds/{id}/publish", "malformed round id", "POST", "/v1/rounds/..%2F..%2Fx/publish", ""),
		notFound("GET /v1/rounds/{id}", "unknown round", "GET", "/v1/rounds/"+neverCreated, ""),
		notFound("GET /v1/rounds/{id}", "malformed round id", "GET", "/v1/rounds/nope", ""),
		notFound("GET /v1/rounds/{id}", "an offer's id as a round", "GET", "/v1/rounds/"+f.offer, ""),
	}
}
