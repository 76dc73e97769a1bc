package app_test

import (
	"fmt"
	"slices"
	"testing"

	"passerelle/internal/app"
	"passerelle/internal/auth"
	"passerelle/internal/testsupport/httpclient"
	"passerelle/internal/testsupport/redistest"
)

// roundWorld is a hand-made market in Val-de-Marne: a REP collège in
// Créteil with three pupils, 2 km from offer A (2 seats), the only one they
// may take; a collège in Maisons-Alfort with six pupils, nearer to A (0.3
// km), who wish A first too (their ranked offers) but may also take offer
// B in Fontenay-sous-Bois (10 seats), reserved to their collège. Only
// their priority gives the REP pupils A's seats.
type roundWorld struct {
	week, offerA, offerB, employer string
	rep, others                    []string
}

func setupRoundWorld(t *testing.T, c httpclient.Client) roundWorld {
	t.Helper()
	w := roundWorld{week: weekAhead(10)}
	const repUAI, otherUAI = "0940101A", "0940102B"
	c.Must(201, "POST", "/v1/schools", map[string]any{"uai": repUAI, "name": "Collège Laplace", "kind": "college", "commune_code": "94028", "education_priority": "rep", "qpv": false})
	c.Must(201, "POST", "/v1/schools", map[string]any{"uai": otherUAI, "name": "Collège Condorcet", "kind": "college", "commune_code": "94046", "education_priority": "none", "qpv": false})
	emp := str(c.Must(201, "POST", "/v1/employers", validEmployer()), "id")
	w.employer = emp
	offer := func(commune string, lat, lon float64, seats int, reserved map[string]any) string {
		body := validOffer(emp)
		body["weeks"], body["seats"], body["commune_code"], body["lat"], body["lon"] = []string{w.week}, seats, commune, lat, lon
		if reserved != nil {
			body["reserved"] = reserved
		}
		return str(c.Must(201, "POST", "/v1/offers", body), "id")
	}
	w.offerA = offer("94028", 48.799, 2.442, 2, nil)
	w.offerB = offer("94033", 48.85029, 2.47357, 10, map[string]any{"schools": []string{otherUAI}})
	pupil := func(school string, i int) string {
		body := validPupil()
		body["school_uai"] = school
		// a fixed key: the same pupil ids at every run, hence the same lottery
		return str(c.Must(201, "POST", "/v1/pupils", body, "Idempotency-Key", fmt.Sprintf("round-pupil-%s-%d", school, i)), "id")
	}
	for i := range 3 {
		w.rep = append(w.rep, pupil(repUAI, i))
	}
	for i := range 6 {
		w.others = append(w.others, pupil(otherUAI, i))
		c.Must(200, "POST", "/v1/pupils/"+w.others[i]+"/wishes", map[string]any{"sectors": []string{"s1"}, "max_distance_km": 20,
			"offers": []string{w.offerA, w.offerB}})
	}
	return w
}

