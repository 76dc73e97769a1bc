package commands

import (
	"context"
	"errors"
	"strings"

	"github.com/google/uuid"

	"passerelle/domain"
	"passerelle/eventstore"
)

// Propose makes an application on a pupil's behalf, marked as proposed by
// proposedBy (what proposed: an allocation round, say; the actor's subject
// when empty) acting as m.Actor.Role. The employer answers it and the
// pupil confirms it like any other. It is idempotent under m.CommandID: a
// retry answers the same application.
func (s *Service) Propose(ctx context.Context, m Meta, offerID, pupilID string, weeks []string, proposedBy string) (applicationID, position string, err error) {
	if proposedBy == "" {
		proposedBy = m.Actor.Subject
	}
	res, err := s.propose(ctx, m, ApplyInput{OfferID: offerID, PupilID: pupilID, SubmitInput: domain.SubmitInput{
		Weeks: weeks, ProposedBy: &domain.Proposer{ID: proposedBy, Role: m.Actor.Role},
	}})
	if err != nil {
		return "", "", err
	}
	return res.ID, res.Position.String(), nil
}

// propose is Apply for a proposal: the application keeps the offer's and
// the pupil's id, so a pupil is proposed, or applies, once per offer.
func (s *Service) propose(ctx context.Context, m Meta, in ApplyInput) (Result, error) {
	if in.ProposedBy == nil {
		in.ProposedBy = &domain.Proposer{ID: m.Actor.Subject, Role: m.Actor.Role}
	}
	return s.Apply(ctx, m, in)
}

// BookingInput is the group-booking command.
type BookingInput struct {
	SchoolUAI string
	PupilIDs  []string
	Weeks     []string
}

// BookedApplicationID is derived from the booking and the pupil: the
// offer's decision names it before the application exists.
func BookedApplicationID(bookingID, pupilID string) string {
	return uuid.NewSHA1(idSpace, []byte("booked-application/"+bookingID+"/"+pupilID)).String()
}

// Book takes seats of a collective offer for pupils of one school, all or
// nothing: the offer decides the whole booking in one event (two bookings
// racing for the last seats: the offer's revision lets one in, the other,
// decided again, is refused whole). Each pupil's placement is then made
// by the booking's steps (SettleBooking). The booking's id derives from
// the command, so a retry under the same command finishes the same booking.
func (s *Service) Book(ctx context.Context, m Meta, offerID string, in BookingInput) (Result, error) {
	if !domain.ValidID(offerID) {
		return Result{}, domain.NotFoundf("offer")
	}
	school, err := readIf[domain.School](ctx, s.repo, domain.ValidUAI(in.SchoolUAI), domain.SchoolStream(in.SchoolUAI))
	if err != nil {
		return Result{}, err
	}
	id := newID(m)
	bi := domain.BookInput{BookingID: id, School: school, SchoolUAI: in.SchoolUAI, Weeks: in.Weeks, PupilIDs: in.PupilIDs}
	for _, p := range in.PupilIDs {
		pupil, err := readIf[domain.Pupil](ctx, s.repo, domain.ValidID(p), domain.PupilStream(p))
		if err != nil {
			return Result{}, err
		}
		bi.Pupils = append(bi.Pupils, pupil)
		bi.ApplicationIDs = append(bi.ApplicationIDs, BookedApplicationID(id, p))
	}
	_, pos, err := update(ctx, s.repo, m.Step("book"), domain.OfferStream(offerID), func(o *domain.Offer) ([]domain.Event, error) {
		return o.Book(bi, m.Now)
	})
	if err != nil {
		return Result{}, err
	}
	res, err := s.SettleBooking(ctx, m, offerID, id)
	return Result{ID: id, Position: max(pos, res.Position), ApplicationIDs: bi.ApplicationIDs}, err
}

