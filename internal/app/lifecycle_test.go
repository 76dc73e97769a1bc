package app_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"passerelle/internal/app"
	"passerelle/internal/testsupport/httpclient"
	"passerelle/internal/testsupport/redistest"
)

// clock is a test clock the service reads.
type clock struct{ now atomic.Int64 }

func (c *clock) Now() time.Time      { return time.Unix(0, c.now.Load()).UTC() }
func (c *clock) Set(t time.Time)     { c.now.Store(t.UnixNano()) }
func (c *clock) Add(d time.Duration) { c.now.Add(int64(d)) }
func newClock(t time.Time) *clock    { c := &clock{}; c.Set(t); return c }

type lifecycle struct {
	c               httpclient.Client
	employer, pupil string
	pupil2          string
	offer           string
}

// setup registers an employer, a collège, two pupils (the second with two
// guardians) and an offer of one seat per week over two weeks.
func setup(t *testing.T, c httpclient.Client) lifecycle {
	l := lifecycle{c: c}
	l.employer = str(c.Must(201, "POST", "/v1/employers", map[string]any{
		"name": "Mairie de Vitry", "siret": siret, "kind": "public", "commune_code": "94081", "address": "2 av. Youri Gagarine",
	}), "id")
	c.Must(201, "POST", "/v1/schools", map[string]any{
		"uai": uai, "name": "Collège Danton", "kind": "college", "commune_code": "94081", "education_priority": "rep_plus", "qpv": false,
	})
	pupil := func(first string, guardians int) string {
		gs := []map[string]string{{"name": "Parent Un", "email": "un@example.fr", "phone": "0611111111"}}
		if guardians == 2 {
			gs = append(gs, map[string]string{"name": "Parent Deux", "email": "deux@example.fr", "phone": "0622222222"})
		}
		return str(c.Must(201, "POST", "/v1/pupils", map[string]any{
			"school_uai": uai, "grade": "3e", "class_name": "3eC", "first_name": first, "last_name": "Test",
			"birth_date": "2011-09-01", "guardians": gs,
		}), "id")
	}
	l.pupil, l.pupil2 = pupil("Adam", 1), pupil("Inès", 2)
	l.offer = str(c.Must(201, "POST", "/v1/offers", map[string]any{
		"employer_id": l.employer, "title": "Services municipaux", "description": "Accueil, état civil, espaces verts",
		"sector": "s2", "grades": []string{"3e"}, "weeks": []string{weekAhead(10), weekAhead(11)}, "seats": 1,
		"commune_code": "94081", "address": "2 av. Youri Gagarine", "lat": 48.787, "lon": 2.392,
		"reserved": map[string]any{"rep": true}, "daily_hours": map[string]any{"start": "09:00", "end": "16:30", "lunch_break_minutes": 60},
	}), "id")
	return l
}

func (l lifecycle) apply(pupil, week string) string {
	return str(l.c.Must(201, "POST", "/v1/offers/"+l.offer+"/applications", map[string]any{
		"pupil_id": pupil, "weeks": []string{week}, "motivation": "Je veux découvrir le service public.",
	}), "id")
}

func (l lifecycle) status(t *testing.T, app string, pos string) string {
	t.Helper()
	return str(l.c.Must(200, "GET", "/v1/applications/"+app+"?min_position="+pos, nil), "status")
}

