package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/internal/auth"
)

// The operators' side (the national partner API v2): accounts, sign-in,
// and offers pushed under the operator's own ids. An offer's id derives
// from (operator, remote_id) and the offer's stream is created only where
// none exists, so the store itself refuses a second push of a remote_id.

// ErrOutOfScope refuses an operator acting where its account does not
// let it (a département, an employer it does not act for).
var ErrOutOfScope = errors.New("out of the operator's scope")

// PartnerOfferID is the id of the offer an operator pushes as remoteID.
func PartnerOfferID(operatorID, remoteID string) string {
	return uuid.NewSHA1(idSpace, []byte("partner-offer/"+operatorID+"\x00"+remoteID)).String()
}

// PartnerEmployerID is the id of an employer an operator names without a
// SIRET, by its name and postal code: one per operator, name and place.
func PartnerEmployerID(operatorID, name, zipcode string) string {
	return uuid.NewSHA1(idSpace, []byte("partner-employer/"+operatorID+"\x00"+name+"\x00"+zipcode)).String()
}

// RegisterOperatorInput is the register-operator command.
type RegisterOperatorInput struct {
	Name, Email, Password    string
	Departments, EmployerIDs []string
}

// RegisterOperator registers an operator's account; its id derives from
// the e-mail, so a second account with the same e-mail is refused.
func (s *Service) RegisterOperator(ctx context.Context, m Meta, in RegisterOperatorInput) (Result, error) {
	if n := utf8.RuneCountInString(in.Password); n < 12 || len(in.Password) > 256 {
		return Result{}, domain.Problems{"password": "must be 12 to 256 characters"}.Err()
	}
	known, err := s.knownEmployers(ctx, in.EmployerIDs)
	if err != nil {
		return Result{}, err
	}
	hash, err := hashPassword(in.Password)
	if err != nil {
		return Result{}, err
	}
	id := domain.OperatorIDForEmail(in.Email)
	_, pos, err := update(ctx, s.repo, m.final(id), domain.OperatorStream(id), func(o *domain.Operator) ([]domain.Event, error) {
		return o.Register(domain.RegisterOperatorInput{Name: in.Name, Email: in.Email, PasswordHash: hash,
			Departments: in.Departments, EmployerIDs: in.EmployerIDs}, s.places, func(id string) bool { return known[id] })
	})
	return Result{ID: id, Position: pos}, err
}

// knownEmployers tells which of ids are registered employers.
func (s *Service) knownEmployers(ctx context.Context, ids []string) (map[string]bool, error) {
	known := map[string]bool{}
	for i, id := range ids {
		if i >= domain.MaxLinkedEmployers || known[id] || !domain.ValidID(id) {
			continue // the domain names what is wrong
		}
		e, err := read[domain.Employer](ctx, s.repo, domain.EmployerStream(id))
		if err != nil {
			return nil, err
		}
		known[id] = e.Exists()
	}
	return known, nil
}

// SignIn returns the id of the operator account with this e-mail and
// password, or ok false. An unknown e-mail costs the same hash.
func (s *Service) SignIn(ctx context.Context, email, password string) (id string, ok bool, err error) {
	id = domain.OperatorIDForEmail(email)
	o, err := read[domain.Operator](ctx, s.repo, domain.OperatorStream(id))
	if err != nil {
		return "", false, err
	}
	if o.Account == nil || o.Account.Email != domain.NormaliseEmail(email) {
		checkPassword(dummyHash(), password)
		return "", false, nil
	}
	return id, checkPassword(o.Account.PasswordHash, password), nil
}

// PartnerEmployer is the employer a push names: by its SIRET when the
// operator gives one, else by name and postal code.
type PartnerEmployer struct {
	Name, SIRET, Zipcode, CommuneCode, Address string
}

// PushOfferInput is an operator's push of an offer.
type PushOfferInput struct {
	OperatorID string
	Employer   PartnerEmployer
	Offer      domain.PostOfferInput // Offer.Partner names the operator and remote_id
}

// PushOffer posts an operator's offer under the id its remote_id gives.
// The offer's stream must not exist: of two pushes of one remote_id, the
// store lets one in and the other, decided again, is refused.
func (s *Service) PushOffer(ctx context.Context, m Meta, in PushOfferInput) (Result, error) {
	id := PartnerOfferID(in.OperatorID, in.Offer.Partner.RemoteID)
	existing, err := read[domain.Offer](ctx, s.repo, domain.OfferStream(id))
	if err != nil {
		return Result{}, err
	}
	if existing.Exists() {
		return Result{}, duplicate(in.Offer.Partner.RemoteID)
	}
	op, err := read[domain.Operator](ctx, s.repo, domain.OperatorStream(in.OperatorID))
	if err != nil {
		return Result{}, err
	}
	if dep, ok := s.places.CommuneDepartment(in.Offer.CommuneCode); ok && !op.PublishesIn(dep) {
		return Result{}, fmt.Errorf("%w: this operator may not publish in département %s", ErrOutOfScope, dep)
	}
	employer, err := s.partnerEmployer(ctx, m, op, in.OperatorID, in.Employer)
	if err != nil {
		return Result{}, err
	}
	_, pos, err := update(ctx, s.repo, m.final(id), domain.OfferStream(id), func(o *domain.Offer) ([]domain.Event, error) {
		if o.Exists() {
			return nil, duplicate(in.Offer.Partner.RemoteID)
		}
		return domain.PostOffer(id, employer, in.Offer, s.places, m.Now)
	})
	return Result{ID: id, Position: pos}, err
}

func duplicate(remoteID string) error {
	return &domain.RuleError{Rule: "duplicate_remote_id", Message: "this operator already pushed an offer with remote_id " + remoteID,
		Fields: map[string]string{"remote_id": "already pushed"}}
}

