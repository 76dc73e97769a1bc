package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/eventstore/esdb"
	"passerelle/eventstore/esdbserver/esdbtest"
	"passerelle/internal/app"
	"passerelle/internal/auth"
	"passerelle/internal/testsupport/httpclient"
	"passerelle/internal/testsupport/redistest"
)

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func num(m map[string]any, path ...string) float64 {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return -1
		}
		cur = mm[p]
	}
	f, ok := cur.(float64)
	if !ok {
		return -1
	}
	return f
}

// boot starts a Passerelle over dataDir and redisURL behind a real HTTP
// server.
func boot(t *testing.T, dataDir, redisURL string) (*app.App, httpclient.Client) {
	t.Helper()
	return bootWith(t, app.Config{DataDir: dataDir, RedisURL: redisURL})
}

func bootWith(t *testing.T, cfg app.Config) (*app.App, httpclient.Client) {
	t.Helper()
	a, err := app.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		a.Close()
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() {
		srv.Close()
		a.Close()
	})
	return a, httpclient.New(t, srv.URL)
}

// weekAhead is the ISO week n weeks from now, so that fixtures never fall
// in the past (applying to a week that has started is refused).
// afterRestart reads the statistics once the restarted service has caught
// up with its log, which holds one more event than before the stop: the
// seal written at shutdown.
func afterRestart(t *testing.T, a *app.App, c httpclient.Client, pos string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	again := c.Must(200, "GET", "/v1/stats/offers?min_position="+pos, nil)
	delete(again, "position")
	return again
}

func weekAhead(n int) string { return domain.WeekOf(time.Now().AddDate(0, 0, 7*n)) }

const (
	siret = "73282932000074"
	uai   = "0941234A"
)

func TestWholeFlow(t *testing.T) {
	redistest.EachRedis(t, func(t *testing.T, r redistest.Redis) {
		dir := t.TempDir()
		a, c := boot(t, dir, r.URL)
		stats := wholeFlow(t, c)

		// The same data directory answers the same statistics after a
		// restart: with an empty in-process Redis the read models are
		// rebuilt from the log; with a real Redis they resume from their
		// checkpoints.
		pos := str(stats, "position")
		a.Close()
		redisURL := r.URL
		if r.Name == "miniredis" {
			redisURL = "" // the embedded default: a fresh in-process Redis
		}
		a2, c2 := boot(t, dir, redisURL)
		again := afterRestart(t, a2, c2, pos)
		if delete(stats, "position"); !reflect.DeepEqual(again, stats) {
			t.Fatalf("stats after restart differ:\nbefore %v\nafter  %v", stats, again)
		}
	})
}

