package domain

import (
	"fmt"
	"time"
)

// The placement process. A placement spans four aggregates, each deciding
// what it owns against its own revision: the offer its seats, the pupil
// their weeks, the application its status, the convention its signatures.
// A command makes one decision on one of them (the offer holds a seat, the
// pupil reserves weeks, the application ends, the convention is
// cancelled); the others then follow, one step at a time, until the
// placement is settled. A settled placement holds exactly what its
// application's status says:
//
//   - a seat on the offer ⇔ accepted or confirmed;
//   - the pupil's weeks ⇔ confirmed;
//   - a live convention ⇔ confirmed;
//   - an ended application (rejected, withdrawn, cancelled, expired,
//     offer_withdrawn) holds nothing.
//
// Next is the whole protocol: from what each aggregate holds, the one step
// that brings the placement closer to settled, and why. Commands run it
// after their decision; the reconciler runs the same rules on placements
// a crash left half-made. Steps go forwards where a decision was taken (a
// seat held by an employer's acceptance finishes the acceptance) and
// compensate where it cannot hold (an ended application gives back what it
// held). Every step is a decision of its aggregate that writes nothing
// when already done, so running a step twice is harmless.

// StepKind names a step of the placement process.
type StepKind string

// The steps, with the aggregate that decides each.
const (
	StepTrack            StepKind = "track-application"    // pupil: list the application
	StepAccept           StepKind = "accept"               // application: accepted (its seat is held)
	StepConfirm          StepKind = "confirm"              // application: confirmed (its weeks are reserved)
	StepDraft            StepKind = "draft-convention"     // convention: drafted for a confirmed application
	StepWithdrawOther    StepKind = "withdraw-overlapping" // another application of the pupil: withdrawn
	StepEndForConvention StepKind = "cancel-application"   // application: cancelled (its convention was cancelled)
	StepEndForOffer      StepKind = "close-application"    // application: ended (its offer was withdrawn)
	StepReleaseSeat      StepKind = "release-seat"         // offer: the seat is free again
	StepReleaseWeeks     StepKind = "release-weeks"        // pupil: the weeks are free again
	StepCancelConvention StepKind = "cancel-convention"    // convention: cancelled
	StepSubmitBooked     StepKind = "submit-booked"        // application: made from a group booking, accepted
	StepReserveWeeks     StepKind = "reserve-weeks"        // pupil: the weeks of a booked application are reserved
)

// Step is the next step of a placement and why it is due; Target is the
// application it acts on (another of the pupil's for StepWithdrawOther).
type Step struct {
	Kind   StepKind
	Target string
	Reason string
}

// Conventions as a placement sees them.
const (
	PlacementNoConvention        = ""
	PlacementConventionLive      = "live"
	PlacementConventionCancelled = "cancelled"
)

// PlacementState is what the aggregates of one application hold for it.
type PlacementState struct {
	ApplicationID  string
	Status         string // the application's status; "" when it does not exist
	Weeks          []string
	Tracked        bool   // the pupil's stream lists the application
	SeatHeld       bool   // the offer holds a seat for it
	WeeksHeld      bool   // the pupil's weeks are reserved for it
	Convention     string // PlacementNoConvention, PlacementConventionLive or PlacementConventionCancelled
	OfferWithdrawn bool
	PupilForgotten bool
	// OverlappingPending are the pupil's other applications still pending
	// that share a week with this one (filled for a confirmed application).
	OverlappingPending []string
	// ConfirmedRival: another application of the pupil sharing a week is
	// confirmed (filled for a pending application). A rival confirmed
	// before this one was listed on the pupil's record could not withdraw
	// it: it withdraws itself.
	ConfirmedRival bool
	// Booked: a group booking holds the seat; the booking makes the
	// application and confirms it for the school.
	Booked bool
}

// Ended reports whether an application status is final without a placement.
func Ended(status string) bool {
	switch status {
	case StatusRejected, StatusWithdrawn, StatusCancelled, StatusExpired, StatusOfferWithdrawn:
		return true
	}
	return false
}

