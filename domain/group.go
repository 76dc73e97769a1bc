package domain

import (
	"errors"
	"fmt"
	"time"
)

// Proposals and collective placements. A proposal is an application the
// desk (the back office, or a school for its own pupils) makes on a
// pupil's behalf: it then goes through the ordinary answers. A group
// booking takes seats of a collective offer for several pupils of one
// school at once: the offer decides it whole, in one event, so of two
// bookings racing for the last seats one wins whole and the other holds
// nothing; each pupil then gets their own application, placement and
// convention, made by the steps of the placement process.

// Proposer is who proposed a pupil for an offer.
type Proposer struct {
	ID   string `json:"id"`   // the actor's subject (a school's UAI) or what proposed (an allocation round)
	Role string `json:"role"` // the actor's role: backoffice or school
}

// BookingStream names a group booking's stream: its first event names
// the offer, the employer and the school, for the signatures to come.
func BookingStream(id string) string { return "booking-" + id }

// BookedSeat is one pupil's part of a group booking.
type BookedSeat struct {
	ApplicationID string `json:"application_id"`
	PupilID       string `json:"pupil_id"`
	Grade         Grade  `json:"grade"`
}

// SeatsBooked records, on the offer, a group booking decided whole: a
// seat in each week for each of its pupils, held for the application the
// booking makes for them.
type SeatsBooked struct {
	OfferID   string       `json:"offer_id"`
	BookingID string       `json:"booking_id"`
	SchoolUAI string       `json:"school_uai"`
	Weeks     []string     `json:"weeks"`
	Seats     []BookedSeat `json:"seats"`
}

// GroupBooked opens a booking's own stream, once the offer decided it.
type GroupBooked struct {
	BookingID  string       `json:"booking_id"`
	OfferID    string       `json:"offer_id"`
	EmployerID string       `json:"employer_id"`
	SchoolUAI  string       `json:"school_uai"`
	Weeks      []string     `json:"weeks"`
	Seats      []BookedSeat `json:"seats"`
}

// EventType implements Event.
func (SeatsBooked) EventType() string { return "SeatsBooked" }

// EventType implements Event.
func (GroupBooked) EventType() string { return "GroupBooked" }

// minGroupSize is a collective offer's minimum group, 1 when unsaid.
func minGroupSize(in PostOfferInput) int {
	if in.Collective && in.MinGroupSize == 0 {
		return 1
	}
	return in.MinGroupSize
}

// Booking returns the group booking id the offer decided, if it did.
func (o *Offer) Booking(id string) (SeatsBooked, bool) {
	b, ok := o.bookings[id]
	return b, ok
}

// BookInput is a group booking: pupils of one school, in the same weeks.
type BookInput struct {
	BookingID string
	School    *School
	SchoolUAI string
	Weeks     []string
	Pupils    []*Pupil // in the order of PupilIDs; nil for an unknown id
	PupilIDs  []string
	// ApplicationIDs are the applications the booking makes, one per pupil.
	ApplicationIDs []string
}

// MaxGroup bounds the pupils of one booking.
const MaxGroup = 100

// Book decides a group booking whole: every pupil eligible and a seat for
// each of them in every week, or nothing.
func (o *Offer) Book(in BookInput, now time.Time) ([]Event, error) {
	weeks, err := checkBooking(in)
	if err != nil {
		return nil, err
	}
	switch {
	case !o.exists:
		return nil, NotFoundf("offer")
	case o.bookings[in.BookingID].BookingID != "":
		return nil, nil // decided already: a retried booking
	case !o.Open():
		return nil, Refuse("offer_withdrawn", "the offer is withdrawn and takes no booking")
	case !o.Posted.Collective:
		return nil, Refuse("not_collective", "this offer hosts pupils one by one: each applies, or is proposed")
	case len(in.Pupils) < o.Posted.MinGroupSize:
		return nil, Refuse("group_too_small", "this offer hosts groups of at least %d pupils; the booking names %d", o.Posted.MinGroupSize, len(in.Pupils))
	}
	for _, w := range weeks {
		if free := o.Free(w); free < len(in.Pupils) {
			return nil, Refuse("no_seat_left", "week %s has %d seat(s) left; the booking asks for %d", w, max(free, 0), len(in.Pupils))
		}
	}
	ev := &SeatsBooked{OfferID: o.Posted.OfferID, BookingID: in.BookingID, SchoolUAI: in.SchoolUAI, Weeks: weeks}
	for i, p := range in.Pupils {
		if err := o.takesInGroup(p, in.School, weeks, now); err != nil {
			return nil, Naming("pupil "+in.PupilIDs[i], err)
		}
		ev.Seats = append(ev.Seats, BookedSeat{ApplicationID: in.ApplicationIDs[i], PupilID: in.PupilIDs[i], Grade: p.Registered.Grade})
	}
	return []Event{ev}, nil
}

