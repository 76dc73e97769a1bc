package commands

import (
	"context"
	"errors"

	"passerelle/domain"
	"passerelle/eventstore"
)

// The placement lifecycle spans four aggregates. Each scarce thing is
// decided by the aggregate that owns it, against that aggregate's revision:
// seats by the offer, a pupil's weeks by the pupil, the application's state
// by the application. A command writes them one after the other, in an
// order that never promises what is not held: the seat before the
// acceptance, the pupil's weeks before the confirmation. When a later step
// is refused, the earlier hold is released. Every step is idempotent, so a
// retried command finishes whatever a previous attempt left undone.

// ApplyInput is the apply command.
type ApplyInput struct {
	OfferID, PupilID string
	domain.SubmitInput
}

// Apply submits a pupil's application to an offer; the pupil's stream
// tracks it.
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
	app, pos, err := update(ctx, s.repo, m, domain.ApplicationStream(id), func(a *domain.Application) ([]domain.Event, error) {
		return a.Submit(id, offer, pupil, school, in.SubmitInput, m.Now)
	})
	if err != nil {
		return Result{}, err
	}
	// track the application on the pupil's stream, for confirmations to come
	if _, _, err := update(ctx, s.repo, m.Step("track"), domain.PupilStream(in.PupilID), func(p *domain.Pupil) ([]domain.Event, error) {
		return p.RecordApplication(app), nil
	}); err != nil {
		return Result{}, err
	}
	return Result{ID: id, Position: pos}, nil
}

// MarkRead records that the employer opened the application.
func (s *Service) MarkRead(ctx context.Context, m Meta, applicationID string) (Result, error) {
	return s.updateApplication(ctx, m, applicationID, (*domain.Application).MarkRead)
}

// Accept holds a seat on the offer, then marks the application accepted.
// If the application changed meanwhile, the seat is released.
func (s *Service) Accept(ctx context.Context, m Meta, applicationID string) (Result, error) {
	app, err := s.loadApplication(ctx, applicationID)
	if err != nil {
		return Result{}, err
	}
	if err := app.CanAccept(); err != nil {
		return Result{}, err
	}
	if _, _, err := update(ctx, s.repo, m.Step("hold"), domain.OfferStream(app.Submitted.OfferID), func(o *domain.Offer) ([]domain.Event, error) {
		return o.HoldSeat(app)
	}); err != nil {
		return Result{}, err
	}
	_, pos, err := update(ctx, s.repo, m, domain.ApplicationStream(applicationID), func(a *domain.Application) ([]domain.Event, error) {
		return a.Accept(m.Now)
	})
	if errors.Is(err, domain.ErrConflict) {
		// release the seat only if the application no longer needs it: a
		// concurrent acceptance may have won and the pupil confirmed since
		now, rerr := s.loadApplication(ctx, applicationID)
		if rerr != nil {
			return Result{}, errors.Join(err, rerr)
		}
		if !now.HoldsSeat() {
			if _, relErr := s.releaseSeat(ctx, m.Step("release"), app.Submitted.OfferID, applicationID); relErr != nil {
				return Result{}, errors.Join(err, relErr)
			}
		}
	}
	return Result{ID: applicationID, Position: pos}, err
}

// Reject records the employer's refusal of an application.
func (s *Service) Reject(ctx context.Context, m Meta, applicationID, reason string) (Result, error) {
	return s.updateApplication(ctx, m, applicationID, func(a *domain.Application) ([]domain.Event, error) {
		return a.Reject(reason)
	})
}

// Withdraw records the pupil's withdrawal and releases whatever the
// application held: the seat (even one held by an acceptance still under
// way), the pupil's weeks and the convention.
func (s *Service) Withdraw(ctx context.Context, m Meta, applicationID, reason string) (Result, error) {
	return s.end(ctx, m, applicationID, "the pupil withdrew", func(a *domain.Application) ([]domain.Event, error) {
		return a.Withdraw(reason, m.Now)
	})
}

// Cancel records the employer's cancellation of an accepted or confirmed
// placement and releases what it held.
func (s *Service) Cancel(ctx context.Context, m Meta, applicationID, reason string) (Result, error) {
	return s.end(ctx, m, applicationID, reason, func(a *domain.Application) ([]domain.Event, error) {
		return a.Cancel(reason)
	})
}