// Next is the step that brings the placement closer to settled, or false
// when it is settled.
func (s PlacementState) Next() (Step, bool) {
	pending := s.Status == StatusSubmitted || s.Status == StatusRead
	switch {
	case s.Status == "":
		return s.nextUnsubmitted()
	case !s.Tracked && !s.PupilForgotten && (pending || s.Status == StatusAccepted):
		return s.step(StepTrack, "application listed on the pupil's record: submission interrupted")
	case Ended(s.Status):
		return s.nextEnded()
	case s.Status == StatusConfirmed:
		return s.nextConfirmed()
	case (pending || s.Status == StatusAccepted) && s.ConfirmedRival:
		return Step{Kind: StepWithdrawOther, Target: s.ApplicationID,
			Reason: "application withdrawn: the pupil confirmed another placement for these weeks"}, true
	case s.Status == StatusAccepted:
		return s.nextAccepted()
	case pending:
		return s.nextPending()
	}
	return Step{}, false
}

// nextUnsubmitted: nothing was submitted, so there is nothing to settle,
// unless a group booking's decision holds a seat for the application it
// makes.
func (s PlacementState) nextUnsubmitted() (Step, bool) {
	if s.Booked && s.SeatHeld {
		return s.step(StepSubmitBooked, "application made: the group booking was interrupted after the offer's decision")
	}
	return Step{}, false
}

// nextAccepted: an accepted application holds its seat and waits for the
// pupil's confirmation, unless a confirmation was interrupted after the
// pupil's weeks were reserved, or a group booking made it: the booking
// confirms it for the school (the pupil's weeks are reserved).
func (s PlacementState) nextAccepted() (Step, bool) {
	switch {
	case s.WeeksHeld:
		return s.step(StepConfirm, "confirmation finished: interrupted after the pupil's weeks were reserved")
	case s.Booked && !s.PupilForgotten:
		return s.step(StepReserveWeeks, "weeks reserved: the school's group booking confirms its pupils")
	}
	return Step{}, false
}

// nextPending: an application the employer has not answered holds
// nothing, unless an acceptance was interrupted after holding its seat.
func (s PlacementState) nextPending() (Step, bool) {
	switch {
	case s.SeatHeld:
		return s.step(StepAccept, "acceptance finished: interrupted after the seat was held")
	case s.WeeksHeld:
		return s.step(StepReleaseWeeks, "weeks released: the application is not accepted")
	case s.OfferWithdrawn:
		return s.step(StepEndForOffer, "application closed: the offer was withdrawn")
	}
	return Step{}, false
}

// nextEnded: an ended application gives back all it holds.
func (s PlacementState) nextEnded() (Step, bool) {
	switch {
	case s.SeatHeld:
		return s.step(StepReleaseSeat, "seat released: the application is %s", s.Status)
	case s.WeeksHeld:
		return s.step(StepReleaseWeeks, "weeks released: the application is %s", s.Status)
	case s.Convention == PlacementConventionLive:
		return s.step(StepCancelConvention, "convention cancelled: the application is %s", s.Status)
	}
	return Step{}, false
}

// nextConfirmed: a confirmed application has a live convention and no
// pending rival for its weeks.
func (s PlacementState) nextConfirmed() (Step, bool) {
	switch {
	case s.Convention == PlacementConventionCancelled:
		return s.step(StepEndForConvention, "application cancelled: its convention was cancelled")
	case s.Convention == PlacementNoConvention:
		return s.step(StepDraft, "convention drafted: confirmation interrupted")
	case len(s.OverlappingPending) > 0:
		return Step{Kind: StepWithdrawOther, Target: s.OverlappingPending[0],
			Reason: "application withdrawn: the pupil confirmed another placement for these weeks"}, true
	}
	return Step{}, false
}

func (s PlacementState) step(k StepKind, reason string, args ...any) (Step, bool) {
	return Step{Kind: k, Target: s.ApplicationID, Reason: fmt.Sprintf(reason, args...)}, true
}