// Naming prefixes the message of a refusal or a field error with what it
// is about (a pupil of a booking, a convention of a group signature).
func Naming(what string, err error) error {
	var rule *RuleError
	var verr *ValidationError
	switch {
	case errors.As(err, &rule):
		return &RuleError{Rule: rule.Rule, Message: what + ": " + rule.Message, Fields: rule.Fields}
	case errors.As(err, &verr):
		fields := map[string]string{}
		for f, m := range verr.Fields {
			fields[f] = what + ": " + m
		}
		return &ValidationError{Fields: fields}
	}
	return err
}

// checkBooking names every invalid field of a booking and returns its
// weeks sorted.
func checkBooking(in BookInput) ([]string, error) {
	p := Problems{}
	if in.School == nil || !in.School.Exists() {
		p.Add("school_uai", "no school is registered with this UAI")
	}
	weeks := checkWeeks(p, "weeks", in.Weeks)
	switch {
	case len(in.PupilIDs) == 0:
		p.Add("pupil_ids", "at least one pupil is required")
	case len(in.PupilIDs) > MaxGroup:
		p.Add("pupil_ids", fmt.Sprintf("at most %d pupils per booking", MaxGroup))
	}
	seen := map[string]bool{}
	for i, id := range in.PupilIDs {
		pu := in.Pupils[i]
		switch {
		case seen[id]:
			p.Add("pupil_ids", fmt.Sprintf("%q is listed twice", id))
		case pu == nil || !pu.Exists() || pu.Forgotten:
			p.Add("pupil_ids", fmt.Sprintf("%q: no pupil is registered with this id", id))
		case pu.Registered.SchoolUAI != in.SchoolUAI:
			p.Add("pupil_ids", fmt.Sprintf("%q is not a pupil of school %s", id, in.SchoolUAI))
		}
		seen[id] = true
	}
	return weeks, p.Err()
}

// takesInGroup checks one pupil of a booking as an application would be:
// grade and weeks, no confirmed placement in those weeks nor a seat
// already held on this offer, not started, the school eligible, old
// enough. The seats are counted for the whole group by Book.
func (o *Offer) takesInGroup(pupil *Pupil, school *School, weeks []string, now time.Time) error {
	if err := o.fits(pupil.Registered.Grade, weeks); err != nil {
		return err
	}
	for other, reserved := range pupil.Reserved {
		if Overlaps(reserved, weeks) {
			return Refuse("overlapping_placement", "the pupil already has a confirmed placement (application %s) in weeks %v", other, reserved)
		}
	}
	for app, p := range o.pupils {
		if p == pupil.Registered.PupilID && Overlaps(o.holders[app], weeks) {
			return Refuse("already_booked", "the pupil already holds a seat on this offer in these weeks (application %s)", app)
		}
	}
	start, _ := ParseWeek(weeks[0])
	if !now.Before(start) {
		return Refuse("internship_started", "week %s has already started", weeks[0])
	}
	if err := o.eligible(school); err != nil {
		return err
	}
	return o.ageAllowed(pupil, start)
}

// SubmitBooked makes the application of one pupil of a booking the offer
// decided: submitted and accepted at once, the seat being held already.
// The school books for the family; the pupil or a guardian may still
// withdraw it, and each signs the convention.
func (a *Application) SubmitBooked(offer *Offer, bookingID, applicationID string, now time.Time) ([]Event, error) {
	if a.exists {
		return nil, nil
	}
	b, ok := offer.Booking(bookingID)
	if !ok {
		return nil, NotFoundf("booking")
	}
	for _, s := range b.Seats {
		if s.ApplicationID != applicationID {
			continue
		}
		return []Event{&ApplicationSubmitted{
			ApplicationID: applicationID, OfferID: b.OfferID, EmployerID: offer.Posted.EmployerID, PupilID: s.PupilID,
			SchoolUAI: b.SchoolUAI, Grade: s.Grade, Weeks: b.Weeks, SubmittedAt: now.UTC(), BookingID: bookingID,
		}, &ApplicationAccepted{ApplicationID: applicationID, AcceptedAt: now.UTC()}}, nil
	}
	return nil, NotFoundf("application in the booking")
}

// Booking is a group booking's record: what its signatures act on.
type Booking struct {
	Booked GroupBooked
	exists bool
}

// Exists reports whether the booking was recorded.
func (b *Booking) Exists() bool { return b.exists }

// Apply folds an event of the booking's stream.
func (b *Booking) Apply(e Event) {
	if ev, ok := e.(*GroupBooked); ok {
		b.Booked, b.exists = *ev, true
	}
}

// Record opens the booking's stream from the offer's decision.
func (b *Booking) Record(offer *Offer, bookingID string) ([]Event, error) {
	if b.exists {
		return nil, nil
	}
	s, ok := offer.Booking(bookingID)
	if !ok {
		return nil, NotFoundf("booking")
	}
	return []Event{&GroupBooked{BookingID: bookingID, OfferID: s.OfferID, EmployerID: offer.Posted.EmployerID,
		SchoolUAI: s.SchoolUAI, Weeks: s.Weeks, Seats: s.Seats}}, nil
}

// ApplicationIDs are the applications of the booking, in its order.
func (s SeatsBooked) ApplicationIDs() []string {
	out := make([]string, len(s.Seats))
	for i, seat := range s.Seats {
		out[i] = seat.ApplicationID
	}
	return out
}
