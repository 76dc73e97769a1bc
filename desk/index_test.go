package desk_test

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"passerelle/desk"
	"passerelle/domain"
	"passerelle/domain/allocation"
	"passerelle/domain/refdata"
	"passerelle/eventstore"
	"passerelle/internal/route"
)

func newIndex(now *time.Time) *desk.Index {
	return desk.New(refdata.MustLoad(), func() time.Time { return *now })
}

// counts are each unplaced pupil's eligible offers, as the desk shows them.
func counts(ix *desk.Index) map[string]int {
	items, _, _ := ix.UnplacedPupils(desk.Territory{}, 0, math.MaxInt)
	out := map[string]int{}
	for _, u := range items {
		out[u.PupilID] = u.EligibleOffers
	}
	return out
}

// liveTail is what happens after the log was first read: offers withdrawn
// and reopened, amended, seats held and released, placements confirmed
// and released, wishes changed, pupils forgotten.
func liveTail(r *rand.Rand, w world, from eventstore.Position, n int) []desk.Event {
	var out []desk.Event
	pos := from
	add := func(e domain.Event) {
		pos++
		out = append(out, desk.Event{Position: pos, Data: e})
	}
	for i := range n {
		o, p := w.offers[r.IntN(len(w.offers))], w.pupils[r.IntN(len(w.pupils))]
		app := fmt.Sprintf("live-%d", i)
		week := []string{collegeWeeks[r.IntN(len(collegeWeeks))]}
		switch r.IntN(9) {
		case 0:
			add(&domain.OfferWithdrawn{OfferID: o})
		case 1:
			add(&domain.OfferReopened{OfferID: o})
		case 2:
			add(&domain.OfferAmended{OfferID: o, Title: "Offre", Weeks: collegeWeeks[3:6], Seats: 1 + r.IntN(3), FamilyBusiness: r.IntN(2) == 0,
				Reserved: domain.Reservation{REP: r.IntN(4) == 0}})
		case 3:
			add(&domain.SeatHeld{OfferID: o, ApplicationID: app, PupilID: p, Weeks: week})
			if r.IntN(2) == 0 {
				add(&domain.SeatReleased{OfferID: o, ApplicationID: app, Weeks: week})
			}
		case 4:
			add(&domain.PupilApplied{PupilID: p, ApplicationID: app, OfferID: o, Weeks: week})
		case 5:
			add(&domain.PupilWeeksReserved{PupilID: p, ApplicationID: app, Weeks: week})
			if r.IntN(2) == 0 {
				add(&domain.PupilWeeksReleased{PupilID: p, ApplicationID: app})
			}
		case 6:
			add(&domain.PupilWishesRecorded{PupilID: p, Sectors: []string{"s3"}, MaxDistanceKM: 5 + r.IntN(40), Weeks: collegeWeeks[r.IntN(5):][:4]})
		case 7:
			add(&domain.PupilWishesRecorded{PupilID: p, MaxDistanceKM: 60})
		case 8:
			if r.IntN(10) == 0 {
				add(&domain.PupilForgotten{PupilID: p})
			}
		}
	}
	return out
}

// countedWorld is a generated campaign folded into an index on the clock
// now, its counts made.
func countedWorld(now *time.Time) (world, *desk.Index) {
	w := generate(3, 3000, 4000)
	ix := newIndex(now)
	ix.Apply(w.events...)
	ix.CountAll()
	return w, ix
}

// The counts kept event by event equal the counts made from scratch, and
// each is the number of the pupil's suggestions.
func TestCountsFollowTheLog(t *testing.T) {
	now := worldNow
	w, live := countedWorld(&now)
	tail := liveTail(rand.New(rand.NewPCG(5, 6)), w, w.events[len(w.events)-1].Position, 3000)
	for _, e := range tail {
		live.Apply(e) // one by one, as they come
	}
	fresh := newIndex(&now)
	fresh.Apply(append(slices.Clone(w.events), tail...)...)
	fresh.CountAll()
	got, want := counts(live), counts(fresh)
	if len(want) < 1000 {
		t.Fatalf("only %d pupils without a placement: the world is too small to tell", len(want))
	}
	nonzero := 0
	for id, n := range want {
		if got[id] != n {
			t.Errorf("pupil %s: %d eligible offers kept live, %d counted from scratch", id, got[id], n)
		}
		if _, total, _ := fresh.Suggestions(id, 0, 1); total != n {
			t.Errorf("pupil %s: %d eligible offers counted, %d suggestions", id, n, total)
		}
		if n > 0 {
			nonzero++
		}
	}
	if len(got) != len(want) || nonzero < len(want)/2 {
		t.Errorf("%d pupils counted live, %d from scratch, %d with an offer", len(got), len(want), nonzero)
	}
}