// Broken lists the invariants of a settled placement that s breaks, in
// words; a placement whose protocol is under way breaks some for a moment.
func (s PlacementState) Broken() []string {
	if s.Status == "" {
		return nil
	}
	var out []string
	holds := s.Status == StatusAccepted || s.Status == StatusConfirmed
	if s.SeatHeld != holds {
		out = append(out, fmt.Sprintf("seat held=%v for a %s application", s.SeatHeld, s.Status))
	}
	if s.WeeksHeld != (s.Status == StatusConfirmed) {
		out = append(out, fmt.Sprintf("pupil weeks held=%v for a %s application", s.WeeksHeld, s.Status))
	}
	if (s.Convention == PlacementConventionLive) != (s.Status == StatusConfirmed) {
		out = append(out, fmt.Sprintf("convention %q for a %s application", s.Convention, s.Status))
	}
	return out
}

// ProtocolStep is one step of a command's protocol, as documented.
type ProtocolStep struct {
	On   string // the aggregate that decides
	Does string
	// Undo is the step's compensation when a later step cannot hold; empty
	// when the step is finished forwards instead.
	Undo string
}

// Protocol is what one command does to a placement, in order. The first
// step is the command's decision; the others are steps of Next.
type Protocol struct {
	Command string
	Steps   []ProtocolStep
	Next    []StepKind // the steps of Next the protocol runs after its decision
}

// Protocols are the multi-step commands of the placement process.
var Protocols = []Protocol{
	{Command: "apply", Steps: []ProtocolStep{
		{On: "application", Does: "submitted"},
		{On: "pupil", Does: "lists the application (for confirmations to come)"},
	}, Next: []StepKind{StepTrack}},
	{Command: "accept", Steps: []ProtocolStep{
		{On: "offer", Does: "holds a seat for each week", Undo: "releases the seat if the application ended meanwhile"},
		{On: "application", Does: "accepted"},
	}, Next: []StepKind{StepAccept, StepReleaseSeat}},
	{Command: "confirm", Steps: []ProtocolStep{
		{On: "pupil", Does: "reserves the weeks (refused when another confirmed placement overlaps)", Undo: "releases the weeks if the application ended meanwhile"},
		{On: "application", Does: "confirmed, naming its convention"},
		{On: "convention", Does: "drafted", Undo: "cancelled if the application ended meanwhile"},
		{On: "other applications", Does: "the pupil's pending ones sharing a week are withdrawn"},
	}, Next: []StepKind{StepConfirm, StepDraft, StepWithdrawOther, StepReleaseWeeks, StepCancelConvention}},
	{Command: "reject, withdraw, cancel, expire", Steps: []ProtocolStep{
		{On: "application", Does: "ended"},
		{On: "offer", Does: "releases the seat, if held (even by an acceptance under way)"},
		{On: "pupil", Does: "releases the weeks, if reserved"},
		{On: "convention", Does: "cancelled, if live"},
	}, Next: []StepKind{StepReleaseSeat, StepReleaseWeeks, StepCancelConvention}},
	{Command: "cancel convention", Steps: []ProtocolStep{
		{On: "convention", Does: "cancelled"},
		{On: "application", Does: "cancelled"},
		{On: "offer", Does: "releases the seat"},
		{On: "pupil", Does: "releases the weeks"},
	}, Next: []StepKind{StepEndForConvention, StepReleaseSeat, StepReleaseWeeks}},
	{Command: "withdraw offer", Steps: []ProtocolStep{
		{On: "offer", Does: "withdrawn; the answer lists the accepted and confirmed placements to cancel explicitly"},
		{On: "applications", Does: "each submitted or read one is closed (offer_withdrawn), by the reconciler"},
	}, Next: []StepKind{StepEndForOffer}},
	{Command: "propose", Steps: []ProtocolStep{
		{On: "application", Does: "submitted on the pupil's behalf, marked proposed and by whom"},
		{On: "pupil", Does: "lists the application"},
	}, Next: []StepKind{StepTrack}},
	{Command: "group booking", Steps: []ProtocolStep{
		{On: "offer", Does: "holds a seat in each week for every pupil of the booking at once, or refuses it whole"},
		{On: "booking", Does: "recorded (the offer, the employer, the school), for the signatures"},
		{On: "application (each pupil)", Does: "made from the booking, accepted"},
		{On: "pupil (each)", Does: "lists the application, then reserves the weeks", Undo: "a confirmation of another placement that raced the booking wins: the booked application is withdrawn and its seat released"},
		{On: "application (each pupil)", Does: "confirmed, naming its convention"},
		{On: "convention (each pupil)", Does: "drafted"},
	}, Next: []StepKind{StepSubmitBooked, StepTrack, StepReserveWeeks, StepConfirm, StepDraft, StepWithdrawOther}},
	{Command: "forget", Steps: []ProtocolStep{
		{On: "pupil", Does: "forgotten"},
		{On: "the pupil's key", Does: "destroyed (by the command, or by the reconciler after a crash)"},
	}},
}

