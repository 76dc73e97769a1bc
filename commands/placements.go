package commands

import (
	"context"
	"fmt"

	"passerelle/convdoc"
	"passerelle/domain"
	"passerelle/eventstore"
)

// The placement lifecycle spans four aggregates, each deciding what it
// owns against its own revision: seats by the offer, a pupil's weeks by
// the pupil, the application's state by the application, the convention
// by itself. A command makes its decision on one of them, then settles the
// placement: it runs the steps of domain.PlacementState.Next until the
// placement holds exactly what its status says. A command interrupted
// between steps (a crash, a lost connection) leaves a placement that the
// reconciler settles with the same steps; each step writes nothing when
// already done, so a retry, the reconciler and the command itself never
// double an effect.

// ApplyInput is the apply command.
type ApplyInput struct {
	OfferID, PupilID string
	domain.SubmitInput
}

// Apply submits a pupil's application to an offer; the pupil's stream
// then lists it, for confirmations to come.
func (s *Service) Apply(ctx context.Context, m Meta, in ApplyInput) (Result, error) {
	if !domain.ValidID(in.OfferID) {
		return Result{}, domain.NotFoundf("offer")
	}
	offer, err := read[domain.Offer](ctx, s.repo, domain.OfferStream(in.OfferID))
	if err != nil {
		return Result{}, err
	}
	pupil, err := readIf[domain.Pupil](ctx, s.repo, domain.ValidID(in.PupilID), domain.PupilStream(in.PupilID))
	if err != nil {
		return Result{}, err
	}
	var school *domain.School
	if pupil != nil && pupil.Exists() {
		if school, err = read[domain.School](ctx, s.repo, domain.SchoolStream(pupil.Registered.SchoolUAI)); err != nil {
			return Result{}, err
		}
	}
	id := ApplicationID(in.OfferID, in.PupilID)
	_, pos, err := update(ctx, s.repo, m, domain.ApplicationStream(id), func(a *domain.Application) ([]domain.Event, error) {
		return a.Submit(id, offer, pupil, school, in.SubmitInput, m.Now)
	})
	if err != nil {
		return Result{}, err
	}
	spos, _, err := s.settle(ctx, m, id)
	return Result{ID: id, Position: max(pos, spos)}, err
}

// MarkRead records that the employer opened the application.
func (s *Service) MarkRead(ctx context.Context, m Meta, applicationID string) (Result, error) {
	if _, err := s.loadApplication(ctx, applicationID); err != nil {
		return Result{}, err
	}
	_, pos, err := update(ctx, s.repo, m, domain.ApplicationStream(applicationID), (*domain.Application).MarkRead)
	return Result{ID: applicationID, Position: pos}, err
}

// Accept holds a seat on the offer (the decision), then settles the
// placement: the application is accepted, or, if it ended meanwhile, the
// seat is released.
func (s *Service) Accept(ctx context.Context, m Meta, applicationID string) (Result, error) {
	app, err := s.loadApplication(ctx, applicationID)
	if err != nil {
		return Result{}, err
	}
	if err := app.CanAccept(); err != nil {
		return Result{}, err
	}
	_, hpos, err := update(ctx, s.repo, m.Step("hold"), domain.OfferStream(app.Submitted.OfferID), func(o *domain.Offer) ([]domain.Event, error) {
		return o.HoldSeat(app)
	})
	if err != nil {
		return Result{}, err
	}
	pos, app, err := s.settle(ctx, m, applicationID)
	if err != nil {
		return Result{}, err
	}
	if !app.HoldsSeat() {
		return Result{}, domain.Refuse("wrong_status", "the application was %s while it was being accepted", app.Status)
	}
	return Result{ID: applicationID, Position: max(hpos, pos)}, nil
}

// Reject records the employer's refusal of an application, then releases
// a seat an interrupted acceptance may have held.
func (s *Service) Reject(ctx context.Context, m Meta, applicationID, reason string) (Result, error) {
	return s.end(ctx, m, applicationID, func(a *domain.Application) ([]domain.Event, error) {
		return a.Reject(reason)
	})
}

