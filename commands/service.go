// Package commands decides commands against aggregates and appends the
// resulting events: one handler per command, each loading its aggregates
// from the event store, deciding in the domain, and appending with the
// revision it loaded. It also serves the command routes of the HTTP API.
package commands

import (
	"context"
	"time"

	"github.com/google/uuid"

	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/eventstore/personal"
)

// Meta is what every command carries besides its input.
type Meta struct {
	CommandID     string // stable across retries of the same request
	CorrelationID string
	Actor         eventstore.Actor
	Now           time.Time
	step          string // names one append of a multi-step command
	reason        string // why a step of the placement process is taken
	// idem is the idempotency record to write, set by the HTTP API for a
	// request with an Idempotency-Key; answers is the id a command's last
	// step answers with (final), which then writes the record with its
	// events when the store can write both at once.
	idem    *completion
	answers string
}

// final marks the append that ends a command answering id: it may carry
// the command's idempotency record. Only a step after which nothing can
// fail may be marked.
func (m Meta) final(id string) Meta {
	m.answers = id
	return m
}

// Step names an append of a command that writes the same stream more than
// once (hold then release a seat), so each gets its own event IDs.
func (m Meta) Step(name string) Meta {
	m.step = name
	return m
}

// Result is a command's answer: the aggregate's id and the global position
// of the last event written (or of the aggregate's last event when the
// command changed nothing).
type Result struct {
	ID           string              `json:"id"`
	Position     eventstore.Position `json:"-"`
	ConventionID string              `json:"convention_id,omitempty"`
	// PlacementsToCancel are the accepted or confirmed applications of a
	// withdrawn offer: they are never ended silently, the employer cancels
	// each one explicitly.
	PlacementsToCancel []string `json:"placements_to_cancel,omitempty"`
	// ApplicationIDs are the applications a group booking made, one per
	// pupil; ConventionIDs the conventions a group signature signed.
	ApplicationIDs []string `json:"application_ids,omitempty"`
	ConventionIDs  []string `json:"convention_ids,omitempty"`
	// Preview is a computed round's; Proposals what publishing one did.
	Preview   *domain.RoundPreview `json:"preview,omitempty"`
	Proposals *Proposals           `json:"proposals,omitempty"`
}

// Service holds one handler per command.
type Service struct {
	repo   repository
	places domain.Places
	// market and proposer serve allocation rounds (WithRounds)
	market   RoundMarket
	proposer Proposer
}

// NewService builds the command handlers over a store.
func NewService(store eventstore.Store, places domain.Places) *Service {
	return &Service{repo: repository{store: store, cache: newAggregateCache(DefaultCacheSize)}, places: places}
}

// WithCacheSize sets how many aggregates the service keeps in memory
// (default DefaultCacheSize; 0 reads every stream whole).
func (s *Service) WithCacheSize(n int) *Service {
	s.repo.cache = nil
	if n > 0 {
		s.repo.cache = newAggregateCache(n)
	}
	return s
}

// WithPersonalData seals personal data in events with per-person keys.
func (s *Service) WithPersonalData(c *personal.Cipher) *Service {
	s.repo.cipher = c
	return s
}

// Forget erases a pupil's and their guardians' personal data: the fact is
// recorded, then the pupil's key is destroyed, which makes every sealed
// field of every copy of the log unreadable. Ids and statistics remain.
func (s *Service) Forget(ctx context.Context, m Meta, pupilID string) (Result, error) {
	if !domain.ValidID(pupilID) {
		return Result{}, domain.NotFoundf("pupil")
	}
	_, pos, err := update(ctx, s.repo, m, domain.PupilStream(pupilID), (*domain.Pupil).Forget)
	if err != nil {
		return Result{}, err
	}
	return Result{ID: pupilID, Position: pos}, s.DestroyKey(pupilID)
}

// DestroyKey is the second step of a forget: the pupil's key is destroyed
// and the cache emptied. The reconciler takes it again for every
// PupilForgotten it reads, in case the command was interrupted between the
// two.
func (s *Service) DestroyKey(pupilID string) error {
	if s.repo.cipher == nil {
		return nil
	}
	err := s.repo.cipher.Forget(pupilID)
	// after the key: a load under way may have opened the data with it
	s.repo.cache.forgetAll()
	return err
}

var idSpace = uuid.MustParse("0c6f8d36-2b7a-4a8e-9f0e-5d3c1b2a4e77")

// newID derives an aggregate id from the command, so that a retried
// creation lands on the same stream.
func newID(m Meta) string {
	return uuid.NewSHA1(idSpace, []byte("id/"+m.CommandID)).String()
}

// ApplicationID is derived from the offer and the pupil: a pupil applies
// once per offer, and a double submission lands on the same stream.
func ApplicationID(offerID, pupilID string) string {
	return uuid.NewSHA1(idSpace, []byte("application/"+offerID+"/"+pupilID)).String()
}

// ConventionID is derived from the application it formalises.
func ConventionID(applicationID string) string {
	return uuid.NewSHA1(idSpace, []byte("convention/"+applicationID)).String()
}

// EmployerID is derived from the SIRET: one employer per SIRET.
func EmployerID(siret string) string {
	return uuid.NewSHA1(idSpace, []byte("employer/"+siret)).String()
}