// TestAllocationRound runs a campaign's rounds over real HTTP: the preview
// places the REP pupils at the offer next to their collège where first
// come leaves them out, publishing proposes the matches to the pupils
// (once, however often it runs), and a declined proposal frees its seat
// for the next round.
func TestAllocationRound(t *testing.T) {
	redistest.EachRedis(t, func(t *testing.T, r redistest.Redis) {
		_, c := authenticated(t, app.Config{DataDir: t.TempDir(), RedisURL: r.URL, SealEvery: -1, ExpiryEvery: -1})
		bo := c.As(auth.Backoffice, "agent-1")
		w := setupRoundWorld(t, bo)
		campaign := str(bo.Must(201, "POST", "/v1/campaigns", map[string]any{"name": "Val-de-Marne 3e", "departments": []string{"94"},
			"grades": []string{"3e"}, "weeks": []string{w.week}, "target": 9}), "id")
		if r := c.As(auth.School, "0940101A").Do("POST", "/v1/campaigns/"+campaign+"/rounds", map[string]any{}); r.Status != 403 {
			t.Fatalf("a school computes a round: %d %s", r.Status, r.Raw)
		}

		round := bo.Must(201, "POST", "/v1/campaigns/"+campaign+"/rounds", map[string]any{"seed": 7, "max_choices": 5})
		id, preview := str(round, "id"), round["preview"].(map[string]any)
		matches := checkPreview(t, preview)
		at := map[string]string{}
		for _, m := range matches {
			at[m["pupil_id"].(string)] = m["offer_id"].(string)
		}
		if got := []string{at[w.rep[0]], at[w.rep[1]], at[w.rep[2]]}; count(got, w.offerA) != 2 || count(got, "") != 1 {
			t.Fatalf("REP pupils got %v: want two at offer A, one unplaced", got)
		}
		for _, p := range w.others {
			if at[p] != w.offerB {
				t.Fatalf("pupil %s of the other collège got %q, want offer B (A goes to REP pupils first)", p, at[p])
			}
		}
		fc := preview["first_come"].(map[string]any)
		if num(preview, "placed_by_priority", "rep") != 2 || num(fc, "placed_by_priority", "rep") >= 2 || num(fc, "placed") < 0 {
			t.Fatalf("REP placed: round %v, first come %v; want 2 and fewer", preview["placed_by_priority"], fc["placed_by_priority"])
		}

		got := bo.Must(200, "GET", "/v1/rounds/"+id, nil)
		if got["published"] != false || got["campaign_id"] != campaign || num(got, "seed") != 7 || num(got, "max_choices") != 5 ||
			len(got["preview"].(map[string]any)["matches"].([]any)) != len(matches) {
			t.Fatalf("GET round: %v", got)
		}
		for _, p := range append(slices.Clone(w.rep), w.others...) {
			if items := bo.Must(200, "GET", "/v1/pupils/"+p+"/applications", nil)["items"].([]any); len(items) != 0 {
				t.Fatalf("pupil %s has applications before the round is published: %v", p, items)
			}
		}

		pub := bo.Must(200, "POST", "/v1/rounds/"+id+"/publish", nil)
		if num(pub, "proposals", "proposed") != float64(len(matches)) {
			t.Fatalf("publish: %v, want %d proposed", pub, len(matches))
		}
		pos := str(pub, "position")
		for p, offer := range at {
			items := bo.Must(200, "GET", "/v1/pupils/"+p+"/applications?min_position="+pos, nil)["items"].([]any)
			if len(items) != 1 || items[0].(map[string]any)["offer_id"] != offer || items[0].(map[string]any)["status"] != "submitted" {
				t.Fatalf("pupil %s after publishing: %v, want one submitted application to %s", p, items, offer)
			}
		}
		head := logHead(t, bo)
		again := bo.Must(200, "POST", "/v1/rounds/"+id+"/publish", nil)
		if num(again, "proposals", "proposed") != float64(len(matches)) || logHead(t, bo) != head {
			t.Fatalf("publishing again: %v, log %s → %s: want the same proposals and nothing written", again, head, logHead(t, bo))
		}
		if got := bo.Must(200, "GET", "/v1/rounds/"+id, nil); got["published"] != true || str(got, "published_at") == "" {
			t.Fatalf("GET round after publishing: published %v at %v", got["published"], got["published_at"])
		}

		// a REP pupil declines: the next round gives their seat to the one left out
		var declined, left string
		for _, p := range w.rep {
			switch {
			case at[p] == "":
				left = p
			case declined == "":
				declined = p
			}
		}
		app := bo.Must(200, "GET", "/v1/pupils/"+declined+"/applications", nil)["items"].([]any)[0].(map[string]any)
		bo.Must(200, "POST", "/v1/applications/"+str(app, "id")+"/withdraw", map[string]any{"reason": "autre stage"})
		next := bo.Do("POST", "/v1/campaigns/"+campaign+"/rounds", map[string]any{"seed": 8}, "Idempotency-Key", "round-2")
		if next.Status != 201 {
			t.Fatalf("the next round: %d %s", next.Status, next.Raw)
		}
		np := bo.Must(200, "GET", "/v1/rounds/"+str(next.Body, "id"), nil)["preview"].(map[string]any)
		nm := checkPreview(t, np)
		if len(nm) != 1 || nm[0]["pupil_id"] != left || nm[0]["offer_id"] != w.offerA {
			t.Fatalf("the next round: %v, want only %s at offer A", nm, left)
		}
		// the pending proposals hold their seats and their pupils: A's freed
		// seat and B's 4 left, for the one left out (the one who declined A
		// has no other choice)
		if num(np, "seats") != 1+10-6 || num(np, "pupils") != 1 {
			t.Fatalf("the next round: %v seats for %v pupils, want 5 for 1", np["seats"], np["pupils"])
		}
		// the same key again: the same round and preview, read back from its stream
		if again := bo.Do("POST", "/v1/campaigns/"+campaign+"/rounds", map[string]any{"seed": 8}, "Idempotency-Key", "round-2"); again.Status != 201 || again.Raw != next.Raw {
			t.Fatalf("replayed round: %d %s\nfirst: %s", again.Status, again.Raw, next.Raw)
		}
	})
}