// Withdraw records the pupil's withdrawal and releases whatever the
// application held: the seat (even one held by an acceptance still under
// way), the pupil's weeks and the convention.
func (s *Service) Withdraw(ctx context.Context, m Meta, applicationID, reason string) (Result, error) {
	return s.end(ctx, m, applicationID, func(a *domain.Application) ([]domain.Event, error) {
		return a.Withdraw(reason, m.Now)
	})
}

// Cancel records the employer's cancellation of an accepted or confirmed
// placement and releases what it held.
func (s *Service) Cancel(ctx context.Context, m Meta, applicationID, reason string) (Result, error) {
	return s.end(ctx, m, applicationID, func(a *domain.Application) ([]domain.Event, error) {
		return a.Cancel(reason)
	})
}

// Expire closes an application whose deadline has passed at m.Now.
func (s *Service) Expire(ctx context.Context, m Meta, applicationID string) (Result, error) {
	return s.end(ctx, m, applicationID, func(a *domain.Application) ([]domain.Event, error) {
		return a.Expire(m.Now), nil
	})
}

// end applies a decision that ends an application, then settles the
// placement: the seat, the pupil's weeks and the convention it may hold are
// released.
func (s *Service) end(ctx context.Context, m Meta, applicationID string, decide func(*domain.Application) ([]domain.Event, error)) (Result, error) {
	if _, err := s.loadApplication(ctx, applicationID); err != nil {
		return Result{}, err
	}
	_, pos, err := update(ctx, s.repo, m, domain.ApplicationStream(applicationID), decide)
	if err != nil {
		return Result{}, err
	}
	spos, _, err := s.settle(ctx, m, applicationID)
	return Result{ID: applicationID, Position: max(pos, spos)}, err
}

// Confirm reserves the pupil's weeks (the decision: two overlapping
// confirmations race on the pupil's stream and one wins), then settles the
// placement: the application is confirmed, its convention drafted and the
// pupil's other pending applications for those weeks withdrawn.
func (s *Service) Confirm(ctx context.Context, m Meta, applicationID string) (Result, error) {
	app, err := s.loadApplication(ctx, applicationID)
	if err != nil {
		return Result{}, err
	}
	if app.Status != domain.StatusAccepted && app.Status != domain.StatusConfirmed {
		_, err := app.Confirm("")
		return Result{}, err
	}
	_, rpos, err := update(ctx, s.repo, m.Step("reserve"), domain.PupilStream(app.Submitted.PupilID), func(p *domain.Pupil) ([]domain.Event, error) {
		return p.ReserveWeeks(app)
	})
	if err != nil {
		return Result{}, err
	}
	pos, app, err := s.settle(ctx, m, applicationID)
	if err != nil {
		return Result{}, err
	}
	if app.Status != domain.StatusConfirmed {
		return Result{}, domain.Refuse("wrong_status", "the application was %s while it was being confirmed", app.Status)
	}
	return Result{ID: applicationID, Position: max(rpos, pos), ConventionID: app.ConventionID}, nil
}

// CompleteConvention records the employer's or the school's part. The new
// version of the document is the PDF rendered from the new terms.
func (s *Service) CompleteConvention(ctx context.Context, m Meta, conventionID string, in domain.CompleteInput) (Result, error) {
	in.Document = convdoc.Hash
	return updateByID(ctx, s.repo, m, "convention", domain.ConventionStream, conventionID, func(c *domain.Convention) ([]domain.Event, error) {
		return c.CompleteParty(in)
	})
}

// Sign records one role's signature of the convention's current document.
func (s *Service) Sign(ctx context.Context, m Meta, conventionID string, in domain.SignInput) (Result, error) {
	return updateByID(ctx, s.repo, m, "convention", domain.ConventionStream, conventionID, func(c *domain.Convention) ([]domain.Event, error) {
		return c.Sign(in, m.Now)
	})
}

