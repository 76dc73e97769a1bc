package domain_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"passerelle/domain"
	"passerelle/domain/allocation"
)

func TestCampaignCreate(t *testing.T) {
	now := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	var c domain.Campaign
	in := domain.CampaignInput{Name: " Val-de-Marne 3e ", Departments: []string{"94", "94"}, Grades: []string{"3e"}, Weeks: []string{"2027-W10"}}
	evs, err := c.Create("k1", in, places, now)
	if err != nil || len(evs) != 1 {
		t.Fatalf("create: %v %v", evs, err)
	}
	ev := evs[0].(*domain.CampaignCreated)
	if ev.Name != "Val-de-Marne 3e" || len(ev.Scope.Departments) != 1 {
		t.Fatalf("created %+v", ev)
	}
	c.Apply(ev)
	if evs, err := c.Create("k1", in, places, now); err != nil || len(evs) != 0 {
		t.Fatalf("created again: %v %v", evs, err)
	}
	_, err = (&domain.Campaign{}).Create("k2", domain.CampaignInput{Departments: []string{"999"}, Communes: []string{"75056"}, Grades: []string{"1re"}, Target: -1}, places, now)
	var verr *domain.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("bad campaign: %v", err)
	}
	for _, f := range []string{"name", "departments", "communes", "grades", "weeks", "target"} {
		if verr.Fields[f] == "" {
			t.Errorf("field %s not named: %v", f, verr.Fields)
		}
	}
}

func TestRoundPartsAndPublish(t *testing.T) {
	now := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	m := allocation.Market{Seed: 3, Slots: []allocation.Slot{{OfferID: "o1", Weeks: []string{"2027-W10"}, Seats: domain.RoundPart + 10}}}
	for i := range domain.RoundPart + 5 {
		m.Pupils = append(m.Pupils, allocation.Pupil{ID: string(rune('a'+i%26)) + "x", Group: "none", Choices: []allocation.Choice{{Slot: 0}}})
	}
	var r domain.Round
	if _, err := r.Publish(now); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("publish before computed: %v", err)
	}
	evs := domain.ComputeRound("r1", "k1", domain.RoundInput{Seed: 3, MaxChoices: 10}, m, now)
	if len(evs) != 3 {
		t.Fatalf("%d events, want two parts and the round", len(evs))
	}
	for _, e := range evs {
		r.Apply(e)
	}
	if !r.Exists() || len(r.Matches) != domain.RoundPart+5 || r.Computed.Matched != len(r.Matches) || r.Computed.Parts != 2 || r.Computed.Figures.SeatsLeft != 5 {
		t.Fatalf("round %+v with %d matches", r.Computed, len(r.Matches))
	}
	evs, err := r.Publish(now)
	if err != nil || len(evs) != 1 {
		t.Fatalf("publish: %v %v", evs, err)
	}
	r.Apply(evs[0])
	if evs, err := r.Publish(now); err != nil || len(evs) != 0 {
		t.Fatalf("published again: %v %v", evs, err)
	}
}

func TestOfferSlots(t *testing.T) {
	for _, tc := range []struct {
		grades, weeks []string
		want          string
	}{
		{[]string{"3e"}, []string{"2027-W10", "2027-W11"}, "[[2027-W10] [2027-W11]]"},
		{[]string{"2de"}, []string{"2027-W24", "2027-W25", "2027-W26"}, "[[2027-W24 2027-W25] [2027-W26]]"},
		{[]string{"2de"}, []string{"2027-W24", "2027-W26"}, "[[2027-W24] [2027-W26]]"},
	} {
		var o domain.Offer
		grades := make([]domain.Grade, len(tc.grades))
		for i, g := range tc.grades {
			grades[i] = domain.Grade(g)
		}
		o.Apply(&domain.OfferPosted{OfferID: "o1", Grades: grades, Weeks: tc.weeks, Seats: 1})
		if got := fmt.Sprint(o.Slots()); got != tc.want {
			t.Errorf("%v %v: slots %s, want %s", tc.grades, tc.weeks, got, tc.want)
		}
	}
}
