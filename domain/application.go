package domain

import (
	"fmt"
	"strings"
	"time"
)

// Application statuses.
const (
	StatusSubmitted = "submitted"
	StatusRead      = "read" // the employer opened it
	StatusAccepted  = "accepted"
	StatusRejected  = "rejected"
	StatusWithdrawn = "withdrawn"
	StatusConfirmed = "confirmed"
	StatusCancelled = "cancelled"
	StatusExpired   = "expired"
	// StatusOfferWithdrawn: the offer was withdrawn before the employer answered.
	StatusOfferWithdrawn = "offer_withdrawn"
)

// Deadlines of the application process.
const (
	// AnswerWithin: an application the employer has not answered expires.
	AnswerWithin = 15 * 24 * time.Hour
	// ConfirmWithin: an accepted application the pupil has not confirmed expires.
	ConfirmWithin = 7 * 24 * time.Hour
)

// Application is a pupil's application to an offer for some weeks.
type Application struct {
	Submitted    ApplicationSubmitted
	Status       string
	AcceptedAt   time.Time
	ConventionID string
	exists       bool
	accepted     bool // it was accepted once, whatever it is now
}

// Exists reports whether the application was submitted.
func (a *Application) Exists() bool { return a.exists }

// Pending reports whether the application still awaits a decision: it may
// yet become a placement.
func (a *Application) Pending() bool {
	return a.Status == StatusSubmitted || a.Status == StatusRead || a.Status == StatusAccepted
}

// HoldsSeat reports whether the application's seat is held on the offer.
func (a *Application) HoldsSeat() bool {
	return a.Status == StatusAccepted || a.Status == StatusConfirmed
}

// MayHoldWeeks reports whether the pupil's weeks may be reserved for the
// application. They are reserved only for an accepted application (a
// confirmation, or a group booking's), and a status never goes back to
// pending: an application never accepted holds no weeks, nor a
// convention, whatever it became.
func (a *Application) MayHoldWeeks() bool { return a.accepted }

// Apply folds an event of the application's stream: its status machine.
func (a *Application) Apply(e Event) {
	switch ev := e.(type) {
	case *ApplicationSubmitted:
		a.Submitted, a.Status, a.exists = *ev, StatusSubmitted, true
	case *ApplicationRead:
		a.Status = StatusRead
	case *ApplicationAccepted:
		a.Status, a.AcceptedAt, a.accepted = StatusAccepted, ev.AcceptedAt, true
	case *ApplicationRejected:
		a.Status = StatusRejected
	case *ApplicationWithdrawn:
		a.Status = StatusWithdrawn
	case *ApplicationConfirmed:
		a.Status, a.ConventionID = StatusConfirmed, ev.ConventionID
	case *ApplicationCancelled:
		a.Status = StatusCancelled
	case *ApplicationExpired:
		a.Status = StatusExpired
	case *ApplicationOfferWithdrawn:
		a.Status = StatusOfferWithdrawn
	}
}

// SubmitInput is the apply command.
type SubmitInput struct {
	Weeks      []string
	Motivation string
	// ProposedBy makes the application a proposal, made by the desk on the
	// pupil's behalf; its motivation is then optional.
	ProposedBy *Proposer
}

