package app_test

import (
	"fmt"
	"testing"

	"passerelle/internal/app"
	"passerelle/internal/auth"
	"passerelle/internal/testsupport/httpclient"
	"passerelle/internal/testsupport/redistest"
)

// cachanSchool is one collège of the scenario, in a real commune.
type cachanSchool struct {
	uai, commune, priority string
	qpv                    bool
	pupils                 int
}

// The communes of the scenario: Cachan and its neighbours, with their
// real coordinates (domain/refdata).
var cachanCommunes = []struct {
	code     string
	lat, lon float64
}{
	{"94016", 48.79139, 2.33184}, // Cachan
	{"94003", 48.80534, 2.33284}, // Arcueil
	{"94076", 48.79339, 2.36034}, // Villejuif
	{"94038", 48.77773, 2.34163}, // L'Haÿ-les-Roses
	{"94034", 48.75719, 2.32631}, // Fresnes
}

// scenarioSIRET is a distinct Luhn-valid SIRET for employer i.
func scenarioSIRET(i int) string {
	body := fmt.Sprintf("7328293%06d", i)
	sum := 0
	for k := range 14 {
		d := 0
		if k < 13 {
			d = int(body[k] - '0')
		}
		if (14-k)%2 == 0 { // doubled digits, counted from the right
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return body + fmt.Sprint((10-sum%10)%10)
}

// TestDeskScenarioCachan plays the desk on a town and its neighbours: 300
// pupils of four collèges of different education priority compete for 100
// single-seat offers, most of them near the collège without priority. The
// round's preview places more pupils of éducation prioritaire than first
// come on the same market; published, its proposals are accepted by the
// employers and confirmed by the pupils; the school dashboards and the
// audit trail show them.
func TestDeskScenarioCachan(t *testing.T) {
	redistest.EachRedis(t, func(t *testing.T, r redistest.Redis) {
		_, c := authenticated(t, app.Config{DataDir: t.TempDir(), RedisURL: r.URL, SealEvery: -1, ExpiryEvery: -1})
		bo := c.As(auth.Backoffice, "desk-cachan")
		week := weekAhead(12)
		schools := []cachanSchool{
			{"0940201A", "94016", "none", false, 75},    // Cachan
			{"0940202B", "94076", "rep_plus", true, 75}, // Villejuif
			{"0940203C", "94038", "rep", false, 75},     // L'Haÿ-les-Roses
			{"0940204D", "94034", "none", true, 75},     // Fresnes, QPV
		}
		scenarioPupils(t, bo, schools)
		employers, offers := scenarioOffers(t, bo, week)

		campaign := str(bo.Must(201, "POST", "/v1/campaigns", map[string]any{"name": "Cachan 100 stages", "departments": []string{"94"},
			"communes": []string{"94016", "94003", "94076", "94038", "94034"}, "grades": []string{"3e"}, "weeks": []string{week}, "target": 100}), "id")
		round := bo.Must(201, "POST", "/v1/campaigns/"+campaign+"/rounds", map[string]any{"seed": 2026, "max_choices": 50})
		preview := round["preview"].(map[string]any)
		matches := checkPreview(t, preview)
		fc := preview["first_come"].(map[string]any)
		priority := func(f map[string]any) float64 {
			return num(f, "placed_by_priority", "rep_plus") + num(f, "placed_by_priority", "rep") + num(f, "placed_by_priority", "qpv")
		}
		t.Logf("round: placed %v %v, median %v km; first come: placed %v %v, median %v km", preview["placed"], preview["placed_by_priority"],
			preview["distance_km_median"], fc["placed"], fc["placed_by_priority"], fc["distance_km_median"])
		if num(preview, "placed") < num(fc, "placed") || num(preview, "placed") > float64(len(offers)) || priority(preview) <= priority(fc) {
			t.Fatalf("round placed %v (priority %v), first come %v (priority %v): want at least as many placed, within the seats, and more priority pupils than first come",
				preview["placed"], priority(preview), fc["placed"], priority(fc))
		}

		pos := str(bo.Must(200, "POST", "/v1/rounds/"+str(round, "id")+"/publish", nil), "position")
		for _, m := range matches {
			pupil, offer := m["pupil_id"].(string), m["offer_id"].(string)
			items := bo.Must(200, "GET", "/v1/pupils/"+pupil+"/applications?min_position="+pos, nil)["items"].([]any)
			if len(items) != 1 {
				t.Fatalf("pupil %s after publishing: %v", pupil, items)
			}
			appID := str(items[0].(map[string]any), "id")
			c.As(auth.Employer, employers[offer]).Must(200, "POST", "/v1/applications/"+appID+"/accept", nil)
			pos = str(c.As(auth.Pupil, pupil).Must(200, "POST", "/v1/applications/"+appID+"/confirm", nil), "position")
		}

		confirmed, proposals := 0.0, 0.0
		for _, s := range schools {
			d := bo.Must(200, "GET", "/v1/schools/"+s.uai+"/dashboard?min_position="+pos, nil)
			confirmed += num(d, "placed")
			proposals += num(d, "proposals")
			if num(d, "proposals_pending") != 0 {
				t.Fatalf("school %s: %v proposals still pending after every confirmation", s.uai, d["proposals_pending"])
			}
		}
		if confirmed != float64(len(matches)) || proposals != float64(len(matches)) {
			t.Fatalf("dashboards: %v placed, %v proposals; want %d each", confirmed, proposals, len(matches))
		}
		// the audit trail of one placement shows who proposed it
		first := matches[0]
		app := bo.Must(200, "GET", "/v1/pupils/"+first["pupil_id"].(string)+"/applications", nil)["items"].([]any)[0].(map[string]any)
		audit := bo.Must(200, "GET", "/v1/audit/applications/"+str(app, "id"), nil)
		events := audit["events"].([]any)
		submitted := events[0].(map[string]any)
		by, _ := submitted["data"].(map[string]any)["proposed_by"].(map[string]any)
		if submitted["type"] != "ApplicationSubmitted" || by["id"] != "round-"+str(round, "id") || str(app, "status") != "confirmed" {
			t.Fatalf("audit of %s: first event %v, status %v", str(app, "id"), submitted, app["status"])
		}
	})
}

// scenarioPupils registers each school and its 3e pupils.
func scenarioPupils(t *testing.T, bo httpclient.Client, schools []cachanSchool) {
	t.Helper()
	for _, s := range schools {
		bo.Must(201, "POST", "/v1/schools", map[string]any{"uai": s.uai, "name": "Collège " + s.uai, "kind": "college",
			"commune_code": s.commune, "education_priority": s.priority, "qpv": s.qpv})
		for i := range s.pupils {
			body := validPupil()
			body["school_uai"], body["class_name"] = s.uai, fmt.Sprintf("3e%c", 'A'+i%4)
			bo.Must(201, "POST", "/v1/pupils", body, "Idempotency-Key", fmt.Sprintf("cachan-%s-%d", s.uai, i))
		}
	}
}

// scenarioOffers posts 100 single-seat offers for the week, two thirds in
// Cachan and Arcueil (next to the collège without priority), the rest
// spread over the other communes; it answers each offer's employer.
func scenarioOffers(t *testing.T, bo httpclient.Client, week string) (employerOf map[string]string, offers []string) {
	t.Helper()
	employerOf = map[string]string{}
	for i := range 100 {
		place := cachanCommunes[i%2]
		if i%3 == 2 {
			place = cachanCommunes[2+(i/3)%3]
		}
		emp := str(bo.Must(201, "POST", "/v1/employers", map[string]any{"name": fmt.Sprintf("Entreprise %d", i), "siret": scenarioSIRET(i),
			"kind": "company", "commune_code": place.code, "address": fmt.Sprintf("%d avenue Carnot", i+1)}), "id")
		body := validOffer(emp)
		body["weeks"], body["seats"], body["commune_code"] = []string{week}, 1, place.code
		body["lat"], body["lon"] = place.lat+float64(i%7)*0.001, place.lon+float64(i%5)*0.001
		body["sector"] = fmt.Sprintf("s%d", 1+i%51)
		id := str(bo.Must(201, "POST", "/v1/offers", body), "id")
		employerOf[id] = emp
		offers = append(offers, id)
	}
	return employerOf, offers
}