// On is the aggregate whose decision a step is: "application" (for
// StepWithdrawOther, the other application), "offer", "pupil" or
// "convention".
func (k StepKind) On() string {
	switch k {
	case StepTrack, StepReleaseWeeks, StepReserveWeeks:
		return "pupil"
	case StepReleaseSeat:
		return "offer"
	case StepDraft, StepCancelConvention:
		return "convention"
	}
	return "application"
}

// StepContext is what a step's decision reads besides its own aggregate.
type StepContext struct {
	Application  *Application // the placement's application, as last read
	Offer        *Offer       // its offer (StepEndForOffer)
	Draft        DraftInput   // the parties (StepDraft)
	ConventionID string       // the convention a confirmation names (StepConfirm)
	BookingID    string       // the booking that makes the application (StepSubmitBooked, with Offer)
	Now          time.Time
}

// Decide is a step's decision by its aggregate (On), loaded at its last
// revision: a *Application, *Offer, *Pupil or *Convention. Each decision
// writes nothing when the step is already done.
func (s Step) Decide(target any, c StepContext) ([]Event, error) {
	id := c.Application.Submitted.ApplicationID
	switch t := target.(type) {
	case *Pupil:
		switch s.Kind {
		case StepTrack:
			return t.RecordApplication(c.Application), nil
		case StepReleaseWeeks:
			return t.ReleaseWeeks(id), nil
		case StepReserveWeeks:
			return t.ReserveWeeks(c.Application)
		}
	case *Offer:
		if s.Kind == StepReleaseSeat {
			return t.ReleaseSeat(id), nil
		}
	case *Convention:
		return s.decideConvention(t, c)
	case *Application:
		return s.decideApplication(t, c)
	}
	return nil, fmt.Errorf("step %s is not decided by a %T", s.Kind, target)
}

func (s Step) decideConvention(t *Convention, c StepContext) ([]Event, error) {
	switch {
	case s.Kind == StepDraft && t.Exists(), s.Kind == StepCancelConvention && (!t.Exists() || t.Cancelled):
		return nil, nil
	case s.Kind == StepDraft:
		return DraftConvention(c.Application.ConventionID, c.Draft), nil
	case s.Kind == StepCancelConvention:
		return t.Cancel(s.Reason)
	}
	return nil, fmt.Errorf("step %s is not decided by a convention", s.Kind)
}

func (s Step) decideApplication(t *Application, c StepContext) ([]Event, error) {
	switch s.Kind {
	case StepAccept:
		return t.Accept(c.Now)
	case StepConfirm:
		return t.Confirm(c.ConventionID)
	case StepWithdrawOther:
		return t.Superseded(), nil
	case StepEndForConvention:
		return t.Cancel("its convention was cancelled")
	case StepEndForOffer:
		return t.CloseForOffer(c.Offer), nil
	case StepSubmitBooked:
		return t.SubmitBooked(c.Offer, c.BookingID, s.Target, c.Now)
	}
	return nil, fmt.Errorf("step %s is not decided by an application", s.Kind)
}