// Submit decides a pupil's application to an offer. An application's id is
// derived from the offer and the pupil, so a pupil applies once per offer.
// school is the pupil's school, for reserved offers.
func (a *Application) Submit(id string, offer *Offer, pupil *Pupil, school *School, in SubmitInput, now time.Time) ([]Event, error) {
	p := Problems{}
	if pupil == nil || !pupil.Exists() || pupil.Forgotten {
		p.Add("pupil_id", "no pupil is registered with this id")
	}
	weeks := checkWeeks(p, "weeks", in.Weeks)
	if in.ProposedBy == nil || in.Motivation != "" {
		required(p, "motivation", in.Motivation, 5000)
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	if again, err := a.checkAgain(offer, weeks, in.ProposedBy); again || err != nil {
		return nil, err
	}
	for other, reserved := range pupil.Reserved {
		if Overlaps(reserved, weeks) {
			return nil, Refuse("overlapping_placement", "the pupil already has a confirmed placement (application %s) in weeks %v", other, reserved)
		}
	}
	g := pupil.Registered.Grade
	if err := offer.fits(g, weeks); err != nil {
		return nil, err
	}
	if err := offer.takes(pupil, school, weeks, now); err != nil {
		return nil, err
	}
	return []Event{&ApplicationSubmitted{
		ApplicationID: id, OfferID: offer.Posted.OfferID, EmployerID: offer.Posted.EmployerID,
		PupilID: pupil.Registered.PupilID, SchoolUAI: pupil.Registered.SchoolUAI, Grade: g,
		Weeks: weeks, Motivation: strings.TrimSpace(in.Motivation), SubmittedAt: now.UTC(), ProposedBy: in.ProposedBy,
	}}, nil
}

// checkAgain checks that the offer takes a new application: again is true
// when this one repeats the application already made.
func (a *Application) checkAgain(offer *Offer, weeks []string, by *Proposer) (again bool, err error) {
	switch {
	case offer == nil || !offer.Exists():
		return false, NotFoundf("offer")
	case a.exists && a.sameAgain(weeks, by):
		return true, nil // the same application again
	case a.exists:
		return false, Refuse("one_application_per_offer", "the pupil has already applied to this offer")
	case !offer.Open():
		return false, Refuse("offer_withdrawn", "the offer is withdrawn and takes no application")
	case offer.Posted.Collective:
		return false, Refuse("collective_offer", "this offer hosts groups: the pupil's school books seats for its pupils (group booking)")
	}
	return false, nil
}

// sameAgain reports whether a submission repeats this application: a
// pupil's while nobody answered it, a proposal by the same proposer
// whatever became of it (a proposal is retried under its command).
func (a *Application) sameAgain(weeks []string, by *Proposer) bool {
	if !equalStrings(a.Submitted.Weeks, weeks) {
		return false
	}
	if by != nil {
		return a.Submitted.ProposedBy != nil && *a.Submitted.ProposedBy == *by
	}
	return a.Status == StatusSubmitted && a.Submitted.ProposedBy == nil
}

// fits checks an application's grade and weeks against the offer and the
// length of an internship at that grade.
func (o *Offer) fits(g Grade, weeks []string) error {
	p := Problems{}
	if !o.hasGrade(g) {
		p.Add("pupil_id", fmt.Sprintf("the offer is not open to pupils in %s", g))
	}
	for _, w := range weeks {
		if !o.hasWeek(w) {
			p.Add("weeks", fmt.Sprintf("the offer does not run in week %s", w))
		}
	}
	if !PeriodFits(g, weeks) {
		if g.Lycee() {
			p.Add("weeks", "a 2de internship covers one or two consecutive weeks")
		} else {
			p.Add("weeks", "a 4e or 3e internship lasts one week")
		}
	}
	return p.Err()
}

// PeriodFits reports whether sorted weeks are an internship's length at
// grade g: one week in 4e and 3e, one or two consecutive weeks in 2de.
func PeriodFits(g Grade, weeks []string) bool {
	if !g.Lycee() {
		return len(weeks) == 1
	}
	return len(weeks) >= 1 && len(weeks) <= 2 && consecutiveWeeks(weeks)
}

// Started reports whether an internship in week has started at now: it
// can no longer be applied for.
func Started(week string, now time.Time) bool {
	start, err := ParseWeek(week)
	return err != nil || !now.Before(start)
}

// takes checks that the offer can still take the pupil for weeks: not
// started, a free seat every week, the pupil's school eligible and the
// pupil old enough on the first day.
func (o *Offer) takes(pupil *Pupil, school *School, weeks []string, now time.Time) error {
	if Started(weeks[0], now) {
		return Refuse("internship_started", "week %s has already started", weeks[0])
	}
	start, _ := ParseWeek(weeks[0])
	for _, w := range weeks {
		if o.Free(w) < 1 {
			return Refuse("no_seat_left", "every seat of week %s is taken", w)
		}
	}
	if err := o.eligible(school); err != nil {
		return err
	}
	return o.ageAllowed(pupil, start)
}

// MarkRead records that the employer opened the application.
func (a *Application) MarkRead() ([]Event, error) {
	switch a.Status {
	case StatusSubmitted:
		return []Event{&ApplicationRead{ApplicationID: a.Submitted.ApplicationID}}, nil
	case "":
		return nil, a.wrongState("mark as read")
	}
	return nil, nil // already read or decided: nothing to record
}

// Accept records the employer's acceptance; the seat is held on the offer
// first (Offer.HoldSeat).
func (a *Application) Accept(now time.Time) ([]Event, error) {
	switch a.Status {
	case StatusSubmitted, StatusRead:
		return []Event{&ApplicationAccepted{ApplicationID: a.Submitted.ApplicationID, AcceptedAt: now.UTC()}}, nil
	case StatusAccepted:
		return nil, nil
	}
	return nil, a.wrongState("accept")
}

// CanAccept reports whether an acceptance may start (the seat is held before
// the application changes).
func (a *Application) CanAccept() error {
	switch a.Status {
	case StatusSubmitted, StatusRead, StatusAccepted:
		return nil
	}
	return a.wrongState("accept")
}

// Reject records the employer's refusal.
func (a *Application) Reject(reason string) ([]Event, error) {
	p := Problems{}
	required(p, "reason", reason, 1000)
	if err := p.Err(); err != nil {
		return nil, err
	}
	switch a.Status {
	case StatusSubmitted, StatusRead:
		return []Event{&ApplicationRejected{ApplicationID: a.Submitted.ApplicationID, Reason: strings.TrimSpace(reason)}}, nil
	case StatusRejected:
		return nil, nil
	}
	return nil, a.wrongState("reject")
}

// Withdraw records the pupil's withdrawal, possible until the internship
// starts; a held seat is then to be released.
func (a *Application) Withdraw(reason string, now time.Time) ([]Event, error) {
	switch a.Status {
	case StatusSubmitted, StatusRead, StatusAccepted, StatusConfirmed:
		if len(reason) > 1000 {
			return nil, Problems{"reason": "must be at most 1000 bytes"}.Err()
		}
		reason = strings.TrimSpace(reason)
		if a.started(now) {
			return nil, Refuse("internship_started", "the internship has started: it can no longer be withdrawn")
		}
		w := &ApplicationWithdrawn{ApplicationID: a.Submitted.ApplicationID, SeatReleased: a.HoldsSeat(), Reason: reason}
		if reason != "" {
			w.PupilID = a.Submitted.PupilID // whose key seals the pupil's words
		}
		return []Event{w}, nil
	case StatusWithdrawn:
		return nil, nil
	}
	return nil, a.wrongState("withdraw")
}

// Cancel records the employer's cancellation of an accepted or confirmed
// placement, with a reason; the seat is then to be released.
func (a *Application) Cancel(reason string) ([]Event, error) {
	p := Problems{}
	required(p, "reason", reason, 1000)
	if err := p.Err(); err != nil {
		return nil, err
	}
	switch a.Status {
	case StatusAccepted, StatusConfirmed:
		return []Event{&ApplicationCancelled{ApplicationID: a.Submitted.ApplicationID, Reason: strings.TrimSpace(reason)}}, nil
	case StatusCancelled:
		return nil, nil
	}
	return nil, a.wrongState("cancel")
}

// Expire closes an application whose deadline has passed at now: no
// employer answer within AnswerWithin of submission, or no confirmation by
// the pupil within ConfirmWithin of acceptance. Before the deadline, or in
// another state, it decides nothing.
func (a *Application) Expire(now time.Time) []Event {
	if d, ok := a.Deadline(); ok && !now.Before(d) {
		return []Event{&ApplicationExpired{ApplicationID: a.Submitted.ApplicationID, SeatReleased: a.HoldsSeat(), Rule: ExpiryRule(a.Status)}}
	}
	return nil
}

// Superseded withdraws a pending application when the pupil has confirmed
// another placement for the same weeks.
func (a *Application) Superseded() []Event {
	if !a.Pending() {
		return nil
	}
	return []Event{&ApplicationWithdrawn{ApplicationID: a.Submitted.ApplicationID, PupilID: a.Submitted.PupilID,
		SeatReleased: a.HoldsSeat(), Reason: "the pupil confirmed another placement for these weeks"}}
}

// CloseForOffer ends an application the employer has not answered when its
// offer is withdrawn; an accepted or confirmed one is never ended silently.
func (a *Application) CloseForOffer(offer *Offer) []Event {
	if (a.Status == StatusSubmitted || a.Status == StatusRead) && offer.Exists() && offer.Withdrawn {
		return []Event{&ApplicationOfferWithdrawn{ApplicationID: a.Submitted.ApplicationID}}
	}
	return nil
}

// ExpiryRule is the rule under which an application in status expires:
// the employer did not answer in time, or the pupil did not confirm an
// acceptance in time (the seat is then released).
func ExpiryRule(status string) string {
	if status == StatusAccepted {
		return "not_confirmed_in_time"
	}
	return "no_employer_answer"
}

// Deadline is when the application expires if nothing happens.
func (a *Application) Deadline() (time.Time, bool) {
	switch a.Status {
	case StatusSubmitted, StatusRead:
		return a.Submitted.SubmittedAt.Add(AnswerWithin), true
	case StatusAccepted:
		return a.AcceptedAt.Add(ConfirmWithin), true
	}
	return time.Time{}, false
}

// Confirm records the pupil's choice of an accepted application and names
// the convention to draft. The pupil's weeks are reserved first
// (Pupil.ReserveWeeks).
func (a *Application) Confirm(conventionID string) ([]Event, error) {
	switch a.Status {
	case StatusAccepted:
		return []Event{&ApplicationConfirmed{ApplicationID: a.Submitted.ApplicationID, ConventionID: conventionID}}, nil
	case StatusConfirmed:
		return nil, nil
	}
	return nil, a.wrongState("confirm")
}

func (a *Application) started(now time.Time) bool {
	if len(a.Submitted.Weeks) == 0 {
		return false
	}
	start, err := ParseWeek(a.Submitted.Weeks[0])
	return err == nil && !now.Before(start)
}

func (a *Application) wrongState(action string) error {
	if !a.exists {
		return NotFoundf("application")
	}
	return Refuse("wrong_status", "cannot %s an application that is %s", action, a.Status)
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Overlaps reports whether two sorted week lists share a week.
func Overlaps(a, b []string) bool {
	for _, x := range a {
		if contains(b, x) {
			return true
		}
	}
	return false
}
