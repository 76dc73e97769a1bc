package domain_test

import (
	"testing"

	"passerelle/domain"
)

// collectiveOffer is a collective 3e offer of three seats in weeks 25 and
// 26, for groups of at least two.
func collectiveOffer(t *testing.T) *domain.Offer {
	t.Helper()
	in := collegeOfferInput()
	in.Seats, in.Collective, in.MinGroupSize = 3, true, 2
	return newOffer(t, "offer-group", in)
}

// booking is a booking of pupils of the fixture collège in week 25.
func booking(id string, school *domain.School, pupils ...*domain.Pupil) domain.BookInput {
	in := domain.BookInput{BookingID: id, School: school, SchoolUAI: school.Registered.UAI, Weeks: []string{week25}}
	for _, p := range pupils {
		in.Pupils = append(in.Pupils, p)
		in.PupilIDs = append(in.PupilIDs, p.Registered.PupilID)
		in.ApplicationIDs = append(in.ApplicationIDs, id+"/"+p.Registered.PupilID)
	}
	return in
}

func TestBookAllOrNothing(t *testing.T) {
	o, school := collectiveOffer(t), newSchool(t, collegeInput())
	var pupils []*domain.Pupil
	for _, id := range []string{"p1", "p2", "p3", "p4"} {
		pupils = append(pupils, newPupil(t, id, school, "3e"))
	}
	evs, err := o.Book(booking("b0", school, pupils...), now)
	wantRule(t, evs, err, "no_seat_left")
	evs, err = o.Book(booking("b0", school, pupils[0]), now)
	wantRule(t, evs, err, "group_too_small")
	other := newPupil(t, "p-lycee", newSchool(t, lyceeInput()), "2de")
	evs, err = o.Book(booking("b0", school, pupils[0], other), now)
	wantInvalid(t, evs, err, "pupil_ids")
	in := booking("b0", school, pupils[0], pupils[1])
	in.Weeks = []string{week25, week26}
	evs, err = o.Book(in, now) // two weeks for a 3e
	wantInvalid(t, evs, err, "weeks")

	booked := must(t)(o.Book(booking("b1", school, pupils[0], pupils[1]), now))
	sb := only[*domain.SeatsBooked](t, booked)
	if len(sb.Seats) != 2 || sb.Seats[1].ApplicationID != "b1/p2" || sb.Seats[1].Grade != "3e" {
		t.Fatalf("decided %+v", sb)
	}
	apply(o, booked...)
	if o.Free(week25) != 1 || o.Free(week26) != 3 || !o.Holds("b1/p1") {
		t.Fatalf("after the booking: %d and %d free", o.Free(week25), o.Free(week26))
	}
	wantNothing(t)(o.Book(booking("b1", school, pupils[0], pupils[1]), now)) // the same booking again
	evs, err = o.Book(booking("b2", school, pupils[2], pupils[3]), now)
	wantRule(t, evs, err, "no_seat_left")
	in = booking("b3", school, pupils[0], pupils[2])
	in.Weeks = []string{week26}
	evs, err = o.Book(in, now)
	if err != nil || len(evs) != 1 {
		t.Fatalf("week 26 for a pupil booked in week 25: %v %v", evs, err)
	}
	evs, err = o.Book(booking("b4", school, pupils[0], pupils[3]), now)
	wantRule(t, evs, err, "no_seat_left")
	in = booking("b5", school, pupils[0], pupils[3])
	apply(o, &domain.SeatReleased{OfferID: o.Posted.OfferID, ApplicationID: "b1/p2", Weeks: []string{week25}})
	evs, err = o.Book(in, now) // p1 holds a seat in week 25 already
	wantRule(t, evs, err, "already_booked")
}

func TestBookRefusesIneligiblePupils(t *testing.T) {
	o, school := collectiveOffer(t), newSchool(t, collegeInput())
	p1, p2 := newPupil(t, "p1", school, "3e"), newPupil(t, "p2", school, "3e")
	apply(p2, &domain.PupilWeeksReserved{PupilID: "p2", ApplicationID: "elsewhere", Weeks: []string{week25}})
	evs, err := o.Book(booking("b1", school, p1, p2), now)
	wantRule(t, evs, err, "overlapping_placement")
	individual := newOffer(t, "offer-1", collegeOfferInput())
	evs, err = individual.Book(booking("b1", school, p1, newPupil(t, "p3", school, "3e")), now)
	wantRule(t, evs, err, "not_collective")
	var a domain.Application
	evs, err = a.Submit("a1", o, p1, school, domain.SubmitInput{Weeks: []string{week25}, Motivation: "seul"}, now)
	wantRule(t, evs, err, "collective_offer")
}

// A booked placement is made and confirmed by the steps of Next.
func TestNextBooked(t *testing.T) {
	st := domain.PlacementState{ApplicationID: "a", Booked: true, SeatHeld: true}
	for _, want := range []domain.StepKind{domain.StepSubmitBooked, domain.StepTrack, domain.StepReserveWeeks, domain.StepConfirm, domain.StepDraft} {
		step, ok := st.Next()
		if !ok || step.Kind != want {
			t.Fatalf("from %+v: %v %v, want %s", st, step, ok, want)
		}
		switch want {
		case domain.StepSubmitBooked:
			st.Status = domain.StatusAccepted
		case domain.StepTrack:
			st.Tracked = true
		case domain.StepReserveWeeks:
			st.WeeksHeld = true
		case domain.StepConfirm:
			st.Status = domain.StatusConfirmed
		case domain.StepDraft:
			st.Convention = domain.PlacementConventionLive
		}
	}
	if step, ok := st.Next(); ok || len(st.Broken()) > 0 {
		t.Fatalf("settled booked placement: next %v, broken %v", step, st.Broken())
	}
	// a rival confirmed before the weeks were reserved: the booked application withdraws itself
	rival := domain.PlacementState{ApplicationID: "a", Booked: true, SeatHeld: true, Status: domain.StatusAccepted, Tracked: true, ConfirmedRival: true}
	if step, _ := rival.Next(); step.Kind != domain.StepWithdrawOther || step.Target != "a" {
		t.Fatalf("booked application with a confirmed rival: %v", step)
	}
	// an ordinary accepted application waits for the pupil
	plain := domain.PlacementState{ApplicationID: "a", SeatHeld: true, Status: domain.StatusAccepted, Tracked: true}
	if step, ok := plain.Next(); ok {
		t.Fatalf("accepted application: %v", step)
	}
}