// CancelConvention cancels the placement behind a convention: the
// convention (the decision), then the application, the seat and the
// pupil's weeks.
func (s *Service) CancelConvention(ctx context.Context, m Meta, conventionID, reason string) (Result, error) {
	if !domain.ValidID(conventionID) {
		return Result{}, domain.NotFoundf("convention")
	}
	conv, pos, err := update(ctx, s.repo, m, domain.ConventionStream(conventionID), func(c *domain.Convention) ([]domain.Event, error) {
		return c.Cancel(reason)
	})
	if err != nil {
		return Result{}, err
	}
	spos, _, err := s.settle(ctx, m, conv.Drafted().ApplicationID)
	return Result{ID: conventionID, Position: max(pos, spos)}, err
}

// maxSteps bounds the steps of one settle; a placement settles in at most
// five, plus one per overlapping application withdrawn.
const maxSteps = 64

// settle runs the steps of the placement process for an application until
// it is settled, and returns the position of the last event written and
// the application as it ends.
func (s *Service) settle(ctx context.Context, m Meta, id string) (eventstore.Position, *domain.Application, error) {
	var last eventstore.Position
	for range maxSteps {
		app, st, err := s.placement(ctx, id)
		if err != nil {
			return last, nil, err
		}
		step, ok := st.Next()
		if !ok {
			return last, app, nil
		}
		sm := m.Step(string(step.Kind) + "/" + step.Target)
		sm.reason = step.Reason
		pos, err := s.take(ctx, sm, app, step)
		if err != nil {
			return last, app, fmt.Errorf("%s of application %s: %w", step.Kind, step.Target, err)
		}
		last = max(last, pos)
	}
	return last, nil, fmt.Errorf("application %s: placement not settled after %d steps", id, maxSteps)
}

// placement reads what each aggregate holds for application id.
func (s *Service) placement(ctx context.Context, id string) (*domain.Application, domain.PlacementState, error) {
	app, err := read[domain.Application](ctx, s.repo, domain.ApplicationStream(id))
	if err != nil || !app.Exists() {
		return app, domain.PlacementState{ApplicationID: id}, err
	}
	st := domain.PlacementState{ApplicationID: id, Status: app.Status, Weeks: app.Submitted.Weeks, Booked: app.Submitted.BookingID != ""}
	offer, err := read[domain.Offer](ctx, s.repo, domain.OfferStream(app.Submitted.OfferID))
	if err != nil {
		return app, st, err
	}
	st.SeatHeld, st.OfferWithdrawn = offer.Holds(id), offer.Withdrawn
	if domain.Ended(app.Status) && !app.MayHoldWeeks() {
		// the pupil holds nothing for it: late in a season most expiries
		// and rejections are of pupils long out of the cache, and reading
		// their streams again was the most of what those commands cost
		return app, st, nil
	}
	pupil, err := read[domain.Pupil](ctx, s.repo, domain.PupilStream(app.Submitted.PupilID))
	if err != nil {
		return app, st, err
	}
	_, st.Tracked = pupil.Applications[id]
	_, st.WeeksHeld = pupil.Reserved[id]
	st.PupilForgotten = pupil.Forgotten
	if app.ConventionID != "" {
		conv, err := read[domain.Convention](ctx, s.repo, domain.ConventionStream(app.ConventionID))
		if err != nil {
			return app, st, err
		}
		switch {
		case conv.Exists() && conv.Cancelled:
			st.Convention = domain.PlacementConventionCancelled
		case conv.Exists():
			st.Convention = domain.PlacementConventionLive
		}
	}
	st.ConfirmedRival, st.OverlappingPending, err = s.rivals(ctx, pupil, app)
	return app, st, err
}