// TestTargetProgressCountsProposalsAndBookings: a campaign target's
// progress counts, in its scope, the proposals of a published round while
// they await their answer, and the pupils of group bookings.
func TestTargetProgressCountsProposalsAndBookings(t *testing.T) {
	redistest.EachRedis(t, func(t *testing.T, r redistest.Redis) {
		_, c := authenticated(t, app.Config{DataDir: t.TempDir(), RedisURL: r.URL, SealEvery: -1, ExpiryEvery: -1})
		bo := c.As(auth.Backoffice, "agent-1")
		w := setupRoundWorld(t, bo)
		bo.Must(200, "POST", "/v1/targets", map[string]any{"scope": "department", "code": "94", "metric": "seats_held", "target": 20})
		bo.Must(200, "POST", "/v1/targets", map[string]any{"scope": "department", "code": "75", "metric": "seats_held", "target": 20})
		progress := func(pos string) (dep94, dep75 map[string]any, stats map[string]any) {
			t.Helper()
			stats = bo.Must(200, "GET", "/v1/stats/offers?min_position="+pos, nil)
			for _, x := range stats["targets"].([]any) {
				tp := x.(map[string]any)
				switch tp["code"] {
				case "94":
					dep94 = tp
				case "75":
					dep75 = tp
				}
			}
			return dep94, dep75, stats
		}
		campaign := str(bo.Must(201, "POST", "/v1/campaigns", map[string]any{"name": "Val-de-Marne 3e", "departments": []string{"94"},
			"grades": []string{"3e"}, "weeks": []string{w.week}}), "id")
		round := bo.Must(201, "POST", "/v1/campaigns/"+campaign+"/rounds", map[string]any{"seed": 7})
		pub := bo.Must(200, "POST", "/v1/rounds/"+str(round, "id")+"/publish", nil)
		proposed := num(pub, "proposals", "proposed")
		dep94, dep75, stats := progress(str(pub, "position"))
		if proposed != 8 || num(dep94, "proposals_pending") != proposed || num(dep94, "pupils_booked") != 0 || num(dep94, "current") != 0 ||
			num(dep75, "proposals_pending") != 0 || num(stats, "proposals_pending") != proposed || num(stats, "by_week", w.week, "proposals_pending") != proposed {
			t.Fatalf("after publishing %v proposals: target 94 %v, target 75 %v, stats %v", proposed, dep94, dep75, stats)
		}

		// a proposal declined, another accepted: neither pending any more
		apps := map[string]string{}
		for _, p := range append(slices.Clone(w.rep), w.others...) {
			if items := bo.Must(200, "GET", "/v1/pupils/"+p+"/applications?min_position="+str(pub, "position"), nil)["items"].([]any); len(items) == 1 {
				apps[p] = str(items[0].(map[string]any), "id")
			}
		}
		bo.Must(200, "POST", "/v1/applications/"+apps[w.others[0]]+"/withdraw", map[string]any{"reason": "autre stage"})
		acc := c.As(auth.Employer, w.employer).Must(200, "POST", "/v1/applications/"+apps[w.others[1]]+"/accept", nil)
		if dep94, _, _ = progress(str(acc, "position")); num(dep94, "proposals_pending") != proposed-2 || num(dep94, "current") != 1 {
			t.Fatalf("after a decline and an acceptance: %v", dep94)
		}

		// a REP school books a group of two on a collective offer
		body := validOffer(w.employer)
		body["collective"], body["min_group_size"], body["weeks"] = true, 1, []string{w.week}
		collective := str(bo.Must(201, "POST", "/v1/offers", body), "id")
		var group []string
		for range 2 {
			pb := validPupil()
			pb["school_uai"] = "0940101A"
			group = append(group, str(bo.Must(201, "POST", "/v1/pupils", pb), "id"))
		}
		booked := bo.Must(201, "POST", "/v1/offers/"+collective+"/group-bookings", map[string]any{"school_uai": "0940101A", "pupil_ids": group, "weeks": []string{w.week}})
		dep94, _, stats = progress(str(booked, "position"))
		if num(dep94, "pupils_booked") != 2 || num(dep94, "current") != 3 || num(dep94, "proposals_pending") != proposed-2 ||
			num(stats, "by_department", "94", "pupils_booked") != 2 {
			t.Fatalf("after a group booking of two: target %v, stats %v", dep94, stats["by_department"])
		}
	})
}