// partnerEmployer finds the employer a push names, registering it for the
// operator when it is new. An employer of a SIRET someone else registered
// is the operator's only when the back office linked it.
func (s *Service) partnerEmployer(ctx context.Context, m Meta, op *domain.Operator, operatorID string, in PartnerEmployer) (*domain.Employer, error) {
	reg := domain.RegisterEmployerInput{Name: in.Name, SIRET: in.SIRET, Kind: "company", CommuneCode: in.CommuneCode, Address: in.Address}
	id := PartnerEmployerID(operatorID, strings.ToLower(strings.TrimSpace(in.Name)), in.Zipcode)
	if in.SIRET != "" {
		id = EmployerID(in.SIRET)
		e, err := read[domain.Employer](ctx, s.repo, domain.EmployerStream(id))
		if err != nil || !e.Exists() {
			return s.registerPartnerEmployer(ctx, m, id, reg, err)
		}
		mine, err := s.registeredBy(ctx, domain.EmployerStream(id), operatorID)
		if err != nil || mine || op.ActsFor(id) {
			return e, err
		}
		return nil, fmt.Errorf("%w: the employer of SIRET %s is registered and this operator does not act for it", ErrOutOfScope, in.SIRET)
	}
	return s.registerPartnerEmployer(ctx, m, id, reg, nil)
}

func (s *Service) registerPartnerEmployer(ctx context.Context, m Meta, id string, in domain.RegisterEmployerInput, err error) (*domain.Employer, error) {
	if err != nil {
		return nil, err
	}
	e, _, err := update(ctx, s.repo, m.Step("employer"), domain.EmployerStream(id), func(e *domain.Employer) ([]domain.Event, error) {
		return e.RegisterForOperator(id, in, s.places)
	})
	return e, err
}

// registeredBy reports whether the operator registered the stream's
// aggregate (the actor of its first event).
func (s *Service) registeredBy(ctx context.Context, stream, operatorID string) (bool, error) {
	evs, err := s.repo.store.ReadStream(ctx, stream, eventstore.Forwards, 0, 1)
	if err != nil || len(evs) == 0 {
		return false, err
	}
	md, err := eventstore.DecodeMetadata(evs[0].Metadata)
	return err == nil && md.Actor.Role == auth.Operator && md.Actor.Subject == operatorID, nil
}

// PartnerOffer is the offer the operator pushed as remoteID; another
// operator's, or none, is not found.
func (s *Service) PartnerOffer(ctx context.Context, operatorID, remoteID string) (*domain.Offer, error) {
	o, err := read[domain.Offer](ctx, s.repo, domain.OfferStream(PartnerOfferID(operatorID, remoteID)))
	if err != nil {
		return nil, err
	}
	if !o.Exists() || o.Posted.Partner == nil || o.Posted.Partner.OperatorID != operatorID {
		return nil, domain.NotFoundf("no offer of this operator has remote_id %s", remoteID)
	}
	return o, nil
}

// UpdatePartnerInput is an operator's partial update of its offer: nil
// parts change nothing; Publish true reopens the offer, false withdraws it.
type UpdatePartnerInput struct {
	Amend   *domain.AmendOfferInput
	Partner *domain.PartnerOffer
	Publish *bool
}

// UpdatePartnerOffer applies an operator's update to its offer, each part
// by the command that owns it.
func (s *Service) UpdatePartnerOffer(ctx context.Context, m Meta, operatorID, remoteID string, in UpdatePartnerInput) (Result, error) {
	o, err := s.PartnerOffer(ctx, operatorID, remoteID)
	if err != nil {
		return Result{}, err
	}
	if o.Deleted {
		return Result{}, domain.Refuse("offer_deleted", "the offer was deleted")
	}
	id := o.Posted.OfferID
	res := Result{ID: id}
	if in.Partner != nil {
		_, res.Position, err = update(ctx, s.repo, m.Step("partner"), domain.OfferStream(id), func(o *domain.Offer) ([]domain.Event, error) {
			return o.ChangePartner(*in.Partner)
		})
		if err != nil {
			return res, err
		}
	}
	if in.Amend != nil {
		if res, err = s.AmendOffer(ctx, m.Step("amend"), id, *in.Amend); err != nil {
			return res, err
		}
	}
	switch {
	case in.Publish == nil:
		return res, nil
	case *in.Publish:
		return s.ReopenOffer(ctx, m.Step("publish"), id)
	default:
		return s.WithdrawOffer(ctx, m.Step("unpublish"), id, "unpublished by its operator")
	}
}

// DeletePartnerOffer deletes an operator's offer (withdrawn and marked
// deleted); deleting it again is refused.
func (s *Service) DeletePartnerOffer(ctx context.Context, m Meta, operatorID, remoteID string) (Result, error) {
	o, err := s.PartnerOffer(ctx, operatorID, remoteID)
	if err != nil {
		return Result{}, err
	}
	return updateByID(ctx, s.repo, m, "offer", domain.OfferStream, o.Posted.OfferID, (*domain.Offer).Delete)
}

// Operator is the operator's state: its account and the employers it
// was linked to.
func (s *Service) Operator(ctx context.Context, id string) (*domain.Operator, error) {
	if !domain.ValidOperatorID(id) {
		return &domain.Operator{}, nil
	}
	return read[domain.Operator](ctx, s.repo, domain.OperatorStream(id))
}

// Head is the log's last position: a partner API query, whose clients
// know no positions, reads the read models once they have applied it.
func (s *Service) Head(ctx context.Context) (eventstore.Position, error) {
	return s.repo.store.Head(ctx)
}