// A week that starts while events come and queries are answered: the
// counts, made again a school at a time, end equal to those made from
// scratch.
func TestWeekStartsWhileFollowing(t *testing.T) {
	now := worldNow
	w, live := countedWorld(&now)
	before := counts(live)
	tail := liveTail(rand.New(rand.NewPCG(7, 8)), w, w.events[len(w.events)-1].Position, 3000)
	now = time.Date(2027, 1, 19, 9, 0, 0, 0, time.UTC) // 2027-W02 and W03 have started
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(live.Tick)
	wg.Go(func() {
		for _, e := range tail {
			live.Apply(e)
		}
	})
	go func() { wg.Wait(); close(done) }()
	for queries := 0; ; queries++ {
		select {
		case <-done:
			t.Logf("%d queries answered meanwhile", queries)
		default:
			live.Suggestions(w.pupils[queries%len(w.pupils)], 0, 5)
			live.Candidates(w.offers[queries%len(w.offers)], 0, 5)
			continue
		}
		break
	}
	fresh := newIndex(&now)
	fresh.Apply(append(slices.Clone(w.events), tail...)...)
	fresh.CountAll()
	got, want := counts(live), counts(fresh)
	moved := 0
	for id, n := range want {
		if got[id] != n {
			t.Errorf("pupil %s: %d eligible offers kept live, %d counted from scratch", id, got[id], n)
		}
		if before[id] != n {
			moved++
		}
	}
	if len(got) != len(want) || moved < len(want)/10 {
		t.Errorf("%d pupils counted live, %d from scratch; %d counts moved with the weeks and events", len(got), len(want), moved)
	}
}

// A week that starts is no longer offered, and the counts follow.
func TestStartedWeeksLeave(t *testing.T) {
	now := time.Date(2027, 1, 1, 9, 0, 0, 0, time.UTC)
	ix := newIndex(&now)
	ix.Apply(world1(t)...)
	ix.CountAll()
	if _, total, _ := ix.Suggestions(pupilID, 0, 10); total != 2 {
		t.Fatalf("before: %d suggestions, want 2", total)
	}
	now = time.Date(2027, 1, 11, 0, 0, 0, 0, time.UTC) // Monday of 2027-W02
	ix.Tick()
	items, total, _ := ix.Suggestions(pupilID, 0, 10)
	if total != 1 || items[0].ID != offerLater || counts(ix)[pupilID] != 1 {
		t.Fatalf("once 2027-W02 has started: %+v (count %d)", items, counts(ix)[pupilID])
	}
}

