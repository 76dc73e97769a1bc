package app_test

import (
	"strings"
	"testing"
	"time"

	"passerelle/internal/app"
	"passerelle/internal/auth"
	"passerelle/internal/testsupport/redistest"
)

// When the school asks both guardians to sign, each signs for themself:
// the guardian who signed as guardian cannot sign as second guardian, with
// today's token or with a token of before (a bare pupil id, the first
// guardian); the second guardian can, and the convention tells who signed.
func TestBothGuardiansSignEachForThemself(t *testing.T) {
	issuer, err := auth.NewHMAC([]byte(strings.Repeat("k", 32)), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, c := bootWith(t, app.Config{DataDir: t.TempDir(), RedisURL: redistest.Mini(t).URL, Verifier: issuer, SealEvery: -1, ExpiryEvery: -1})
	c.Token = func(role, subject string) string {
		tok, err := issuer.Issue(auth.Principal{Role: role, Subject: subject}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	bo := c.As("backoffice", "agent")
	emp := str(bo.Must(201, "POST", "/v1/employers", map[string]any{
		"name": "Atelier", "siret": siret, "kind": "company", "commune_code": "94028", "address": "3 rue",
	}), "id")
	bo.Must(201, "POST", "/v1/schools", map[string]any{
		"uai": uai, "name": "Collège", "kind": "college", "commune_code": "94028", "education_priority": "none", "qpv": false,
	})
	school, employer := c.As("school", uai), c.As("employer", emp)
	pupil := str(school.Must(201, "POST", "/v1/pupils", map[string]any{
		"school_uai": uai, "grade": "3e", "class_name": "3eA", "first_name": "Lina", "last_name": "Benali", "birth_date": "2011-03-14",
		"guardians": []map[string]string{
			{"name": "Karim Benali", "email": "k@example.fr", "phone": "0612345678"},
			{"name": "Nora Benali", "email": "n@example.fr", "phone": "0612345679"},
		},
	}), "id")
	offer := str(employer.Must(201, "POST", "/v1/offers", map[string]any{
		"employer_id": emp, "title": "Atelier", "description": "Mécanique", "sector": "s1", "grades": []string{"3e"},
		"weeks": []string{weekAhead(10)}, "seats": 1, "commune_code": "94028", "address": "3 rue", "lat": 48.79, "lon": 2.45,
	}), "id")
	pupilC := c.As("pupil", pupil)
	application := str(pupilC.Must(201, "POST", "/v1/offers/"+offer+"/applications", map[string]any{
		"pupil_id": pupil, "weeks": []string{weekAhead(10)}, "motivation": "Les moteurs",
	}), "id")
	employer.Must(200, "POST", "/v1/applications/"+application+"/accept", nil)
	conv := str(pupilC.Must(200, "POST", "/v1/applications/"+application+"/confirm", nil), "convention_id")
	employer.Must(200, "POST", "/v1/conventions/"+conv+"/complete", map[string]any{"party": "employer",
		"tutor": map[string]string{"name": "Paul Tuteur", "email": "paul@example.fr"}, "activities": "Moteurs"})
	done := school.Must(200, "POST", "/v1/conventions/"+conv+"/complete", map[string]any{"party": "school",
		"referent_teacher": map[string]string{"name": "Mme Roux", "email": "roux@example.fr"}, "both_guardians": true})
	hash := str(school.Must(200, "GET", "/v1/conventions/"+conv+"?min_position="+str(done, "position"), nil), "document_hash")
	sign := func(subject, role, name string) (int, string) {
		r := c.As("guardian", subject).Do("POST", "/v1/conventions/"+conv+"/signatures",
			map[string]any{"role": role, "signer_name": name, "document_hash": hash})
		return r.Status, r.Raw
	}
	first, second := auth.GuardianSubject(pupil, 1), auth.GuardianSubject(pupil, 2)
	if code, raw := sign(first, "guardian", "Karim Benali"); code != 201 {
		t.Fatalf("the first guardian signs: %d %s", code, raw)
	}
	for _, subject := range []string{first, pupil} {
		if code, raw := sign(subject, "second_guardian", "Karim Benali"); code != 409 || !strings.Contains(raw, "same_guardian") {
			t.Fatalf("the first guardian (%s) signing in the second's place: %d %s", subject, code, raw)
		}
	}
	if code, raw := sign(auth.GuardianSubject(pupil, 3), "second_guardian", "Quelqu'un"); code != 403 {
		t.Fatalf("a third guardian: %d %s", code, raw)
	}
	signed := c.As("guardian", second).Must(201, "POST", "/v1/conventions/"+conv+"/signatures",
		map[string]any{"role": "second_guardian", "signer_name": "Nora Benali", "document_hash": hash})
	doc := school.Must(200, "GET", "/v1/conventions/"+conv+"?min_position="+str(signed, "position"), nil)
	ranks := map[string]float64{}
	for _, s := range doc["signatures"].([]any) {
		sig := s.(map[string]any)
		ranks[str(sig, "role")], _ = sig["guardian"].(float64)
	}
	if ranks["guardian"] != 1 || ranks["second_guardian"] != 2 {
		t.Fatalf("who signed: %v", doc["signatures"])
	}
}