// Expire closes an application whose deadline has passed at m.Now.
func (s *Service) Expire(ctx context.Context, m Meta, applicationID string) (Result, error) {
	return s.end(ctx, m, applicationID, "not confirmed in time", func(a *domain.Application) ([]domain.Event, error) {
		return a.Expire(m.Now), nil
	})
}

// end applies a decision that ends an application, then releases the seat,
// the pupil's weeks and the convention it may hold.
func (s *Service) end(ctx context.Context, m Meta, applicationID, why string, decide func(*domain.Application) ([]domain.Event, error)) (Result, error) {
	if _, err := s.loadApplication(ctx, applicationID); err != nil {
		return Result{}, err
	}
	app, pos, err := update(ctx, s.repo, m, domain.ApplicationStream(applicationID), decide)
	if err != nil {
		return Result{}, err
	}
	if app.Pending() || app.Status == domain.StatusConfirmed {
		return Result{ID: applicationID, Position: pos}, nil // nothing ended (not due yet)
	}
	relPos, err := s.release(ctx, m, app, why)
	return Result{ID: applicationID, Position: max(pos, relPos)}, err
}

// release frees what an ended application held.
func (s *Service) release(ctx context.Context, m Meta, app *domain.Application, why string) (eventstore.Position, error) {
	id := app.Submitted.ApplicationID
	last, err := s.releaseSeat(ctx, m.Step("release"), app.Submitted.OfferID, id)
	if err != nil {
		return 0, err
	}
	_, pos, err := updateN(ctx, s.repo, m.Step("release-weeks"), domain.PupilStream(app.Submitted.PupilID), 20*maxAttempts, func(p *domain.Pupil) ([]domain.Event, error) {
		return p.ReleaseWeeks(id), nil
	})
	if err != nil {
		return 0, err
	}
	last = max(last, pos)
	if app.ConventionID != "" {
		_, pos, err := update(ctx, s.repo, m.Step("cancel-convention"), domain.ConventionStream(app.ConventionID), func(c *domain.Convention) ([]domain.Event, error) {
			if !c.Exists() {
				return nil, nil
			}
			return c.Cancel(why)
		})
		if err != nil {
			return 0, err
		}
		last = max(last, pos)
	}
	return last, nil
}

// releaseSeat frees the seat an application holds, if any. It follows a
// decision already written, so it insists far longer than a first decision.
func (s *Service) releaseSeat(ctx context.Context, m Meta, offerID, applicationID string) (eventstore.Position, error) {
	_, pos, err := updateN(ctx, s.repo, m, domain.OfferStream(offerID), 20*maxAttempts, func(o *domain.Offer) ([]domain.Event, error) {
		return o.ReleaseSeat(applicationID), nil
	})
	return pos, err
}

// Confirm reserves the pupil's weeks, records the pupil's choice, drafts the
// convention and withdraws the pupil's other applications for those weeks.
// Two overlapping confirmations race on the pupil's stream: one wins.
func (s *Service) Confirm(ctx context.Context, m Meta, applicationID string) (Result, error) {
	app, err := s.loadApplication(ctx, applicationID)
	if err != nil {
		return Result{}, err
	}
	if app.Status != domain.StatusAccepted && app.Status != domain.StatusConfirmed {
		_, err := app.Confirm("")
		return Result{}, err
	}
	pupilStream := domain.PupilStream(app.Submitted.PupilID)
	if _, _, err := update(ctx, s.repo, m.Step("reserve"), pupilStream, func(p *domain.Pupil) ([]domain.Event, error) {
		return p.ReserveWeeks(app)
	}); err != nil {
		return Result{}, err
	}
	conventionID := ConventionID(applicationID)
	app, pos, err := update(ctx, s.repo, m, domain.ApplicationStream(applicationID), func(a *domain.Application) ([]domain.Event, error) {
		return a.Confirm(conventionID)
	})
	if err != nil {
		if errors.Is(err, domain.ErrConflict) {
			_, _, relErr := updateN(ctx, s.repo, m.Step("unreserve"), pupilStream, 20*maxAttempts, func(p *domain.Pupil) ([]domain.Event, error) {
				return p.ReleaseWeeks(applicationID), nil
			})
			err = errors.Join(err, relErr)
		}
		return Result{}, err
	}
	cpos, err := s.draft(ctx, m, app, conventionID)
	if err != nil {
		return Result{}, err
	}
	// an application ended (withdrawn, cancelled) between the confirmation
	// and the draft found no convention to cancel: cancel it now
	if now, err := s.loadApplication(ctx, applicationID); err != nil {
		return Result{}, err
	} else if now.Status != domain.StatusConfirmed {
		if _, _, err := update(ctx, s.repo, m.Step("cancel-convention"), domain.ConventionStream(conventionID), func(c *domain.Convention) ([]domain.Event, error) {
			return c.Cancel("the application ended before the convention was drafted")
		}); err != nil {
			return Result{}, err
		}
		return Result{}, domain.Refuse("wrong_status", "the application was %s while it was being confirmed", now.Status)
	}
	wpos, err := s.withdrawOverlapping(ctx, m, app)
	if err != nil {
		return Result{}, err
	}
	return Result{ID: applicationID, Position: max(pos, cpos, wpos), ConventionID: conventionID}, nil
}