// A seat held or released moves a pupil's count only when it fills a week
// or frees a full one; an application takes its offer from the pupil's
// count if it held it. The counts kept live equal those made from scratch
// at every step.
func TestCountsFollowSeatsAndApplications(t *testing.T) {
	now := time.Date(2027, 1, 1, 9, 0, 0, 0, time.UTC)
	evs := world1(t)
	live := newIndex(&now)
	live.Apply(evs...)
	live.CountAll()
	for i, step := range []struct {
		e    domain.Event
		want int
	}{
		{&domain.SeatHeld{OfferID: offerSoon, ApplicationID: "a1", PupilID: lyceeID, Weeks: []string{"2027-W02"}}, 2},  // one seat of two
		{&domain.SeatHeld{OfferID: offerSoon, ApplicationID: "a2", PupilID: lyceeID, Weeks: []string{"2027-W02"}}, 1},  // full
		{&domain.SeatReleased{OfferID: offerSoon, ApplicationID: "a1", Weeks: []string{"2027-W02"}}, 2},                // freed
		{&domain.SeatHeld{OfferID: offerLater, ApplicationID: "a3", PupilID: lyceeID, Weeks: []string{"2027-W05"}}, 1}, // its only seat
		{&domain.SeatReleased{OfferID: offerSoon, ApplicationID: "a2", Weeks: []string{"2027-W02"}}, 1},                // one of two free
		{&domain.SeatReleased{OfferID: offerLater, ApplicationID: "a3", Weeks: []string{"2027-W05"}}, 2},
		{&domain.PupilApplied{PupilID: pupilID, ApplicationID: "b1", OfferID: offerLater, Weeks: []string{"2027-W05"}}, 1},
		{&domain.PupilApplied{PupilID: pupilID, ApplicationID: "b2", OfferID: offer2de, Weeks: []string{"2027-W25"}}, 1},   // not for 3e
		{&domain.PupilApplied{PupilID: pupilID, ApplicationID: "b3", OfferID: offerLater, Weeks: []string{"2027-W05"}}, 1}, // again
		{&domain.PupilApplied{PupilID: pupilID, ApplicationID: "b4", OfferID: offerSoon, Weeks: []string{"2027-W02"}}, 0},
	} {
		e := desk.Event{Position: eventstore.Position(len(evs) + 1), Data: step.e}
		evs = append(evs, e)
		live.Apply(e)
		fresh := newIndex(&now)
		fresh.Apply(evs...)
		fresh.CountAll()
		if got, scratch := counts(live)[pupilID], counts(fresh)[pupilID]; got != step.want || scratch != step.want {
			t.Fatalf("step %d (%T): %d eligible offers kept live, %d counted from scratch, want %d", i, step.e, got, scratch, step.want)
		}
	}
}

// TestCountsOfPupilsWithWishedWeeks: a pupil who wished for weeks and
// turns 14 between them may take a company's offer only in a wished week
// that has a free seat and starts once they are 14; the count kept live
// and the one made from scratch follow the seats and the wishes.
func TestCountsOfPupilsWithWishedWeeks(t *testing.T) {
	now := time.Date(2027, 1, 1, 9, 0, 0, 0, time.UTC)
	const company = "00000009-0000-4000-8000-000000000002"
	evs := []desk.Event{}
	add := func(e domain.Event) desk.Event {
		ev := desk.Event{Position: eventstore.Position(len(evs) + 1), Data: e}
		evs = append(evs, ev)
		return ev
	}
	for _, e := range []domain.Event{
		&domain.SchoolRegistered{UAI: "0941234A", Kind: "college", CommuneCode: "94028", Department: "94", EducationPriority: "none"},
		// 14 on Wednesday 20 January 2027, in week 3
		&domain.PupilRegistered{PupilID: pupilID, SchoolUAI: "0941234A", Grade: "3e", BirthDate: "2013-01-20"},
		&domain.PupilWishesRecorded{PupilID: pupilID, MaxDistanceKM: 20, Weeks: []string{"2027-W02", "2027-W05"}},
		&domain.OfferPosted{OfferID: company, EmployerKind: "company", Sector: "s1", Grades: []domain.Grade{"3e"},
			Weeks: []string{"2027-W02", "2027-W05"}, Seats: 1, CommuneCode: "94028", Department: "94", Lat: 48.79, Lon: 2.455},
	} {
		add(e)
	}
	live := newIndex(&now)
	live.Apply(evs...)
	live.CountAll()
	if got := counts(live)[pupilID]; got != 1 {
		t.Fatalf("%d eligible offers at first, want 1 (week 5, once 14)", got)
	}
	for i, step := range []struct {
		e    domain.Event
		want int
	}{
		{&domain.SeatHeld{OfferID: company, ApplicationID: "a1", PupilID: lyceeID, Weeks: []string{"2027-W05"}}, 0}, // week 2 left: too young
		{&domain.SeatReleased{OfferID: company, ApplicationID: "a1", Weeks: []string{"2027-W05"}}, 1},
		{&domain.PupilWishesRecorded{PupilID: pupilID, MaxDistanceKM: 20, Weeks: []string{"2027-W02"}}, 0},
		{&domain.PupilWishesRecorded{PupilID: pupilID, MaxDistanceKM: 20, Weeks: []string{"2027-W05"}}, 1},
		{&domain.SeatHeld{OfferID: company, ApplicationID: "a2", PupilID: lyceeID, Weeks: []string{"2027-W02"}}, 1}, // not wished
		{&domain.SeatHeld{OfferID: company, ApplicationID: "a3", PupilID: lyceeID, Weeks: []string{"2027-W05"}}, 0}, // full
		{&domain.PupilWishesRecorded{PupilID: pupilID, MaxDistanceKM: 20}, 0},                                       // any week: all full
		{&domain.SeatReleased{OfferID: company, ApplicationID: "a2", Weeks: []string{"2027-W02"}}, 0},               // week 2: too young
		{&domain.SeatReleased{OfferID: company, ApplicationID: "a3", Weeks: []string{"2027-W05"}}, 1},
	} {
		live.Apply(add(step.e))
		fresh := newIndex(&now)
		fresh.Apply(evs...)
		fresh.CountAll()
		if got, scratch := counts(live)[pupilID], counts(fresh)[pupilID]; got != step.want || scratch != step.want {
			t.Fatalf("step %d (%T): %d eligible offers kept live, %d counted from scratch, want %d", i, step.e, got, scratch, step.want)
		}
	}
}