// SettleBooking makes what a booking the offer decided holds: its record,
// then each pupil's application (accepted, the seat being held), settled
// by the placement process up to a confirmed placement and its
// convention. The booking command runs it after its decision; the
// reconciler runs it for a booking a crash interrupted.
func (s *Service) SettleBooking(ctx context.Context, m Meta, offerID, bookingID string) (Result, error) {
	if !domain.ValidID(offerID) || !domain.ValidID(bookingID) {
		return Result{}, domain.NotFoundf("booking")
	}
	offer, err := read[domain.Offer](ctx, s.repo, domain.OfferStream(offerID))
	if err != nil {
		return Result{}, err
	}
	b, ok := offer.Booking(bookingID)
	if !ok {
		return Result{}, domain.NotFoundf("booking")
	}
	const attempts = 20 * maxAttempts
	_, last, err := updateN(ctx, s.repo, m.Step("record"), domain.BookingStream(bookingID), attempts, func(bk *domain.Booking) ([]domain.Event, error) {
		return bk.Record(offer, bookingID)
	})
	if err != nil {
		return Result{}, err
	}
	for _, seat := range b.Seats {
		step := domain.Step{Kind: domain.StepSubmitBooked, Target: seat.ApplicationID,
			Reason: "application made by the school's group booking " + bookingID}
		sm := m.Step(string(step.Kind) + "/" + step.Target)
		sm.reason = step.Reason
		_, pos, err := updateN(ctx, s.repo, sm, domain.ApplicationStream(seat.ApplicationID), attempts, func(a *domain.Application) ([]domain.Event, error) {
			return step.Decide(a, domain.StepContext{Application: a, Offer: offer, BookingID: bookingID, Now: m.Now})
		})
		if err != nil {
			return Result{}, err
		}
		spos, _, err := s.settle(ctx, m, seat.ApplicationID)
		if errors.Is(err, domain.ErrConflict) {
			// a confirmation of another placement for this pupil raced the
			// booking and won: the pupil's booked application withdraws
			// itself once that confirmation is done (the reconciler's
			// step); the booking holds for the others
			continue
		}
		if err != nil {
			return Result{}, err
		}
		last = max(last, pos, spos)
	}
	return Result{ID: bookingID, Position: last, ApplicationIDs: b.ApplicationIDs()}, nil
}

// SignBookingInput is a signature of every convention of a booking.
type SignBookingInput struct {
	Role, SignerName string
}

// SignBooking records one signature by the employer or the school head on
// each live convention of a booking, on its current document. Every
// convention is checked first: one that cannot take the signature
// (incomplete, signed by another name) refuses the whole command before
// anything is written. A convention whose document changes meanwhile is
// signed on its new document: the signer signs each current one.
func (s *Service) SignBooking(ctx context.Context, m Meta, bookingID string, in SignBookingInput) (Result, error) {
	if err := checkGroupSignature(in); err != nil {
		return Result{}, err
	}
	if !domain.ValidID(bookingID) {
		return Result{}, domain.NotFoundf("booking")
	}
	bk, err := read[domain.Booking](ctx, s.repo, domain.BookingStream(bookingID))
	if err != nil {
		return Result{}, err
	}
	if !bk.Exists() {
		return Result{}, domain.NotFoundf("booking")
	}
	convs, err := s.bookingConventions(ctx, bk, in, m)
	if err != nil {
		return Result{}, err
	}
	var last eventstore.Position
	for _, id := range convs {
		_, pos, err := updateN(ctx, s.repo, m, domain.ConventionStream(id), 20*maxAttempts, func(c *domain.Convention) ([]domain.Event, error) {
			return c.Sign(domain.SignInput{Role: in.Role, SignerName: in.SignerName, DocumentHash: c.Hash}, m.Now)
		})
		if err != nil {
			return Result{}, err
		}
		last = max(last, pos)
	}
	return Result{ID: bookingID, Position: last, ConventionIDs: convs}, nil
}

func checkGroupSignature(in SignBookingInput) error {
	p := domain.Problems{}
	if in.Role != string(domain.RoleEmployer) && in.Role != string(domain.RoleSchoolHead) {
		p.Add("role", "must be employer or school_head: the pupil and the guardians sign each convention")
	}
	switch {
	case strings.TrimSpace(in.SignerName) == "":
		p.Add("signer_name", "is required")
	case len(in.SignerName) > 200:
		p.Add("signer_name", "must be at most 200 bytes")
	}
	return p.Err()
}

// bookingConventions are the live conventions of the booking's
// applications, each checked to take the signature now.
func (s *Service) bookingConventions(ctx context.Context, bk *domain.Booking, in SignBookingInput, m Meta) ([]string, error) {
	var out []string
	for _, seat := range bk.Booked.Seats {
		app, err := read[domain.Application](ctx, s.repo, domain.ApplicationStream(seat.ApplicationID))
		if err != nil {
			return nil, err
		}
		if app.ConventionID == "" {
			continue // not confirmed (withdrawn, or still being made)
		}
		c, err := read[domain.Convention](ctx, s.repo, domain.ConventionStream(app.ConventionID))
		if err != nil {
			return nil, err
		}
		if !c.Exists() || c.Cancelled {
			continue
		}
		if _, err := c.Sign(domain.SignInput{Role: in.Role, SignerName: in.SignerName, DocumentHash: c.Hash}, m.Now); err != nil {
			return nil, domain.Naming("convention "+app.ConventionID, err)
		}
		out = append(out, app.ConventionID)
	}
	if len(out) == 0 {
		return nil, domain.Refuse("no_convention", "no convention of this booking can be signed: none is live")
	}
	return out, nil
}