// TestRoundGivesWishedOffers: a pupil's ranked offers are their choices,
// whatever the desk would suggest first: the pupil who wished only the
// offer 8 km away gets it, the one without wishes the nearer one.
func TestRoundGivesWishedOffers(t *testing.T) {
	redistest.EachRedis(t, func(t *testing.T, r redistest.Redis) {
		_, c := authenticated(t, app.Config{DataDir: t.TempDir(), RedisURL: r.URL, SealEvery: -1, ExpiryEvery: -1})
		bo := c.As(auth.Backoffice, "agent-1")
		week := weekAhead(10)
		bo.Must(201, "POST", "/v1/schools", map[string]any{"uai": "0940101A", "name": "Collège Laplace", "kind": "college", "commune_code": "94028", "education_priority": "none", "qpv": false})
		emp := str(bo.Must(201, "POST", "/v1/employers", validEmployer()), "id")
		offer := func(lat, lon float64) string {
			body := validOffer(emp)
			body["weeks"], body["seats"], body["lat"], body["lon"] = []string{week}, 1, lat, lon
			return str(bo.Must(201, "POST", "/v1/offers", body), "id")
		}
		near, far := offer(48.79, 2.455), offer(48.86, 2.50) // 0.3 km and 8 km from Créteil's centre
		var pupils []string
		for i := range 2 {
			body := validPupil()
			body["school_uai"] = "0940101A"
			pupils = append(pupils, str(bo.Must(201, "POST", "/v1/pupils", body, "Idempotency-Key", fmt.Sprint("wished-pupil-", i)), "id"))
		}
		bo.Must(200, "POST", "/v1/pupils/"+pupils[0]+"/wishes", map[string]any{"sectors": []string{"s1"}, "max_distance_km": 20, "offers": []string{far}})
		campaign := str(bo.Must(201, "POST", "/v1/campaigns", map[string]any{"name": "Créteil", "departments": []string{"94"},
			"grades": []string{"3e"}, "weeks": []string{week}}), "id")
		for seed := range 4 { // whatever the lottery
			preview := bo.Must(201, "POST", "/v1/campaigns/"+campaign+"/rounds", map[string]any{"seed": seed})["preview"].(map[string]any)
			at := map[string]string{}
			for _, m := range checkPreview(t, preview) {
				at[m["pupil_id"].(string)] = m["offer_id"].(string)
			}
			if at[pupils[0]] != far || at[pupils[1]] != near {
				t.Fatalf("seed %d: the pupil who wished the far offer got %q, the other %q; want %s and %s", seed, at[pupils[0]], at[pupils[1]], far, near)
			}
		}
	})
}

// checkPreview checks a preview's figures against its matches: the
// placed count, by priority, seats left, distances in order, first come's
// figures on the same market, and no pupil matched twice.
func checkPreview(t *testing.T, p map[string]any) []map[string]any {
	t.Helper()
	var matches []map[string]any
	pupils := map[string]bool{}
	for _, m := range p["matches"].([]any) {
		mm := m.(map[string]any)
		if pupils[mm["pupil_id"].(string)] {
			t.Fatalf("pupil %s matched twice", mm["pupil_id"])
		}
		pupils[mm["pupil_id"].(string)] = true
		matches = append(matches, mm)
	}
	byGroup := 0.0
	for _, n := range p["placed_by_priority"].(map[string]any) {
		byGroup += n.(float64)
	}
	fc := p["first_come"].(map[string]any)
	if num(p, "placed") != float64(len(matches)) || byGroup != num(p, "placed") || num(p, "seats_left") != num(p, "seats")-num(p, "placed") ||
		num(p, "distance_km_median") > num(p, "distance_km_p90") || num(fc, "pupils") != num(p, "pupils") || num(fc, "seats") != num(p, "seats") ||
		num(fc, "seats_left") != num(fc, "seats")-num(fc, "placed") {
		t.Fatalf("preview figures do not agree with its %d matches: %v", len(matches), p)
	}
	return matches
}

func count(xs []string, x string) int {
	n := 0
	for _, v := range xs {
		if v == x {
			n++
		}
	}
	return n
}