const (
	pupilID    = "00000001-0000-4000-8000-000000000001"
	lyceeID    = "00000002-0000-4000-8000-000000000001"
	offerSoon  = "00000001-0000-4000-8000-000000000002"
	offerLater = "00000002-0000-4000-8000-000000000002"
	offer2de   = "00000003-0000-4000-8000-000000000002"
)

// world1 is one collège pupil and one lycée pupil of Créteil, and offers
// there: two for 3e (2027-W02, 2027-W05), one for 2de over three weeks.
func world1(t *testing.T) []desk.Event {
	t.Helper()
	evs := []domain.Event{
		&domain.SchoolRegistered{UAI: "0941234A", Kind: "college", CommuneCode: "94028", Department: "94", EducationPriority: "rep"},
		&domain.SchoolRegistered{UAI: "0941235B", Kind: "lycee", CommuneCode: "94028", Department: "94", EducationPriority: "none", QPV: true},
		&domain.PupilRegistered{PupilID: pupilID, SchoolUAI: "0941234A", Grade: "3e", BirthDate: "2012-01-01"},
		&domain.PupilRegistered{PupilID: lyceeID, SchoolUAI: "0941235B", Grade: "2de", BirthDate: "2011-01-01"},
		&domain.OfferPosted{OfferID: offerSoon, EmployerKind: "public", Sector: "s1", Grades: []domain.Grade{"3e"}, Weeks: []string{"2027-W02"},
			Seats: 2, CommuneCode: "94028", Department: "94", Lat: 48.79, Lon: 2.455},
		&domain.OfferPosted{OfferID: offerLater, EmployerKind: "public", Sector: "s2", Grades: []domain.Grade{"3e"}, Weeks: []string{"2027-W05"},
			Seats: 1, CommuneCode: "94028", Department: "94", Lat: 48.80, Lon: 2.46, Reserved: domain.Reservation{REP: true}},
		&domain.OfferPosted{OfferID: offer2de, EmployerKind: "public", Sector: "s3", Grades: []domain.Grade{"2de"},
			Weeks: []string{"2027-W25", "2027-W26", "2027-W27"}, Seats: 3, CommuneCode: "94028", Department: "94", Lat: 48.79, Lon: 2.45},
	}
	out := make([]desk.Event, len(evs))
	for i, e := range evs {
		out[i] = desk.Event{Position: eventstore.Position(i + 1), Data: e}
	}
	return out
}

