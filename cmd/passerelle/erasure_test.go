package main

import (
	"strings"
	"testing"
	"time"

	"passerelle/domain"
	"passerelle/internal/testsupport/redistest"
)

// After a forget, the audit the command line prints (JSON and CSV) names
// neither the pupil nor the guardian who signed: their names are sealed
// and the key is gone.
func TestAuditAfterForget(t *testing.T) {
	const pupilSigner, guardianSigner = "Lina Benali-Signataire", "Karim Benali-Signataire"
	dir := t.TempDir()
	c, stop := serveFor(t, dir, redistest.Mini(t).URL)
	emp := c.Must(201, "POST", "/v1/employers", map[string]any{"name": "Boulangerie Martin", "siret": "73282932000074", "kind": "company", "commune_code": "94028", "address": "1 rue de Paris"})
	c.Must(201, "POST", "/v1/schools", map[string]any{"uai": "0941234A", "name": "Collège Jean Macé", "kind": "college", "commune_code": "94028", "education_priority": "rep", "qpv": true})
	pupil := c.Must(201, "POST", "/v1/pupils", map[string]any{"school_uai": "0941234A", "grade": "3e", "class_name": "3eB", "first_name": "Lina",
		"last_name": "Benali", "birth_date": "2010-03-14", "guardians": []map[string]string{{"name": "Karim Benali", "email": "k@example.fr", "phone": "0612345678"}}})
	week := domain.WeekOf(time.Now().AddDate(0, 2, 0))
	offer := c.Must(201, "POST", "/v1/offers", map[string]any{"employer_id": emp["id"], "title": "Fournil", "description": "Pétrissage",
		"sector": "s1", "grades": []string{"3e"}, "weeks": []string{week}, "seats": 2, "commune_code": "94028",
		"address": "1 rue de Paris", "lat": 48.79, "lon": 2.455})
	app := c.Must(201, "POST", "/v1/offers/"+offer["id"].(string)+"/applications", map[string]any{
		"pupil_id": pupil["id"], "weeks": []string{week}, "motivation": "J'aime le pain."})["id"].(string)
	c.Must(200, "POST", "/v1/applications/"+app+"/accept", nil)
	conv := c.Must(200, "POST", "/v1/applications/"+app+"/confirm", nil)["convention_id"].(string)
	c.Must(200, "POST", "/v1/conventions/"+conv+"/complete", map[string]any{"party": "employer",
		"tutor": map[string]string{"name": "Paul Martin", "email": "paul@example.fr"}, "activities": "Pétrissage"})
	done := c.Must(200, "POST", "/v1/conventions/"+conv+"/complete", map[string]any{"party": "school",
		"referent_teacher": map[string]string{"name": "Mme Roux", "email": "roux@example.fr"}})
	hash := c.Must(200, "GET", "/v1/conventions/"+conv+"?min_position="+done["position"].(string), nil)["document_hash"]
	for role, name := range map[string]string{"pupil": pupilSigner, "guardian": guardianSigner} {
		c.Must(201, "POST", "/v1/conventions/"+conv+"/signatures", map[string]any{"role": role, "signer_name": name, "document_hash": hash})
	}
	stop()
	if code, out, errOut := cli("audit", "application", app, "--data-dir", dir, "--format", "csv"); code != 0 || !strings.Contains(out, guardianSigner) {
		t.Fatalf("audit before forgetting: %d %s %s", code, out, errOut)
	}

	c, stop = serveFor(t, dir, redistest.Mini(t).URL)
	c.Must(200, "POST", "/v1/pupils/"+pupil["id"].(string)+"/forget", nil)
	stop()
	for _, format := range []string{"json", "csv"} {
		code, out, errOut := cli("audit", "application", app, "--data-dir", dir, "--format", format)
		if code != 0 || !strings.Contains(out, "ConventionSignatureAdded") {
			t.Fatalf("audit --format %s: %d %s %s", format, code, out, errOut)
		}
		for _, v := range []string{pupilSigner, guardianSigner, "Benali", "J'aime le pain"} {
			if strings.Contains(out, v) {
				t.Errorf("audit --format %s after forgetting shows %q", format, v)
			}
		}
	}
}