func TestLifecycleExpiry(t *testing.T) {
	clk := newClock(time.Now().UTC())
	a, c := bootWith(t, app.Config{DataDir: t.TempDir(), RedisURL: redistest.Mini(t).URL, Clock: clk.Now, ExpiryEvery: -1})
	l := setup(t, c)
	unanswered := l.apply(l.pupil, weekAhead(10))
	accepted := l.apply(l.pupil2, weekAhead(11))
	read := c.Must(200, "POST", "/v1/applications/"+unanswered+"/read", nil)
	if s := l.status(t, unanswered, str(read, "position")); s != "read" {
		t.Fatalf("after read: %s", s)
	}
	acc := c.Must(200, "POST", "/v1/applications/"+accepted+"/accept", nil)
	c.Must(200, "GET", "/v1/offers/"+l.offer+"?min_position="+str(acc, "position"), nil)
	// the expirer finds candidates in the placements read model: wait for it too
	if s := l.status(t, accepted, str(acc, "position")); s != "accepted" {
		t.Fatalf("after accept: %s", s)
	}

	// 8 days on: the accepted application was not confirmed within 7 days
	clk.Add(8 * 24 * time.Hour)
	if _, err := a.Expirer.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	head := c.Do("GET", "/readyz", nil).Body // the head of the log, caught up or not
	if s := l.status(t, accepted, str(head, "head")); s != "expired" {
		t.Fatalf("accepted, unconfirmed after 8 days: %s", s)
	}
	if s := l.status(t, unanswered, str(head, "head")); s != "read" {
		t.Fatalf("unanswered after 8 days: %s (expires after 15)", s)
	}
	offer := c.Must(200, "GET", "/v1/offers/"+l.offer+"?min_position="+str(head, "head"), nil)
	if num(offer, "seats_available") != 2 {
		t.Fatalf("the expired acceptance kept its seat: %v", offer)
	}
	// 16 days after submission: the employer never answered
	clk.Add(8 * 24 * time.Hour)
	if _, err := a.Expirer.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	head = c.Do("GET", "/readyz", nil).Body
	if s := l.status(t, unanswered, str(head, "head")); s != "expired" {
		t.Fatalf("unanswered after 16 days: %s", s)
	}
	// expiry is final: accepting now is refused with the rule named
	r := c.Do("POST", "/v1/applications/"+unanswered+"/accept", nil)
	if r.Status != 409 || str(r.Body["error"].(map[string]any), "rule") != "wrong_status" {
		t.Fatalf("accept after expiry: %d %s", r.Status, r.Raw)
	}
}