// The market of a scope: each free week of a 3e offer is a slot, a 2de
// offer's weeks pair up; pupils choose their wished offers, else their
// suggestions, at most maxChoices.
func TestMarket(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ix := newIndex(&now)
	ix.Apply(world1(t)...)
	ix.CountAll()
	m, err := ix.Market(context.Background(), ix.Position(), allocation.Scope{Departments: []string{"94"}}, 5)
	if err != nil {
		t.Fatal(err)
	}
	var slots []string
	for _, s := range m.Slots {
		slots = append(slots, fmt.Sprintf("%s %v %d", s.OfferID[:8], s.Weeks, s.Seats))
	}
	want := []string{"00000001 [2027-W02] 2", "00000002 [2027-W05] 1", "00000003 [2027-W25 2027-W26] 3", "00000003 [2027-W27] 3"}
	if !slices.Equal(slots, want) {
		t.Fatalf("slots %v, want %v", slots, want)
	}
	if len(m.Pupils) != 2 {
		t.Fatalf("pupils %+v", m.Pupils)
	}
	college, lycee := m.Pupils[0], m.Pupils[1]
	// the reserved offer comes first (20 points), and is marked so
	if college.ID != pupilID || college.Group != "rep" || college.Priority != 1 || len(college.Choices) != 2 ||
		college.Choices[0] != (allocation.Choice{Slot: 1, Reserved: true, DistanceKM: college.Choices[0].DistanceKM}) || college.Choices[1].Slot != 0 {
		t.Errorf("the collège pupil: %+v", college)
	}
	if d := college.Choices[0].DistanceKM; d <= 0 || d > 5 {
		t.Errorf("distance %v km from the centre of Créteil", d)
	}
	if lycee.Group != "qpv" || len(lycee.Choices) != 2 || lycee.Choices[0].Slot != 2 {
		t.Errorf("the lycée pupil: %+v", lycee)
	}

	// wished offers are the choices, in their order; a cap of one
	ix.Apply(desk.Event{Position: 100, Data: &domain.PupilWishesRecorded{PupilID: pupilID, MaxDistanceKM: 10, Offers: []string{offerSoon, offerLater}}},
		desk.Event{Position: 101, Data: &domain.PupilWeeksReserved{PupilID: lyceeID, ApplicationID: "a", Weeks: []string{"2027-W27"}}})
	m, _ = ix.Market(context.Background(), ix.Position(), allocation.Scope{Communes: []string{"94028"}, Grades: []string{"3e"}}, 1)
	if len(m.Pupils) != 1 || len(m.Pupils[0].Choices) != 1 || m.Slots[m.Pupils[0].Choices[0].Slot].OfferID != offerSoon {
		t.Errorf("with wishes, one choice, 3e only: %+v %+v", m.Pupils, m.Slots)
	}
	m, _ = ix.Market(context.Background(), ix.Position(), allocation.Scope{Departments: []string{"75"}}, 5)
	if len(m.Slots) != 0 || len(m.Pupils) != 0 {
		t.Errorf("another département: %+v", m)
	}
	// a commune of the scope keeps its schools' pupils only; started weeks
	// and weeks out of scope leave
	m, _ = ix.Market(context.Background(), ix.Position(), allocation.Scope{Departments: []string{"94"}, Communes: []string{"94046"}}, 5)
	if len(m.Pupils) != 0 || len(m.Slots) != 4 {
		t.Errorf("the pupils of another commune: %+v", m)
	}
	now = time.Date(2027, 1, 12, 9, 0, 0, 0, time.UTC) // 2027-W02 has started
	m, _ = ix.Market(context.Background(), ix.Position(), allocation.Scope{Departments: []string{"94"}, Weeks: []string{"2027-W02", "2027-W05"}}, 5)
	if len(m.Slots) != 1 || m.Slots[0].OfferID != offerLater {
		t.Errorf("W02 started, W25 to W27 out of scope: %+v", m.Slots)
	}
}

// slotSeats are a market's seats by offer id prefix and weeks.
func slotSeats(m allocation.Market) map[string]int {
	out := map[string]int{}
	for _, s := range m.Slots {
		out[fmt.Sprint(s.OfferID[:8], s.Weeks)] = s.Seats
	}
	return out
}

