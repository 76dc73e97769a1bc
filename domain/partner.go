package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/mail"
	"reflect"
	"slices"
	"strings"
)

// SecondePeriod is the national period of the stage de seconde: 15–26 June
// 2026. A seconde offer pushed by an operator covers both weeks.
var SecondePeriod = []string{"2026-W25", "2026-W26"}

// CoversSecondePeriod reports whether weeks hold every week of the
// seconde period.
func CoversSecondePeriod(weeks []string) bool {
	for _, w := range SecondePeriod {
		if !slices.Contains(weeks, w) {
			return false
		}
	}
	return true
}

// PartnerOffer is what an operator's push (the national partner API v2)
// carries beyond our offer's terms: who pushed it under which id of its
// own, where it is published, and the details that API keeps as given.
type PartnerOffer struct {
	OperatorID          string              `json:"operator_id"`
	RemoteID            string              `json:"remote_id"`
	Permalink           string              `json:"permalink"`
	EmployerDescription string              `json:"employer_description,omitempty"`
	EmployerWebsite     string              `json:"employer_website,omitempty"`
	Street              string              `json:"street,omitempty"`
	Zipcode             string              `json:"zipcode"`
	City                string              `json:"city"`
	MaxCandidates       int                 `json:"max_candidates"`
	IsPublic            bool                `json:"is_public,omitempty"`
	HandicapAccessible  bool                `json:"handicap_accessible,omitempty"`
	LunchBreak          string              `json:"lunch_break,omitempty"`
	DailyHours          map[string][]string `json:"daily_hours,omitempty"`
	// CommuneCentre: the coordinates were missing or too far from the
	// postal code's commune, so the offer took the commune's centre.
	CommuneCentre bool `json:"commune_centre,omitempty"`
}

// OfferDeleted records that the operator deleted its offer (a soft
// delete: the offer was withdrawn first and stays in the log).
type OfferDeleted struct {
	OfferID string `json:"offer_id"`
}

// PartnerOfferChanged carries the new partner details of an offer, all of
// them, changed or not.
type PartnerOfferChanged struct {
	OfferID string       `json:"offer_id"`
	Partner PartnerOffer `json:"partner"`
}

// EventType implements Event.
func (OfferDeleted) EventType() string { return "OfferDeleted" }

// EventType implements Event.
func (PartnerOfferChanged) EventType() string { return "PartnerOfferChanged" }

// Delete deletes a partner's offer: it is withdrawn (when it is not) and
// marked deleted; deleting it again is refused.
func (o *Offer) Delete() ([]Event, error) {
	if !o.exists {
		return nil, NotFoundf("offer")
	}
	if o.Deleted {
		return nil, Refuse("offer_deleted", "the offer was deleted")
	}
	var evs []Event
	if !o.Withdrawn {
		evs = append(evs, &OfferWithdrawn{OfferID: o.Posted.OfferID, Reason: "deleted by its operator"})
	}
	return append(evs, &OfferDeleted{OfferID: o.Posted.OfferID}), nil
}

// ChangePartner replaces the partner details of an offer an operator
// pushed; the same details again change nothing.
func (o *Offer) ChangePartner(p PartnerOffer) ([]Event, error) {
	switch {
	case !o.exists || o.Posted.Partner == nil:
		return nil, NotFoundf("offer")
	case o.Deleted:
		return nil, Refuse("offer_deleted", "the offer was deleted")
	case reflect.DeepEqual(*o.Posted.Partner, p):
		return nil, nil
	}
	return []Event{&PartnerOfferChanged{OfferID: o.Posted.OfferID, Partner: p}}, nil
}

// OperatorRegistered records an operator's account: who signs in with
// which e-mail (the password's hash only), and the départements it may
// publish in (none: all).
type OperatorRegistered struct {
	OperatorID   string   `json:"operator_id"`
	Name         string   `json:"name"`
	Email        string   `json:"email"`
	PasswordHash string   `json:"password_hash"`
	Departments  []string `json:"departments"`
}

// EventType implements Event.
func (OperatorRegistered) EventType() string { return "OperatorRegistered" }

// NormaliseEmail is the form an e-mail is compared in.
func NormaliseEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// OperatorIDForEmail is the id of the operator account of an e-mail: its
// stream is found from the e-mail alone, and a second account with the
// same e-mail lands on the same stream, where it is refused.
func OperatorIDForEmail(email string) string {
	sum := sha256.Sum256([]byte("operator-email/" + NormaliseEmail(email)))
	return "op-" + hex.EncodeToString(sum[:12])
}

// RegisterOperatorInput is the register-operator command, the password
// already hashed by the command layer.
type RegisterOperatorInput struct {
	Name, Email, PasswordHash string
	Departments, EmployerIDs  []string
}

// Register decides an operator's account on the stream of its e-mail's
// id, with the employers it may act for linked at once.
func (o *Operator) Register(in RegisterOperatorInput, places Places, exists func(string) bool) ([]Event, error) {
	p := Problems{}
	required(p, "name", in.Name, 200)
	email := NormaliseEmail(in.Email)
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email || len(email) > 254 {
		p.Add("email", "must be an e-mail address")
	}
	if len(in.Departments) > 120 {
		p.Add("departments", "at most 120 départements")
	}
	for i, d := range in.Departments {
		if !places.DepartmentExists(d) || slices.Contains(in.Departments[:i], d) {
			p.Add(fmt.Sprintf("departments[%d]", i), "must be a département code, listed once")
		}
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	id := OperatorIDForEmail(email)
	if o.Account != nil {
		return nil, &RuleError{Rule: "email_registered", Message: "an operator account already has this e-mail: " + o.Account.OperatorID,
			Fields: map[string]string{"email": "already registered as operator " + o.Account.OperatorID}}
	}
	evs := []Event{&OperatorRegistered{OperatorID: id, Name: strings.TrimSpace(in.Name), Email: email,
		PasswordHash: in.PasswordHash, Departments: append([]string{}, in.Departments...)}}
	if len(in.EmployerIDs) > 0 {
		link, err := o.LinkEmployers(id, in.EmployerIDs, exists)
		if err != nil {
			return nil, err
		}
		evs = append(evs, link...)
	}
	return evs, nil
}

// PublishesIn reports whether the operator's account lets it publish in
// the département.
func (o *Operator) PublishesIn(department string) bool {
	return o.Account == nil || len(o.Account.Departments) == 0 || slices.Contains(o.Account.Departments, department)
}

// RegisterForOperator registers an employer an operator's push names: the
// same checks as a registration, but the SIRET is optional (an operator
// may not know it). Once registered, the employer is used as it is.
func (a *Employer) RegisterForOperator(id string, in RegisterEmployerInput, places Places) ([]Event, error) {
	if a.exists {
		return nil, nil
	}
	siret := in.SIRET
	if siret == "" {
		in.SIRET = "00000000000000" // Luhn-valid placeholder for the checks; not recorded
	}
	evs, err := RegisterEmployer(id, in, places)
	if err != nil {
		return nil, err
	}
	evs[0].(*EmployerRegistered).SIRET = siret
	return evs, nil
}