// RegisterEmployer registers the employer of a SIRET. Its stream, named by
// the SIRET, is the claim: of two concurrent registrations the store lets
// one in (no stream expected), and the other, decided again, finds it: the
// same body gets the same id and answer, another a 409 naming the id.
func (s *Service) RegisterEmployer(ctx context.Context, m Meta, in domain.RegisterEmployerInput) (Result, error) {
	if !domain.ValidSIRET(in.SIRET) {
		_, err := domain.RegisterEmployer("", in, s.places) // names every invalid field
		return Result{}, err
	}
	id := EmployerID(in.SIRET)
	_, pos, err := update(ctx, s.repo, m.final(id), domain.EmployerStream(id), func(e *domain.Employer) ([]domain.Event, error) {
		return e.Register(id, in, s.places)
	})
	return Result{ID: id, Position: pos}, err
}

// RegisterSchool registers a school under its UAI.
func (s *Service) RegisterSchool(ctx context.Context, m Meta, in domain.RegisterSchoolInput) (Result, error) {
	if !domain.ValidUAI(in.UAI) {
		_, err := (&domain.School{}).Register(in, s.places) // names every invalid field
		return Result{}, err
	}
	_, pos, err := update(ctx, s.repo, m.final(in.UAI), domain.SchoolStream(in.UAI), func(sc *domain.School) ([]domain.Event, error) {
		return sc.Register(in, s.places)
	})
	return Result{ID: in.UAI, Position: pos}, err
}

// RegisterPupil registers a pupil of a registered school under a new id.
func (s *Service) RegisterPupil(ctx context.Context, m Meta, in domain.RegisterPupilInput) (Result, error) {
	school, err := readIf[domain.School](ctx, s.repo, domain.ValidUAI(in.SchoolUAI), domain.SchoolStream(in.SchoolUAI))
	if err != nil {
		return Result{}, err
	}
	id := newID(m)
	_, pos, err := update(ctx, s.repo, m.final(id), domain.PupilStream(id), func(p *domain.Pupil) ([]domain.Event, error) {
		if p.Exists() {
			return nil, nil
		}
		return domain.RegisterPupil(id, in, school, m.Now)
	})
	return Result{ID: id, Position: pos}, err
}

// PostOfferInput adds the employer to the domain input.
type PostOfferInput struct {
	EmployerID string
	// CoHostIDs: the other employers of a collective programme.
	CoHostIDs []string
	domain.PostOfferInput
}

// PostOffer posts a registered employer's offer under a new id.
func (s *Service) PostOffer(ctx context.Context, m Meta, in PostOfferInput) (Result, error) {
	employer, err := readIf[domain.Employer](ctx, s.repo, domain.ValidID(in.EmployerID), domain.EmployerStream(in.EmployerID))
	if err != nil {
		return Result{}, err
	}
	if in.CoHosts, err = s.coHosts(ctx, in.CoHostIDs); err != nil {
		return Result{}, err
	}
	id := newID(m)
	_, pos, err := update(ctx, s.repo, m.final(id), domain.OfferStream(id), func(o *domain.Offer) ([]domain.Event, error) {
		if o.Exists() {
			return nil, nil
		}
		return domain.PostOffer(id, employer, in.PostOfferInput, s.places, m.Now)
	})
	return Result{ID: id, Position: pos}, err
}

// coHosts names the registered employers among ids (an empty name for
// the others, which the offer's rules refuse).
func (s *Service) coHosts(ctx context.Context, ids []string) ([]domain.CoHost, error) {
	if len(ids) > domain.MaxCoHosts {
		return make([]domain.CoHost, len(ids)), nil // refused on their number, unread
	}
	var out []domain.CoHost
	for _, id := range ids {
		e, err := readIf[domain.Employer](ctx, s.repo, domain.ValidID(id), domain.EmployerStream(id))
		if err != nil {
			return nil, err
		}
		c := domain.CoHost{EmployerID: id}
		if e != nil && e.Exists() {
			c.Name = e.Registered.Name
		}
		out = append(out, c)
	}
	return out, nil
}

// WithdrawOffer closes an offer to applications. The reconciler then
// closes its unanswered applications (offer_withdrawn); the answer lists
// the accepted and confirmed ones, which the employer must cancel.
func (s *Service) WithdrawOffer(ctx context.Context, m Meta, offerID, reason string) (Result, error) {
	if !domain.ValidID(offerID) {
		return Result{}, domain.NotFoundf("offer")
	}
	offer, pos, err := update(ctx, s.repo, m, domain.OfferStream(offerID), func(o *domain.Offer) ([]domain.Event, error) {
		return o.Withdraw(reason)
	})
	if err != nil {
		return Result{}, err
	}
	return Result{ID: offerID, Position: pos, PlacementsToCancel: offer.Holders()}, nil
}

// ReopenOffer opens a withdrawn offer to applications again.
func (s *Service) ReopenOffer(ctx context.Context, m Meta, offerID string) (Result, error) {
	return updateByID(ctx, s.repo, m, "offer", domain.OfferStream, offerID, (*domain.Offer).Reopen)
}

// AmendOffer changes an offer's terms.
func (s *Service) AmendOffer(ctx context.Context, m Meta, offerID string, in domain.AmendOfferInput) (Result, error) {
	return updateByID(ctx, s.repo, m, "offer", domain.OfferStream, offerID, func(o *domain.Offer) ([]domain.Event, error) {
		return o.Amend(in, m.Now)
	})
}

func (s *Service) loadApplication(ctx context.Context, id string) (*domain.Application, error) {
	if !domain.ValidID(id) {
		return nil, domain.NotFoundf("application")
	}
	app, err := read[domain.Application](ctx, s.repo, domain.ApplicationStream(id))
	if err != nil {
		return nil, err
	}
	if !app.Exists() {
		return nil, domain.NotFoundf("application")
	}
	return app, nil
}