// A round's market counts the seats of live proposals and of accepted or
// confirmed applications as taken and leaves out their pupils; an
// ordinary application takes no seat; an answered proposal frees its seat
// and its pupil, who is not proposed the same offer again.
func TestMarketLeavesCommitmentsOut(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ix := newIndex(&now)
	ix.Apply(world1(t)...)
	const other, third = "00000004-0000-4000-8000-000000000001", "00000005-0000-4000-8000-000000000001"
	pos := eventstore.Position(100)
	apply := func(evs ...domain.Event) {
		for _, e := range evs {
			pos++
			ix.Apply(desk.Event{Position: pos, Data: e})
		}
	}
	apply(&domain.PupilRegistered{PupilID: other, SchoolUAI: "0941234A", Grade: "3e", BirthDate: "2012-02-01"},
		&domain.PupilRegistered{PupilID: third, SchoolUAI: "0941234A", Grade: "3e", BirthDate: "2012-03-01"})
	ix.CountAll()
	week := []string{"2027-W02"}
	round := &domain.Proposer{ID: "round-r1", Role: "system"}
	// a round's proposal to pupilID, an ordinary application by other, and
	// the lycée pupil's accepted application
	apply(&domain.ApplicationSubmitted{ApplicationID: "p1", OfferID: offerSoon, PupilID: pupilID, Weeks: week, ProposedBy: round},
		&domain.PupilApplied{PupilID: pupilID, ApplicationID: "p1", OfferID: offerSoon, Weeks: week},
		&domain.ApplicationSubmitted{ApplicationID: "a1", OfferID: offerSoon, PupilID: other, Weeks: week},
		&domain.PupilApplied{PupilID: other, ApplicationID: "a1", OfferID: offerSoon, Weeks: week},
		&domain.SeatHeld{OfferID: offer2de, ApplicationID: "a2", PupilID: lyceeID, Weeks: []string{"2027-W27"}},
		&domain.ApplicationAccepted{ApplicationID: "a2"})
	m, err := ix.Market(context.Background(), pos, allocation.Scope{Departments: []string{"94"}}, 5)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"00000001[2027-W02]": 1, "00000002[2027-W05]": 1, "00000003[2027-W25 2027-W26]": 3, "00000003[2027-W27]": 2}
	if got := slotSeats(m); !maps.Equal(got, want) {
		t.Fatalf("seats %v, want %v", got, want)
	}
	var ids []string
	for _, p := range m.Pupils {
		ids = append(ids, p.ID)
	}
	if !slices.Equal(ids, []string{other, third}) {
		t.Fatalf("pupils %v: want the one who applied and the third, not the proposed nor the accepted", ids)
	}
	if c := m.Pupils[0].Choices; len(c) != 1 || m.Slots[c[0].Slot].OfferID != offerLater {
		t.Errorf("the pupil who applied to the offer soon: choices %+v", c)
	}

	// the proposal is declined: its seat and its pupil come back, without
	// the offer declined
	apply(&domain.ApplicationWithdrawn{ApplicationID: "p1", PupilID: pupilID})
	m, _ = ix.Market(context.Background(), pos, allocation.Scope{Departments: []string{"94"}, Grades: []string{"3e"}}, 5)
	if got := slotSeats(m)["00000001[2027-W02]"]; got != 2 || len(m.Pupils) != 3 {
		t.Fatalf("after the decline: seats %v, pupils %+v", slotSeats(m), m.Pupils)
	}
	if c := m.Pupils[0].Choices; m.Pupils[0].ID != pupilID || len(c) != 1 || m.Slots[c[0].Slot].OfferID != offerLater {
		t.Errorf("the pupil who declined: %+v", m.Pupils[0])
	}
}

// A round waits for the index to reach the position it is asked for.
func TestMarketWaitsForThePosition(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ix := newIndex(&now)
	evs := world1(t)
	ix.Apply(evs[:len(evs)-1]...)
	ix.CountAll()
	done := make(chan allocation.Market)
	go func() {
		m, err := ix.Market(context.Background(), evs[len(evs)-1].Position, allocation.Scope{}, 5)
		if err != nil {
			t.Error(err)
		}
		done <- m
	}()
	time.Sleep(20 * time.Millisecond)
	ix.Apply(evs[len(evs)-1])
	if m := <-done; len(m.Slots) != 4 {
		t.Fatalf("the market before the last offer was applied: %+v", m.Slots)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := ix.Market(ctx, 1000, allocation.Scope{}, 5); err == nil {
		t.Fatal("a market at a position the index never reaches")
	}
}

// Until the index has read the log, its queries answer 503 not_ready
// with Retry-After; then they answer.
func TestNotReadyUntilCaughtUp(t *testing.T) {
	now := worldNow
	ix := newIndex(&now)
	ix.Apply(world1(t)...)
	api := desk.NewAPI(ix)
	api.MaxWait = 50 * time.Millisecond
	mux := chi.NewRouter()
	route.Mount(mux, api.Routes())
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequestWithContext(context.Background(), http.MethodGet, path, nil))
		return rec
	}
	if rec := get("/v1/pupils/" + pupilID + "/suggestions"); rec.Code != 503 || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("before the catch-up: %d %s", rec.Code, rec.Body)
	}
	ix.CountAll()
	if rec := get("/v1/pupils/" + pupilID + "/suggestions"); rec.Code != 200 {
		t.Fatalf("after: %d %s", rec.Code, rec.Body)
	}
	if rec := get("/v1/pupils/" + pupilID + "/suggestions?min_position=8"); rec.Code != 503 {
		t.Fatalf("a position not reached: %d %s", rec.Code, rec.Body)
	}
}

