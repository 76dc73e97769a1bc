package domain_test

import (
	"errors"
	"testing"

	"passerelle/domain"
)

func TestCoversSecondePeriod(t *testing.T) {
	if !domain.CoversSecondePeriod([]string{"2026-W26", "2026-W25"}) || domain.CoversSecondePeriod([]string{"2026-W25"}) ||
		domain.CoversSecondePeriod(nil) {
		t.Error("the seconde period is both its weeks")
	}
}

func TestDeletePartnerOffer(t *testing.T) {
	var o domain.Offer
	if _, err := o.Delete(); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("deleting no offer: %v", err)
	}
	o.Apply(&domain.OfferPosted{OfferID: "o1", Partner: &domain.PartnerOffer{OperatorID: "op-1", RemoteID: "r1"}})
	evs, err := o.Delete()
	if err != nil || len(evs) != 2 || evs[0].EventType() != "OfferWithdrawn" || evs[1].EventType() != "OfferDeleted" {
		t.Fatalf("delete: %v %v", evs, err)
	}
	for _, e := range evs {
		o.Apply(e)
	}
	var rule *domain.RuleError
	for name, do := range map[string]func() ([]domain.Event, error){
		"delete again": o.Delete, "reopen": o.Reopen,
		"change": func() ([]domain.Event, error) { return o.ChangePartner(domain.PartnerOffer{OperatorID: "op-1"}) },
	} {
		if _, err := do(); !errors.As(err, &rule) || rule.Rule != "offer_deleted" {
			t.Errorf("%s after a delete: %v", name, err)
		}
	}
}

func TestRegisterOperator(t *testing.T) {
	var o domain.Operator
	in := domain.RegisterOperatorInput{Name: "Viens voir mon taf", Email: " API@VVMT.example ", PasswordHash: "h", Departments: []string{"75", "94"}}
	evs, err := o.Register(in, places, func(string) bool { return false })
	if err != nil || len(evs) != 1 {
		t.Fatalf("register: %v %v", evs, err)
	}
	reg := evs[0].(*domain.OperatorRegistered)
	if reg.Email != "api@vvmt.example" || reg.OperatorID != domain.OperatorIDForEmail("api@vvmt.example") || !domain.ValidOperatorID(reg.OperatorID) {
		t.Errorf("registered %+v", reg)
	}
	o.Apply(reg)
	if !o.PublishesIn("94") || o.PublishesIn("13") {
		t.Error("départements")
	}
	var rule *domain.RuleError
	if _, err := o.Register(in, places, nil); !errors.As(err, &rule) || rule.Fields["email"] == "" {
		t.Errorf("the same e-mail again: %v", err)
	}
	var verr *domain.ValidationError
	bad := domain.RegisterOperatorInput{Name: " ", Email: "not an e-mail", Departments: []string{"99", "75", "75"}}
	if _, err := (&domain.Operator{}).Register(bad, places, nil); !errors.As(err, &verr) ||
		len(verr.Fields) != 4 || verr.Fields["departments[2]"] == "" {
		t.Errorf("bad input: %v", err)
	}
}