func TestLifecycleConventionAmendedAfterSignature(t *testing.T) {
	clk := newClock(time.Now().UTC())
	_, c := bootWith(t, app.Config{DataDir: t.TempDir(), RedisURL: redistest.Mini(t).URL, Clock: clk.Now, ExpiryEvery: -1})
	l := setup(t, c)
	appID := l.apply(l.pupil2, weekAhead(10))
	c.Must(200, "POST", "/v1/applications/"+appID+"/accept", nil)
	conf := c.Must(200, "POST", "/v1/applications/"+appID+"/confirm", nil)
	conv := str(conf, "convention_id")
	c.Must(200, "POST", "/v1/conventions/"+conv+"/complete", map[string]any{
		"party": "employer", "tutor": map[string]string{"name": "M. Lefèvre", "email": "lefevre@vitry.fr"}, "activities": "Accueil du public",
	})
	done := c.Must(200, "POST", "/v1/conventions/"+conv+"/complete", map[string]any{
		"party": "school", "referent_teacher": map[string]string{"name": "Mme Diallo", "email": "diallo@college.fr"}, "both_guardians": true,
	})
	doc := c.Must(200, "GET", "/v1/conventions/"+conv+"?min_position="+str(done, "position"), nil)
	roles, _ := doc["required_roles"].([]any)
	if len(roles) != 5 {
		t.Fatalf("both guardians asked, two guardians: want 5 required roles, got %v", roles)
	}
	h1 := str(doc, "document_hash")
	c.Must(201, "POST", "/v1/conventions/"+conv+"/signatures", map[string]any{"role": "employer", "signer_name": "M. Lefèvre", "document_hash": h1})

	// the employer amends the activities: the signature given is void
	amended := c.Must(200, "POST", "/v1/conventions/"+conv+"/complete", map[string]any{
		"party": "employer", "tutor": map[string]string{"name": "M. Lefèvre", "email": "lefevre@vitry.fr"}, "activities": "Accueil du public et état civil",
	})
	doc = c.Must(200, "GET", "/v1/conventions/"+conv+"?min_position="+str(amended, "position"), nil)
	h2 := str(doc, "document_hash")
	if sigs, _ := doc["signatures"].([]any); h2 == h1 || len(sigs) != 0 || str(doc, "status") != "ready" {
		t.Fatalf("after amendment: %v", doc)
	}
	r := c.Do("POST", "/v1/conventions/"+conv+"/signatures", map[string]any{"role": "pupil", "signer_name": "Inès", "document_hash": h1})
	if r.Status != 409 || str(r.Body["error"].(map[string]any), "rule") != "outdated_document" {
		t.Fatalf("signing the old version: %d %s", r.Status, r.Raw)
	}
	var last map[string]any
	for _, role := range []string{"employer", "school_head", "pupil", "guardian", "second_guardian"} {
		last = c.Must(201, "POST", "/v1/conventions/"+conv+"/signatures", map[string]any{"role": role, "signer_name": "S " + role, "document_hash": h2})
	}
	doc = c.Must(200, "GET", "/v1/conventions/"+conv+"?min_position="+str(last, "position"), nil)
	if str(doc, "status") != "signed" {
		t.Fatalf("after five signatures: %v", doc)
	}
	// cancelling the convention releases the seat and the pupil's week
	cancel := c.Must(200, "POST", "/v1/conventions/"+conv+"/cancel", map[string]any{"reason": "déménagement"})
	if s := l.status(t, appID, str(cancel, "position")); s != "cancelled" {
		t.Fatalf("application after cancellation: %s", s)
	}
	// the cancellation's position is its last step's: the seat's release
	// and the pupil's weeks included
	at := "?min_position=" + str(cancel, "position")
	offer := c.Must(200, "GET", "/v1/offers/"+l.offer+at, nil)
	if num(offer, "seats_available") != 2 {
		t.Fatalf("cancellation kept the seat: %v", offer)
	}
	dash := c.Must(200, "GET", "/v1/schools/"+uai+"/dashboard"+at, nil)
	if num(dash, "placed") != 0 || num(dash, "signed") != 0 {
		t.Fatalf("dashboard after cancellation: %v", dash)
	}
}

// Confirming one application withdraws the pupil's other pending
// applications for the same weeks.
func TestLifecycleConfirmWithdrawsOverlapping(t *testing.T) {
	clk := newClock(time.Now().UTC())
	_, c := bootWith(t, app.Config{DataDir: t.TempDir(), RedisURL: redistest.Mini(t).URL, Clock: clk.Now, ExpiryEvery: -1})
	l := setup(t, c)
	first := l.apply(l.pupil, weekAhead(10))
	second := str(c.Must(201, "POST", "/v1/offers", map[string]any{
		"employer_id": l.employer, "title": "Médiathèque", "description": "Prêt, animation", "sector": "s4", "grades": []string{"3e"},
		"weeks": []string{weekAhead(10)}, "seats": 2, "commune_code": "94081", "address": "place", "lat": 48.787, "lon": 2.392,
	}), "id")
	app2 := str(c.Must(201, "POST", "/v1/offers/"+second+"/applications", map[string]any{
		"pupil_id": l.pupil, "weeks": []string{weekAhead(10)}, "motivation": "Les livres.",
	}), "id")
	c.Must(200, "POST", "/v1/applications/"+first+"/accept", nil)
	conf := c.Must(200, "POST", "/v1/applications/"+first+"/confirm", nil)
	if s := l.status(t, app2, str(conf, "position")); s != "withdrawn" {
		t.Fatalf("overlapping application after confirmation: %s", s)
	}
	// an application the employer could still accept is refused once the
	// pupil's week is taken
	r := c.Do("POST", "/v1/offers/"+l.offer+"/applications", map[string]any{"pupil_id": l.pupil2, "weeks": []string{weekAhead(10)}, "motivation": "x"})
	if r.Status != 409 || str(r.Body["error"].(map[string]any), "rule") != "no_seat_left" {
		t.Fatalf("applying to a full week: %d %s", r.Status, r.Raw)
	}
}