// The pages of the unplaced pupils, fewest eligible offers first, are
// slices of the whole ranking: their pupils in order, the same total and
// the same counts by number of offers, in a country and in a
// département, and the whole ranking is the pupils read one by one.
// Pupils with ten offers or more apply to every one of them, some then
// changing cohort: their cohorts' counts alone would keep them out of
// the first pages, which must still list them with none left.
func TestUnplacedPages(t *testing.T) {
	now := worldNow
	w, ix := countedWorld(&now)
	pos := w.events[len(w.events)-1].Position
	tail := liveTail(rand.New(rand.NewPCG(7, 8)), w, pos, 1000)
	ix.Apply(tail...)
	pos = tail[len(tail)-1].Position
	before, _, _ := ix.UnplacedPupils(desk.Territory{}, 0, math.MaxInt)
	// pupils without a placement who applied to all their offers, ten or
	// more: their cohorts' counts alone would put them out of the first
	// pages
	var eager []string
	for i, u := range before {
		id := u.PupilID
		if i%7 != 0 || len(eager) == 20 {
			continue
		}
		offers, total, _ := ix.Suggestions(id, 0, 100)
		if total < 10 || total > 100 {
			continue
		}
		for j, o := range offers {
			pos++
			ix.Apply(desk.Event{Position: pos, Data: &domain.PupilApplied{PupilID: id, ApplicationID: fmt.Sprintf("eager-%d-%d", i, j),
				OfferID: o.ID}})
		}
		eager = append(eager, id)
	}
	if len(eager) < 10 {
		t.Fatalf("only %d pupils applied to all their offers: the world is too small to tell", len(eager))
	}
	// half of them then look farther: they join other cohorts with their
	// applications
	for _, id := range eager[len(eager)/2:] {
		pos++
		ix.Apply(desk.Event{Position: pos, Data: &domain.PupilWishesRecorded{PupilID: id, MaxDistanceKM: desk.DefaultMaxDistanceKM + 10}})
	}
	eager = eager[:len(eager)/2]
	each := desk.EligibleByPupil(ix)
	for _, scope := range []desk.Territory{{}, {Department: "75"}} {
		all, total, buckets := ix.UnplacedPupils(scope, 0, math.MaxInt)
		if len(all) != total || total < 100 {
			t.Fatalf("%+v: %d pupils listed, total %d", scope, len(all), total)
		}
		for _, u := range all {
			if n, ok := each[u.PupilID]; !ok || n != u.EligibleOffers {
				t.Fatalf("%+v: pupil %s listed with %d offers; read alone: %d (listed: %v)", scope, u.PupilID, u.EligibleOffers, n, ok)
			}
		}
		if scope == (desk.Territory{}) && total != len(each) {
			t.Fatalf("%d pupils listed, %d without a placement", total, len(each))
		}
		if !slices.IsSortedFunc(all, func(a, b desk.Unplaced) int {
			return cmp.Or(cmp.Compare(a.EligibleOffers, b.EligibleOffers), cmp.Compare(a.SchoolUAI, b.SchoolUAI), cmp.Compare(a.PupilID, b.PupilID))
		}) {
			t.Fatalf("%+v: not fewest offers first", scope)
		}
		var paged []desk.Unplaced
		for from := 0; from < total+7; from += 7 {
			items, n, b := ix.UnplacedPupils(scope, from, 7)
			if n != total || !maps.Equal(b, buckets) {
				t.Fatalf("%+v from %d: total %d, counts %v; whole: %d, %v", scope, from, n, b, total, buckets)
			}
			paged = append(paged, items...)
		}
		if !slices.Equal(paged, all) {
			t.Fatalf("%+v: the pages put together differ from the whole ranking", scope)
		}
	}
	all, _, _ := ix.UnplacedPupils(desk.Territory{}, 0, math.MaxInt)
	for _, id := range eager {
		if !slices.ContainsFunc(all, func(u desk.Unplaced) bool { return u.PupilID == id && u.EligibleOffers == 0 }) {
			t.Errorf("pupil %s applied to all their offers: not listed with none left", id)
		}
	}
}