// rivals are, for a pending application, whether another application of
// the pupil sharing a week is confirmed (the pupil's weeks are reserved for
// it and its own status says so: a confirmation under way does not count);
// for a confirmed one, the pupil's other pending applications sharing a
// week.
func (s *Service) rivals(ctx context.Context, pupil *domain.Pupil, app *domain.Application) (confirmed bool, pending []string, err error) {
	id, weeks := app.Submitted.ApplicationID, app.Submitted.Weeks
	switch {
	case app.Pending():
		for other, reserved := range pupil.Reserved {
			if other == id || !domain.Overlaps(reserved, weeks) {
				continue
			}
			o, err := read[domain.Application](ctx, s.repo, domain.ApplicationStream(other))
			if err != nil || o.Status == domain.StatusConfirmed {
				return err == nil, nil, err
			}
		}
	case app.Status == domain.StatusConfirmed:
		for _, other := range pupil.OverlappingApplications(id, weeks) {
			o, err := read[domain.Application](ctx, s.repo, domain.ApplicationStream(other))
			if err != nil {
				return false, nil, err
			}
			if o.Pending() {
				pending = append(pending, other)
			}
		}
	}
	return false, pending, nil
}

// take runs one step of the placement process: the step's decision on
// its aggregate's stream, insisting far longer than a first decision, as
// it follows a decision already written.
func (s *Service) take(ctx context.Context, m Meta, app *domain.Application, step domain.Step) (eventstore.Position, error) {
	sub := app.Submitted
	c := domain.StepContext{Application: app, ConventionID: ConventionID(sub.ApplicationID), Now: m.Now}
	var err error
	switch step.Kind {
	case domain.StepEndForOffer:
		c.Offer, err = read[domain.Offer](ctx, s.repo, domain.OfferStream(sub.OfferID))
	case domain.StepDraft:
		c.Draft, err = s.parties(ctx, app)
	case domain.StepWithdrawOther:
		// the other application ends, and gives back what it held
		res, err := s.end(ctx, m, step.Target, func(a *domain.Application) ([]domain.Event, error) { return step.Decide(a, c) })
		return res.Position, err
	}
	if err != nil {
		return 0, err
	}
	const attempts = 20 * maxAttempts
	var pos eventstore.Position
	switch step.Kind.On() {
	case "pupil":
		_, pos, err = updateN(ctx, s.repo, m, domain.PupilStream(sub.PupilID), attempts, func(p *domain.Pupil) ([]domain.Event, error) { return step.Decide(p, c) })
	case "offer":
		_, pos, err = updateN(ctx, s.repo, m, domain.OfferStream(sub.OfferID), attempts, func(o *domain.Offer) ([]domain.Event, error) { return step.Decide(o, c) })
	case "convention":
		_, pos, err = updateN(ctx, s.repo, m, domain.ConventionStream(app.ConventionID), attempts, func(cv *domain.Convention) ([]domain.Event, error) { return step.Decide(cv, c) })
	default:
		_, pos, err = updateN(ctx, s.repo, m, domain.ApplicationStream(sub.ApplicationID), attempts, func(a *domain.Application) ([]domain.Event, error) { return step.Decide(a, c) })
	}
	return pos, err
}

// parties reads what a convention's draft names; its document is the PDF.
func (s *Service) parties(ctx context.Context, app *domain.Application) (domain.DraftInput, error) {
	in := domain.DraftInput{Application: app, Document: convdoc.Hash}
	var err error
	if in.Offer, err = read[domain.Offer](ctx, s.repo, domain.OfferStream(app.Submitted.OfferID)); err != nil {
		return in, err
	}
	if in.Employer, err = read[domain.Employer](ctx, s.repo, domain.EmployerStream(app.Submitted.EmployerID)); err != nil {
		return in, err
	}
	if in.School, err = read[domain.School](ctx, s.repo, domain.SchoolStream(app.Submitted.SchoolUAI)); err != nil {
		return in, err
	}
	in.Pupil, err = read[domain.Pupil](ctx, s.repo, domain.PupilStream(app.Submitted.PupilID))
	return in, err
}

// Settle runs the placement process for an application until it is
// settled: the reconciler's repair of a command interrupted between its
// steps. m names the repair (its command ID derives from what it repairs).
func (s *Service) Settle(ctx context.Context, m Meta, applicationID string) (Result, error) {
	if !domain.ValidID(applicationID) {
		return Result{}, domain.NotFoundf("application")
	}
	pos, _, err := s.settle(ctx, m, applicationID)
	return Result{ID: applicationID, Position: pos}, err
}
