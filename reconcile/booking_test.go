package reconcile_test

import (
	"context"
	"errors"
	"testing"

	"passerelle/commands"
	"passerelle/domain"
)

// collective posts a collective offer of two seats in 2026-W50 for
// groups of at least two.
func (w *world) collective() string {
	w.t.Helper()
	return w.ok(w.service(w.store).PostOffer(context.Background(), w.meta(), commands.PostOfferInput{EmployerID: employerOf(w), PostOfferInput: domain.PostOfferInput{
		Title: "Atelier", Description: "Programme collectif", Sector: "s3", Grades: []string{"3e"}, Weeks: []string{"2026-W50"},
		Seats: 2, CommuneCode: "94028", Address: "7 rue", Lat: 48.79, Lon: 2.45, Collective: true, MinGroupSize: 2,
	}})).ID
}

// TestInterruptedBookingSettles stops a group booking after each of its
// appends, then lets the reconciler alone finish it: once the offer has
// decided, every pupil of the booking ends with a confirmed placement and
// a live convention; before, nothing is held. No seat is ever left held
// for nobody.
func TestInterruptedBookingSettles(t *testing.T) {
	for n := 0; ; n++ {
		w := newWorld(t, 2)
		offer := w.collective()
		cs := &crashing{Store: w.store}
		cs.left.Store(int64(n))
		res, err := w.service(cs).Book(context.Background(), w.meta(), offer, commands.BookingInput{
			SchoolUAI: "0941234A", PupilIDs: w.pupils, Weeks: []string{"2026-W50"}})
		if err != nil && !errors.Is(err, errCrash) {
			t.Fatalf("after %d appends: %v", n, err)
		}
		decided := w.count("SeatsBooked") == 1
		unsettled := w.view().Unsettled()
		if decided && err != nil && len(unsettled) == 0 {
			t.Errorf("after %d appends: the booking was interrupted, the view shows nothing unsettled", n)
		}
		w.settle()
		v := w.view()
		if broken, left := v.Broken(), v.Unsettled(); len(broken)+len(left) > 0 {
			t.Fatalf("after %d appends, settled: broken %v, unsettled %v", n, broken, left)
		}
		apps := 0
		for _, id := range v.Applications() {
			st := v.State(id)
			if st.Status == "" {
				continue
			}
			apps++
			if !st.Booked || st.Status != domain.StatusConfirmed || st.Convention != domain.PlacementConventionLive || !st.SeatHeld || !st.WeeksHeld {
				t.Errorf("after %d appends: booked placement %+v", n, st)
			}
		}
		if want := map[bool]int{true: 2, false: 0}[decided]; apps != want {
			t.Errorf("after %d appends (decided %v): %d applications, want %d", n, decided, apps, want)
		}
		if w.count("GroupBooked") != map[bool]int{true: 1, false: 0}[decided] {
			t.Errorf("after %d appends: the booking's record %d times", n, w.count("GroupBooked"))
		}
		if err == nil {
			if len(res.ApplicationIDs) != 2 {
				t.Fatalf("answer %+v", res)
			}
			t.Logf("group booking: %d appends, interrupted after each of 0..%d", n, n-1)
			if n < 5 {
				t.Errorf("a booking of two pupils finished in %d appends", n)
			}
			return
		}
	}
}

// A booking interrupted after the offer's decision, retried by its client
// under the same command: the retry finishes the same booking, and each
// effect is written once.
func TestInterruptedBookingRetried(t *testing.T) {
	w := newWorld(t, 2)
	offer := w.collective()
	cs := &crashing{Store: w.store}
	cs.left.Store(1) // the offer decided, nothing more
	m := w.meta()
	in := commands.BookingInput{SchoolUAI: "0941234A", PupilIDs: w.pupils, Weeks: []string{"2026-W50"}}
	if _, err := w.service(cs).Book(context.Background(), m, offer, in); !errors.Is(err, errCrash) {
		t.Fatalf("book: %v", err)
	}
	res := w.ok(w.service(w.store).Book(context.Background(), m, offer, in))
	for typ, want := range map[string]int{"SeatsBooked": 1, "GroupBooked": 1, "ApplicationSubmitted": 2, "PupilWeeksReserved": 2, "ConventionDrafted": 2} {
		if got := w.count(typ); got != want {
			t.Errorf("%d %s, want %d", got, typ, want)
		}
	}
	for _, id := range res.ApplicationIDs {
		if st := w.view().State(id); st.Status != domain.StatusConfirmed {
			t.Errorf("application %s: %+v", id, st)
		}
	}
}

// A pupil's confirmation of another placement for the same week races a
// booking and wins: the booking holds for the other pupil, and the
// pupil's booked application withdraws itself, giving its seat back.
func TestBookingLosesAPupilToARacingConfirmation(t *testing.T) {
	w := newWorld(t, 2)
	ctx := context.Background()
	group := w.collective()
	rival := accepted(w) // pupil 0, on the individual offer, week 50
	in := commands.BookingInput{SchoolUAI: "0941234A", PupilIDs: w.pupils, Weeks: []string{"2026-W50"}}
	m := w.meta()
	cs := &crashing{Store: w.store}
	cs.left.Store(1) // the offer decided the booking, nothing more
	if _, err := w.service(cs).Book(ctx, m, group, in); !errors.Is(err, errCrash) {
		t.Fatalf("book: %v", err)
	}
	cs = &crashing{Store: w.store}
	cs.left.Store(1) // the pupil's weeks reserved for the rival, not confirmed yet
	if _, err := w.service(cs).Confirm(ctx, w.meta(), rival); !errors.Is(err, errCrash) {
		t.Fatalf("confirm: %v", err)
	}
	res, err := w.service(w.store).Book(ctx, m, group, in) // the booking's retry
	if err != nil {
		t.Fatalf("the booking's retry: %v", err)
	}
	w.settle()
	v := w.view()
	if broken, left := v.Broken(), v.Unsettled(); len(broken)+len(left) > 0 {
		t.Fatalf("broken %v, unsettled %v", broken, left)
	}
	lost, kept := v.State(res.ApplicationIDs[0]), v.State(res.ApplicationIDs[1])
	if st := v.State(rival); st.Status != domain.StatusConfirmed {
		t.Errorf("the rival: %+v", st)
	}
	if lost.Status != domain.StatusWithdrawn || lost.SeatHeld || lost.WeeksHeld {
		t.Errorf("the pupil's booked application: %+v", lost)
	}
	if kept.Status != domain.StatusConfirmed || !kept.SeatHeld {
		t.Errorf("the other pupil's: %+v", kept)
	}
}
