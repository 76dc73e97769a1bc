package domain

import (
	"fmt"
	"strings"
	"time"
)

// Application statuses.
const (
	StatusSubmitted = "submitted"
	StatusAccepted  = "accepted"
	StatusRejected  = "rejected"
	StatusWithdrawn = "withdrawn"
	StatusConfirmed = "confirmed"
)

// Application is a pupil's application to an offer for some weeks.
type Application struct {
	Submitted    ApplicationSubmitted
	Status       string
	ConventionID string
	exists       bool
}

func (a *Application) Exists() bool { return a.exists }

func (a *Application) Apply(e Event) {
	switch ev := e.(type) {
	case *ApplicationSubmitted:
		a.Submitted, a.Status, a.exists = *ev, StatusSubmitted, true
	case *ApplicationAccepted:
		a.Status = StatusAccepted
	case *ApplicationRejected:
		a.Status = StatusRejected
	case *ApplicationWithdrawn:
		a.Status = StatusWithdrawn
	case *ApplicationConfirmed:
		a.Status, a.ConventionID = StatusConfirmed, ev.ConventionID
	}
}

// SubmitInput is the apply command.
type SubmitInput struct {
	Weeks      []string
	Motivation string
}

// Submit decides a pupil's application to an offer. An application's id is
// derived from the offer and the pupil, so a pupil applies once per offer.
func (a *Application) Submit(id string, offer *Offer, pupil *Pupil, in SubmitInput, now time.Time) ([]Event, error) {
	p := Problems{}
	if pupil == nil || !pupil.Exists() {
		p.Add("pupil_id", "no pupil is registered with this id")
	}
	weeks := checkWeeks(p, "weeks", in.Weeks)
	required(p, "motivation", in.Motivation, 5000)
	if err := p.Err(); err != nil {
		return nil, err
	}
	if offer == nil || !offer.Exists() {
		return nil, NotFoundf("offer")
	}
	if a.exists {
		if a.Status == StatusSubmitted && equalStrings(a.Submitted.Weeks, weeks) {
			return nil, nil // the same application again
		}
		return nil, Conflictf("the pupil has already applied to this offer")
	}
	if !offer.Open() {
		return nil, Conflictf("the offer is withdrawn")
	}
	g := pupil.Registered.Grade
	if !offer.hasGrade(g) {
		p.Add("pupil_id", fmt.Sprintf("the offer is not open to pupils in %s", g))
	}
	for _, w := range weeks {
		if !offer.hasWeek(w) {
			p.Add("weeks", fmt.Sprintf("the offer does not run in week %s", w))
		}
	}
	switch {
	case !g.Lycee() && len(weeks) != 1:
		p.Add("weeks", "a 4e or 3e internship lasts one week")
	case g.Lycee() && (len(weeks) > 2 || !consecutiveWeeks(weeks)):
		p.Add("weeks", "a 2de internship covers one or two consecutive weeks")
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	return []Event{&ApplicationSubmitted{
		ApplicationID: id, OfferID: offer.Posted.OfferID, EmployerID: offer.Posted.EmployerID,
		PupilID: pupil.Registered.PupilID, SchoolUAI: pupil.Registered.SchoolUAI, Grade: g,
		Weeks: weeks, Motivation: strings.TrimSpace(in.Motivation), SubmittedAt: now.UTC(),
	}}, nil
}

// Accept records the employer's acceptance; the seat is held on the offer
// first (Offer.HoldSeat).
func (a *Application) Accept() ([]Event, error) {
	switch a.Status {
	case StatusSubmitted:
		return []Event{&ApplicationAccepted{ApplicationID: a.Submitted.ApplicationID}}, nil
	case StatusAccepted:
		return nil, nil
	}
	return nil, a.wrongState("accept")
}

// CanAccept reports whether an acceptance may start (the seat is held before
// the application changes).
func (a *Application) CanAccept() error {
	if a.Status == StatusSubmitted || a.Status == StatusAccepted {
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
	case StatusSubmitted:
		return []Event{&ApplicationRejected{ApplicationID: a.Submitted.ApplicationID, Reason: strings.TrimSpace(reason)}}, nil
	case StatusRejected:
		return nil, nil
	}
	return nil, a.wrongState("reject")
}

// Withdraw records the pupil's withdrawal; an accepted or confirmed
// application's seat is then to be released.
func (a *Application) Withdraw() ([]Event, error) {
	switch a.Status {
	case StatusSubmitted, StatusAccepted, StatusConfirmed:
		return []Event{&ApplicationWithdrawn{
			ApplicationID: a.Submitted.ApplicationID,
			SeatReleased:  a.Status != StatusSubmitted,
		}}, nil
	case StatusWithdrawn:
		return nil, nil
	}
	return nil, a.wrongState("withdraw")
}

// Confirm records the pupil's choice of an accepted application and names
// the convention to draft.
func (a *Application) Confirm(conventionID string) ([]Event, error) {
	switch a.Status {
	case StatusAccepted:
		return []Event{&ApplicationConfirmed{ApplicationID: a.Submitted.ApplicationID, ConventionID: conventionID}}, nil
	case StatusConfirmed:
		return nil, nil
	}
	return nil, a.wrongState("confirm")
}

func (a *Application) wrongState(action string) error {
	if !a.exists {
		return NotFoundf("application")
	}
	return Conflictf("cannot %s an application that is %s", action, a.Status)
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