func (s *Service) draft(ctx context.Context, m Meta, app *domain.Application, conventionID string) (eventstore.Position, error) {
	in := domain.DraftInput{Application: app}
	var err error
	if in.Offer, err = read[domain.Offer](ctx, s.repo, domain.OfferStream(app.Submitted.OfferID)); err != nil {
		return 0, err
	}
	if in.Employer, err = read[domain.Employer](ctx, s.repo, domain.EmployerStream(app.Submitted.EmployerID)); err != nil {
		return 0, err
	}
	if in.School, err = read[domain.School](ctx, s.repo, domain.SchoolStream(app.Submitted.SchoolUAI)); err != nil {
		return 0, err
	}
	if in.Pupil, err = read[domain.Pupil](ctx, s.repo, domain.PupilStream(app.Submitted.PupilID)); err != nil {
		return 0, err
	}
	_, pos, err := update(ctx, s.repo, m.Step("draft"), domain.ConventionStream(conventionID), func(c *domain.Convention) ([]domain.Event, error) {
		if c.Exists() {
			return nil, nil
		}
		return domain.DraftConvention(conventionID, in), nil
	})
	return pos, err
}

// withdrawOverlapping withdraws the pupil's other pending applications that
// share a week with the confirmed one.
func (s *Service) withdrawOverlapping(ctx context.Context, m Meta, app *domain.Application) (eventstore.Position, error) {
	pupil, err := read[domain.Pupil](ctx, s.repo, domain.PupilStream(app.Submitted.PupilID))
	if err != nil {
		return 0, err
	}
	var last eventstore.Position
	for _, other := range pupil.OverlappingApplications(app.Submitted.ApplicationID, app.Submitted.Weeks) {
		res, err := s.end(ctx, m.Step("withdraw/"+other), other, "the pupil confirmed another placement", func(a *domain.Application) ([]domain.Event, error) {
			if !a.Pending() {
				return nil, nil
			}
			return a.Withdraw("the pupil confirmed another placement for these weeks", m.Now)
		})
		if err != nil && !errors.Is(err, domain.ErrConflict) {
			return 0, err
		}
		last = max(last, res.Position)
	}
	return last, nil
}

// CompleteConvention records the employer's or the school's part.
func (s *Service) CompleteConvention(ctx context.Context, m Meta, conventionID string, in domain.CompleteInput) (Result, error) {
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
// convention, then the application, then the seat and the pupil's weeks.
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
	res, err := s.end(ctx, m.Step("cancel-application"), conv.Drafted().ApplicationID, reason, func(a *domain.Application) ([]domain.Event, error) {
		return a.Cancel(reason)
	})
	if err != nil {
		return Result{}, err
	}
	return Result{ID: conventionID, Position: max(pos, res.Position)}, nil
}

func (s *Service) updateApplication(ctx context.Context, m Meta, id string, decide func(*domain.Application) ([]domain.Event, error)) (Result, error) {
	if _, err := s.loadApplication(ctx, id); err != nil {
		return Result{}, err
	}
	_, pos, err := update(ctx, s.repo, m, domain.ApplicationStream(id), decide)
	return Result{ID: id, Position: pos}, err
}