// wholeFlow runs post-offer → apply → accept → confirm → four signatures
// over HTTP, checking the read models at each step; it returns the final
// statistics.
func wholeFlow(t *testing.T, c httpclient.Client) map[string]any {
	w1, w2 := weekAhead(8), weekAhead(9)
	bo, stat, aud := c.As("backoffice", "agent-1"), c.As("statistician", "insee-1"), c.As("auditor", "audit-1")
	sch := c.As("school", uai)
	emp := bo.Must(201, "POST", "/v1/employers", map[string]any{
		"name": "Boulangerie Martin", "siret": siret, "kind": "company", "commune_code": "94028", "address": "1 rue de Paris",
	})
	bo.Must(201, "POST", "/v1/schools", map[string]any{
		"uai": uai, "name": "Collège Jean Macé", "kind": "college", "commune_code": "94028", "education_priority": "rep", "qpv": true,
	})
	pupil := sch.Must(201, "POST", "/v1/pupils", map[string]any{
		"school_uai": uai, "grade": "3e", "class_name": "3eB", "first_name": "Lina", "last_name": "Benali", "birth_date": "2012-03-14",
		"guardians": []map[string]string{{"name": "Karim Benali", "email": "k.benali@example.fr", "phone": "0612345678"}},
	})
	emp_ := c.As("employer", str(emp, "id"))
	pup, gua := c.As("pupil", str(pupil, "id")), c.As("guardian", str(pupil, "id"))
	signer := map[string]httpclient.Client{"employer": emp_, "school_head": sch, "pupil": pup, "guardian": gua}
	offer := emp_.Must(201, "POST", "/v1/offers", map[string]any{
		"employer_id": str(emp, "id"), "title": "Découverte du fournil", "description": "Pétrissage, cuisson, vente",
		"sector": "s1", "grades": []string{"3e"}, "weeks": []string{w1, w2}, "seats": 1,
		"commune_code": "94028", "address": "1 rue de Paris", "lat": 48.79, "lon": 2.455,
	})
	offerID := str(offer, "id")
	got := pup.Must(200, "GET", "/v1/offers/"+offerID+"?min_position="+str(offer, "position"), nil)
	if str(got, "employer_name") != "Boulangerie Martin" || num(got, "seats_total") != 2 || num(got, "seats_available") != 2 || str(got, "department") != "94" || str(got, "status") != "open" {
		t.Fatalf("offer read model: %v", got)
	}
	list := pup.Must(200, "GET", "/v1/offers?grade=3e&department=94&sector=s1&available=true&week="+w1, nil)
	if num(list, "total") != 1 {
		t.Fatalf("search: %v", list)
	}
	near := pup.Must(200, "GET", "/v1/offers?grade=3e&near=48.80,2.46&radius_km=5", nil)
	items, _ := near["items"].([]any)
	if num(near, "total") != 1 || len(items) != 1 || num(items[0].(map[string]any), "distance_km") <= 0 || num(items[0].(map[string]any), "distance_km") > 5 {
		t.Fatalf("geographic search: %v", near)
	}
	if far := pup.Must(200, "GET", "/v1/offers?near=43.30,5.37&radius_km=20", nil); num(far, "total") != 0 {
		t.Fatalf("an offer near Créteil found around Marseille: %v", far)
	}
	stats := stat.Must(200, "GET", "/v1/stats/offers?min_position="+str(offer, "position"), nil)
	if num(stats, "offers_open") != 1 || num(stats, "seats_available") != 2 || num(stats, "by_department", "94", "seats_total") != 2 || num(stats, "by_grade", "3e", "offers_open") != 1 {
		t.Fatalf("stats after post: %v", stats)
	}

	app := pup.Must(201, "POST", "/v1/offers/"+offerID+"/applications", map[string]any{
		"pupil_id": str(pupil, "id"), "weeks": []string{w1}, "motivation": "J'aime le pain.",
	})
	appID := str(app, "id")
	got = pup.Must(200, "GET", "/v1/applications/"+appID+"?min_position="+str(app, "position"), nil)
	if str(got, "status") != "submitted" || str(got, "pupil_id") != str(pupil, "id") {
		t.Fatalf("application read model: %v", got)
	}
	inbox := emp_.Must(200, "GET", "/v1/employers/"+str(emp, "id")+"/applications?status=submitted", nil)
	if num(inbox, "total") != 1 || strings.Contains(fmt.Sprint(inbox), "Benali") {
		t.Fatalf("employer inbox: %v", inbox)
	}

	acc := emp_.Must(200, "POST", "/v1/applications/"+appID+"/accept", nil)
	got = emp_.Must(200, "GET", "/v1/applications/"+appID+"?min_position="+str(acc, "position"), nil)
	if str(got, "status") != "accepted" {
		t.Fatalf("after accept: %v", got)
	}
	list = pup.Must(200, "GET", "/v1/offers?available=true&week="+w1+"&min_position="+str(acc, "position"), nil)
	if num(list, "total") != 0 {
		t.Fatalf("a full week still listed as available: %v", list)
	}
	list = pup.Must(200, "GET", "/v1/offers?available=true&week="+w2, nil)
	if num(list, "total") != 1 {
		t.Fatalf("the other week should stay available: %v", list)
	}
	stats = stat.Must(200, "GET", "/v1/stats/offers?min_position="+str(acc, "position"), nil)
	if num(stats, "seats_available") != 1 || num(stats, "seats_total") != 2 {
		t.Fatalf("stats after accept: %v", stats)
	}

	conf := pup.Must(200, "POST", "/v1/applications/"+appID+"/confirm", nil)
	convID := str(conf, "convention_id")
	if convID == "" {
		t.Fatalf("confirm gave no convention_id: %v", conf)
	}
	conv := sch.Must(200, "GET", "/v1/conventions/"+convID+"?min_position="+str(conf, "position"), nil)
	hash := str(conv, "document_hash")
	if str(conv, "status") != "draft" || len(hash) != 64 || str(conv, "application_id") != appID {
		t.Fatalf("drafted convention: %v", conv)
	}
	got = gua.Must(200, "GET", "/v1/applications/"+appID, nil)
	if str(got, "status") != "confirmed" || str(got, "convention_id") != convID {
		t.Fatalf("after confirm: %v", got)
	}

	// Nobody signs before the employer and the school have completed it.
	emp_.Must(409, "POST", "/v1/conventions/"+convID+"/signatures", map[string]any{
		"role": "employer", "signer_name": "Paul Martin", "document_hash": hash,
	})
	emp_.Must(200, "POST", "/v1/conventions/"+convID+"/complete", map[string]any{
		"party": "employer", "tutor": map[string]string{"name": "Paul Martin", "email": "paul@boulangerie.fr"},
		"activities": "Pétrissage, façonnage, cuisson, vente",
	})
	done := sch.Must(200, "POST", "/v1/conventions/"+convID+"/complete", map[string]any{
		"party": "school", "referent_teacher": map[string]string{"name": "Mme Roux", "email": "roux@college.fr"},
	})
	conv = emp_.Must(200, "GET", "/v1/conventions/"+convID+"?min_position="+str(done, "position"), nil)
	if str(conv, "status") != "ready" || str(conv, "document_hash") == hash {
		t.Fatalf("completed convention: %v", conv)
	}
	// A signature on another version of the document is refused.
	emp_.Must(409, "POST", "/v1/conventions/"+convID+"/signatures", map[string]any{
		"role": "employer", "signer_name": "Paul Martin", "document_hash": hash,
	})
	hash = str(conv, "document_hash")
	var last map[string]any
	for i, role := range []string{"employer", "school_head", "pupil", "guardian"} {
		last = signer[role].Must(201, "POST", "/v1/conventions/"+convID+"/signatures", map[string]any{
			"role": role, "signer_name": "Signer " + role, "document_hash": hash,
		})
		conv = bo.Must(200, "GET", "/v1/conventions/"+convID+"?min_position="+str(last, "position"), nil)
		want := "signing"
		if i == 3 {
			want = "signed"
		}
		sigs, _ := conv["signatures"].([]any)
		if str(conv, "status") != want || len(sigs) != i+1 {
			t.Fatalf("after %s signed: %v", role, conv)
		}
	}
	dash := sch.Must(200, "GET", "/v1/schools/"+uai+"/dashboard?min_position="+str(last, "position"), nil)
	if num(dash, "registered") != 1 || num(dash, "placed") != 1 || num(dash, "signed") != 1 || num(dash, "without_placement") != 0 {
		t.Fatalf("school dashboard: %v", dash)
	}
	rates := stat.Must(200, "GET", "/v1/stats/placements?department=94", nil)
	if num(rates, "by_department", "94", "placement_rate") != 1 || num(rates, "by_department", "94", "signed") != 1 {
		t.Fatalf("placement stats: %v", rates)
	}
	trail := aud.Must(200, "GET", "/v1/audit/applications/"+appID, nil)
	var types []string
	prev := 0.0
	for _, x := range trail["events"].([]any) {
		e := x.(map[string]any)
		types = append(types, str(e, "type"))
		var p float64
		if _, err := fmt.Sscan(str(e, "position"), &p); err != nil {
			t.Fatalf("audit event position: %v in %v", err, e)
		}
		if p <= prev {
			t.Fatalf("audit not in log order: %v", trail)
		}
		prev = p
		if str(e["actor"].(map[string]any), "role") == "" {
			t.Fatalf("audit event without actor: %v", e)
		}
	}
	want := "ApplicationSubmitted PupilApplied SeatHeld ApplicationAccepted PupilWeeksReserved ApplicationConfirmed ConventionDrafted ConventionCompleted ConventionCompleted ConventionSignatureAdded ConventionSignatureAdded ConventionSignatureAdded ConventionSignatureAdded ConventionSigned"
	if strings.Join(types, " ") != want {
		t.Fatalf("audit trail:\n got %v\nwant %v", strings.Join(types, " "), want)
	}
	// the placement as it was after the acceptance, then after the confirmation
	then := aud.Must(200, "GET", "/v1/audit/applications/"+appID+"?as_of="+str(acc, "position"), nil)
	st := then["state"].(map[string]any)
	if str(st, "application_status") != "accepted" || st["seat_held"] != true || st["weeks_reserved"] == true || str(st, "convention_status") != "" {
		t.Fatalf("audit as of the acceptance: %v", st)
	}
	if n := len(then["events"].([]any)); n != 4 {
		t.Fatalf("audit as of the acceptance has %d events, want 4", n)
	}
	then = aud.Must(200, "GET", "/v1/audit/applications/"+appID+"?as_of="+str(conf, "position"), nil)
	st = then["state"].(map[string]any)
	if str(st, "application_status") != "confirmed" || st["weeks_reserved"] != true || str(st, "convention_status") != "draft" {
		t.Fatalf("audit as of the confirmation: %v", st)
	}
	now := aud.Must(200, "GET", "/v1/audit/applications/"+appID+"?as_of="+time.Now().UTC().Format(time.RFC3339Nano), nil)
	if st := now["state"].(map[string]any); str(st, "convention_status") != "signed" || len(st["signed_by"].([]any)) != 4 {
		t.Fatalf("audit as of now: %v", st)
	}
	csv := aud.Do("GET", "/v1/audit/applications/"+appID+"?format=csv", nil)
	if lines := strings.Count(strings.TrimSpace(csv.Raw), "\n") + 1; csv.Status != 200 || lines != len(types)+1 || !strings.HasPrefix(csv.Raw, "position,recorded_at") {
		t.Fatalf("audit as CSV: %d, %d lines for %d events: %.200s", csv.Status, lines, len(types), csv.Raw)
	}
	mine := gua.Must(200, "GET", "/v1/pupils/"+str(pupil, "id")+"/applications?min_position="+str(last, "position"), nil)
	if num(mine, "total") != 1 {
		t.Fatalf("pupil's applications: %v", mine)
	}
	// every projection catches up with the head (the waits above covered some)
	var ready map[string]any
	for deadline := time.Now().Add(10 * time.Second); ; {
		r := c.Do("GET", "/readyz", nil)
		if ready = r.Body; r.Status == 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if str(ready, "status") != "ready" {
		t.Fatalf("readyz: %v", ready)
	}
	final := stat.Must(200, "GET", "/v1/stats/offers?min_position="+str(last, "position"), nil)
	if num(final, "applications", "confirmed") != 1 || num(final, "conventions", "signed") != 1 || num(final, "seats_held") != 1 ||
		num(final, "by_region", "11", "seats_total") != 2 || num(final, "by_week", w1, "seats_available") != 0 || num(final, "by_week", w2, "seats_available") != 1 {
		t.Fatalf("final statistics: %v", final)
	}
	return final
}

// The whole flow with the event log in EventStoreDB, spoken to through the
// official client, here against the in-process protocol server.
func TestWholeFlowOnEventStoreDB(t *testing.T) {
	redistest.EachRedis(t, func(t *testing.T, r redistest.Redis) {
		srv := esdbtest.Start(t)
		openESDB := func(url string) (eventstore.Store, error) { return esdb.Open(url) }
		cfg := app.Config{DataDir: t.TempDir(), EventStoreURL: srv.URL(), OpenStore: openESDB, RedisURL: r.URL}
		a, c := bootWith(t, cfg)
		stats := wholeFlow(t, c)
		a.Close()
		a2, c2 := bootWith(t, cfg)
		again := afterRestart(t, a2, c2, str(stats, "position"))
		if delete(stats, "position"); !reflect.DeepEqual(again, stats) {
			t.Fatalf("stats after restart differ:\nbefore %v\nafter  %v", stats, again)
		}
	})
}

// The whole flow with authentication on: each step is done by the role
// that owns it, with a token the service verifies.
func TestWholeFlowAuthenticated(t *testing.T) {
	redistest.EachRedis(t, func(t *testing.T, r redistest.Redis) {
		issuer, err := auth.NewHMAC([]byte(strings.Repeat("k", 32)), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, c := bootWith(t, app.Config{DataDir: t.TempDir(), RedisURL: r.URL, Verifier: issuer})
		c.Token = func(role, subject string) string {
			tok, err := issuer.Issue(auth.Principal{Role: role, Subject: subject}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		if r := c.Do("GET", "/v1/stats/offers", nil); r.Status != 401 {
			t.Fatalf("no token: %d %s", r.Status, r.Raw)
		}
		if r := c.Do("GET", "/v1/offers", nil); r.Status != 200 {
			t.Fatalf("the public offer search without a token: %d %s", r.Status, r.Raw)
		}
		wholeFlow(t, c)
	})
}

// RedisAddr names the Redis of the read models, the in-process one
// included, without assuming which client type talks to it.
func TestRedisAddr(t *testing.T) {
	mini := redistest.Mini(t)
	for url, want := range map[string]string{mini.URL: strings.TrimPrefix(mini.URL, "redis://"), "": "127.0.0.1:"} {
		a, err := app.Open(app.Config{DataDir: t.TempDir(), RedisURL: url})
		if err != nil {
			t.Fatal(err)
		}
		if got := a.RedisAddr(); !strings.HasPrefix(got, want) || len(got) <= len("127.0.0.1:") {
			t.Errorf("RedisURL %q: RedisAddr %q, want %q…", url, got, want)
		}
		a.Close()
	}
}

func TestIdempotencyKey(t *testing.T) {
	_, c := boot(t, t.TempDir(), redistest.Mini(t).URL)
	body := map[string]any{"name": "Mairie de Créteil", "siret": siret, "kind": "public", "commune_code": "94028", "address": "Place Salvador Allende"}
	first := c.Must(201, "POST", "/v1/employers", body, "Idempotency-Key", "k-1")
	again := c.Must(201, "POST", "/v1/employers", body, "Idempotency-Key", "k-1")
	if !reflect.DeepEqual(first, again) {
		t.Fatalf("replay differs: %v vs %v", first, again)
	}
	body["name"] = "Autre"
	if r := c.Do("POST", "/v1/employers", body, "Idempotency-Key", "k-1"); r.Status != 409 || str(r.Body["error"].(map[string]any), "code") != "conflict" {
		t.Fatalf("same key, other body: %d %s", r.Status, r.Raw)
	}
	body["siret"] = "44201123456701"
	other := c.Must(201, "POST", "/v1/employers", body, "Idempotency-Key", "k-2")
	if str(other, "id") == str(first, "id") {
		t.Fatal("another key must create another employer")
	}
}

func TestStatsStream(t *testing.T) {
	_, c := boot(t, t.TempDir(), redistest.Mini(t).URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", c.Base()+"/v1/stats/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	events := make(chan map[string]any, 16)
	go func() {
		defer close(events)
		dec := newSSEReader(resp.Body)
		for {
			data, err := dec.next()
			if err != nil {
				return
			}
			var m map[string]any
			if json.Unmarshal([]byte(data), &m) == nil {
				events <- m
			}
		}
	}()
	first := <-events
	if num(first, "offers_open") != 0 {
		t.Fatalf("first event: %v", first)
	}
	emp := c.Must(201, "POST", "/v1/employers", map[string]any{"name": "Atelier", "siret": siret, "kind": "association", "commune_code": "69381", "address": "2 quai"})
	c.Must(201, "POST", "/v1/offers", map[string]any{
		"employer_id": str(emp, "id"), "title": "Menuiserie", "description": "Bois", "sector": "s2", "grades": []string{"2de"},
		"weeks": []string{weekAhead(10), weekAhead(11)}, "seats": 3, "commune_code": "69381", "address": "2 quai", "lat": 45.76, "lon": 4.83,
	})
	for {
		select {
		case m, ok := <-events:
			if !ok {
				t.Fatal("stream ended")
			}
			if num(m, "offers_open") == 1 && num(m, "by_grade", "2de", "seats_total") == 6 {
				return
			}
		case <-ctx.Done():
			t.Fatal("no stats event announced the new offer")
		}
	}
}