// While the log is first read the pupils' ages are not told for the weeks
// offers bring (countAll does it once); a question asked meanwhile still
// applies the age rule to those weeks.
func TestAgeRuleBeforeCounting(t *testing.T) {
	now := time.Date(2027, 1, 1, 9, 0, 0, 0, time.UTC)
	const company = "00000009-0000-4000-8000-000000000002"
	ix := newIndex(&now)
	ix.Apply(world1(t)...)
	// the pupil of world1 is 14 since 1 January 2026; this one on 20 January 2027
	young := "00000003-0000-4000-8000-000000000001"
	for i, e := range []domain.Event{
		&domain.PupilRegistered{PupilID: young, SchoolUAI: "0941234A", Grade: "3e", BirthDate: "2013-01-20"},
		&domain.OfferPosted{OfferID: company, EmployerKind: "company", Sector: "s1", Grades: []domain.Grade{"3e"},
			Weeks: []string{"2027-W03"}, Seats: 1, CommuneCode: "94028", Department: "94", Lat: 48.79, Lon: 2.455},
	} {
		ix.Apply(desk.Event{Position: eventstore.Position(100 + i), Data: e})
	}
	offered := func(pupil string) bool {
		items, _, _ := ix.Suggestions(pupil, 0, 100)
		return slices.ContainsFunc(items, func(s desk.Suggestion) bool { return s.ID == company })
	}
	for _, counted := range []bool{false, true} {
		if counted {
			ix.CountAll()
		}
		if !offered(pupilID) || offered(young) {
			t.Fatalf("counted %v: a company's week 3 offered to the pupil of 14: %v, to the one 14 on its Wednesday: %v",
				counted, offered(pupilID), offered(young))
		}
	}
}

// A pupil's placements, confirmed again on other weeks or released, leave
// the desk telling of them what an index that only ever saw those still
// confirmed tells: on the unplaced list or not, and the weeks suggested.
func TestPlacementsConfirmedAndReleased(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	reserve := func(app, week string) domain.Event {
		return &domain.PupilWeeksReserved{PupilID: lyceeID, ApplicationID: app, Weeks: []string{week}}
	}
	// what the desk tells of the lycée pupil: listed without a
	// placement, and the weeks of each offer they could apply for
	view := func(ix *desk.Index) string {
		_, unplaced := counts(ix)[lyceeID]
		items, _, _ := ix.Suggestions(lyceeID, 0, 100)
		var weeks []string
		for _, s := range items {
			weeks = append(weeks, fmt.Sprint(s.ID[:8], s.WeeksForPupil))
		}
		return fmt.Sprint(unplaced, weeks)
	}
	// an index that saw world1 and then only evs
	only := func(evs ...domain.Event) string {
		ix := newIndex(&now)
		ix.Apply(world1(t)...)
		for i, e := range evs {
			ix.Apply(desk.Event{Position: eventstore.Position(100 + i), Data: e})
		}
		ix.CountAll()
		return view(ix)
	}
	ix := newIndex(&now)
	ix.Apply(world1(t)...)
	ix.CountAll()
	pos := eventstore.Position(100)
	for _, step := range []struct {
		name  string
		event domain.Event
		like  []domain.Event // the placements still confirmed
	}{
		{"W25 confirmed", reserve("a", "2027-W25"), []domain.Event{reserve("a", "2027-W25")}},
		{"confirmed again on W27", reserve("a", "2027-W27"), []domain.Event{reserve("a", "2027-W27")}},
		{"W26 confirmed too", reserve("b", "2027-W26"), []domain.Event{reserve("a", "2027-W27"), reserve("b", "2027-W26")}},
		{"W27 released", &domain.PupilWeeksReleased{PupilID: lyceeID, ApplicationID: "a"}, []domain.Event{reserve("b", "2027-W26")}},
		{"all released", &domain.PupilWeeksReleased{PupilID: lyceeID, ApplicationID: "b"}, nil},
	} {
		ix.Apply(desk.Event{Position: pos, Data: step.event})
		pos++
		if got, want := view(ix), only(step.like...); got != want {
			t.Errorf("%s: the desk tells %s; want %s", step.name, got, want)
		}
	}
	if placed, none := only(reserve("a", "2027-W25")), only(); placed == none {
		t.Errorf("a placement changes nothing the desk tells: %s", none)
	}
}