// The same command sent twice at the same instant with one Idempotency-Key
// has one effect and one answer.
func TestIdempotencyKeyConcurrent(t *testing.T) {
	_, c := boot(t, t.TempDir(), redistest.Mini(t).URL)
	l := setup(t, c)
	app := l.apply(l.pupil, weekAhead(10))
	var wg sync.WaitGroup
	replies := make([]httpclient.Reply, 8)
	for i := range replies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i] = c.Do("POST", "/v1/applications/"+app+"/accept", nil, "Idempotency-Key", "accept-"+app)
		}()
	}
	wg.Wait()
	for _, r := range replies {
		if r.Status != 200 || r.Raw != replies[0].Raw {
			t.Fatalf("replies differ: %d %s vs %s", r.Status, r.Raw, replies[0].Raw)
		}
	}
	trail := c.Must(200, "GET", "/v1/audit/applications/"+app, nil)
	held := 0
	for _, e := range trail["events"].([]any) {
		if str(e.(map[string]any), "type") == "SeatHeld" {
			held++
		}
	}
	if held != 1 {
		t.Fatalf("%d seats held by one application", held)
	}
}

// /readyz reports how far each projection is behind the head of the log.
func TestReadyzReportsLag(t *testing.T) {
	a, err := app.Open(app.Config{DataDir: t.TempDir(), RedisURL: redistest.Mini(t).URL})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	srv := httptest.NewServer(a.Handler()) // projections not started
	defer srv.Close()
	c := httpclient.New(t, srv.URL)
	for _, siret := range []string{siret, "44201123456701", "35212345678908"} {
		c.Must(201, "POST", "/v1/employers", map[string]any{"name": "E", "siret": siret, "kind": "public", "commune_code": "94028", "address": "a"})
	}
	r := c.Do("GET", "/readyz", nil)
	ps, _ := r.Body["projections"].([]any)
	if r.Status != 503 || r.Header.Get("Retry-After") == "" || len(ps) == 0 {
		t.Fatalf("readyz with projections stopped: %d %s", r.Status, r.Raw)
	}
	for _, p := range ps {
		p := p.(map[string]any)
		if num(p, "events_behind") != 3 || num(p, "seconds_behind") < 0 || p["behind"] != true {
			t.Fatalf("lag of %s: %v", str(p, "name"), p)
		}
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	if r := c.Do("GET", "/readyz", nil); r.Status != 200 {
		t.Fatalf("readyz caught up: %d %s", r.Status, r.Raw)
	}
}

// Amending, withdrawing and reopening an offer keep the search model and the
// statistics right, and an amendment never drops an accepted pupil.
func TestOfferAmendWithdrawReopen(t *testing.T) {
	_, c := boot(t, t.TempDir(), redistest.Mini(t).URL)
	l := setup(t, c) // 1 seat per week, two weeks
	app := l.apply(l.pupil, weekAhead(10))
	c.Must(200, "POST", "/v1/applications/"+app+"/accept", nil)
	r := c.Do("POST", "/v1/offers/"+l.offer+"/amend", map[string]any{"weeks": []string{weekAhead(11)}})
	if r.Status != 409 || str(r.Body["error"].(map[string]any), "rule") != "would_drop_accepted_pupil" {
		t.Fatalf("dropping the accepted pupil's week: %d %s", r.Status, r.Raw)
	}
	am := c.Must(200, "POST", "/v1/offers/"+l.offer+"/amend", map[string]any{"seats": 3, "weeks": []string{weekAhead(10), weekAhead(11), weekAhead(12)}})
	offer := c.Must(200, "GET", "/v1/offers/"+l.offer+"?min_position="+str(am, "position"), nil)
	if num(offer, "seats_total") != 9 || num(offer, "seats_available") != 8 || str(offer, "status") != "open" {
		t.Fatalf("amended offer: %v", offer)
	}
	stats := c.Must(200, "GET", "/v1/stats/offers?min_position="+str(am, "position"), nil)
	if num(stats, "seats_total") != 9 || num(stats, "seats_available") != 8 || num(stats, "offers_open") != 1 {
		t.Fatalf("stats after amendment: %v", stats)
	}
	wd := c.Must(200, "POST", "/v1/offers/"+l.offer+"/withdraw", map[string]any{"reason": "travaux"})
	if s := c.Must(200, "GET", "/v1/stats/offers?min_position="+str(wd, "position"), nil); num(s, "offers_open") != 0 || num(s, "seats_total") != 0 {
		t.Fatalf("stats after withdrawal: %v", s)
	}
	re := c.Must(200, "POST", "/v1/offers/"+l.offer+"/reopen", nil)
	if s := c.Must(200, "GET", "/v1/stats/offers?min_position="+str(re, "position"), nil); num(s, "offers_open") != 1 || num(s, "seats_available") != 8 {
		t.Fatalf("stats after reopening: %v", s)
	}
	if list := c.Must(200, "GET", "/v1/offers?available=true&week="+weekAhead(12)+"&min_position="+str(re, "position"), nil); num(list, "total") != 1 {
		t.Fatalf("the reopened offer is not searchable: %v", list)
	}
}

// Search: full text with accents folded, and offers reserved for REP/REP+
// hidden from pupils who may not apply to them.
func TestSearchTextAndEligibility(t *testing.T) {
	_, c := boot(t, t.TempDir(), redistest.Mini(t).URL)
	l := setup(t, c) // a REP-reserved offer; the school is REP+
	c.Must(201, "POST", "/v1/schools", map[string]any{
		"uai": "0751234B", "name": "Collège Montaigne", "kind": "college", "commune_code": "75106", "education_priority": "none", "qpv": false,
	})
	other := str(c.Must(201, "POST", "/v1/pupils", map[string]any{
		"school_uai": "0751234B", "grade": "3e", "class_name": "3eA", "first_name": "Hugo", "last_name": "Petit",
		"birth_date": "2011-04-04", "guardians": []map[string]string{{"name": "P", "email": "p@example.fr", "phone": "0600000001"}},
	}), "id")
	last := c.Must(201, "POST", "/v1/offers", map[string]any{
		"employer_id": l.employer, "title": "Atelier vélo", "description": "Réparer des vélos, accueil du public", "sector": "s3",
		"grades": []string{"3e"}, "weeks": []string{weekAhead(10)}, "seats": 1, "commune_code": "94081", "address": "rue", "lat": 48.787, "lon": 2.392,
	})
	mp := "&min_position=" + str(last, "position")
	for _, tc := range []struct {
		query string
		want  float64
	}{
		{"q=ETAT+civil", 1},         // "état civil", accents folded
		{"q=velo", 1},               // "vélo"
		{"q=accueil", 2},            // both descriptions
		{"q=accueil+velo", 1},       // every word must match
		{"q=atelier+de+velo", 1},    // but "de", in neither text, is a common word
		{"q=boulangerie", 0},        // in neither
		{"for_pupil=" + l.pupil, 2}, // REP+ collège: both offers
		{"for_pupil=" + other, 1},   // not REP: the reserved one is hidden
		{"for_pupil=" + other + "&q=etat", 0},
	} {
		got := c.Must(200, "GET", "/v1/offers?"+tc.query+mp, nil)
		if num(got, "total") != tc.want {
			t.Errorf("%s: total %v, want %v", tc.query, num(got, "total"), tc.want)
		}
	}
	for _, q := range []string{"a", "de+la"} {
		if r := c.Do("GET", "/v1/offers?q="+q, nil); r.Status != 400 || !strings.Contains(r.Raw, `"q"`) {
			t.Fatalf("q=%s, without a word to search: %d %s", q, r.Status, r.Raw)
		}
	}
}
