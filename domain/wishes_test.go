package domain_test

import (
	"strings"
	"testing"

	"passerelle/domain"
)

func TestRecordWishes(t *testing.T) {
	p := pupil3e(t)
	offer := newOffer(t, "offer-1", collegeOfferInput())
	offers := map[string]*domain.Offer{"offer-1": offer}
	in := domain.WishesInput{Sectors: []string{"s12", "s3"}, MaxDistanceKM: 15, Weeks: []string{week26, week25}, Offers: []string{"offer-1"}}
	w := only[*domain.PupilWishesRecorded](t, must(t)(p.RecordWishes(in, places, offers)))
	if w.PupilID != "pupil-3e" || strings.Join(w.Weeks, ",") != week25+","+week26 || strings.Join(w.Sectors, ",") != "s12,s3" {
		t.Fatalf("wishes = %+v: the pupil's, weeks sorted, sectors in their rank", w)
	}
	apply(p, w)
	wantNothing(t)(p.RecordWishes(in, places, offers))
	in.MaxDistanceKM = 20
	only[*domain.PupilWishesRecorded](t, must(t)(p.RecordWishes(in, places, offers)))

	for name, c := range map[string]struct {
		edit  func(*domain.WishesInput)
		field string
	}{
		"six sectors":      {func(in *domain.WishesInput) { in.Sectors = []string{"s1", "s2", "s3", "s4", "s5", "s6"} }, "sectors"},
		"unknown sector":   {func(in *domain.WishesInput) { in.Sectors = []string{"s99"} }, "sectors"},
		"sector twice":     {func(in *domain.WishesInput) { in.Sectors = []string{"s1", "s1"} }, "sectors"},
		"no distance":      {func(in *domain.WishesInput) { in.MaxDistanceKM = 0 }, "max_distance_km"},
		"too far":          {func(in *domain.WishesInput) { in.MaxDistanceKM = domain.MaxDistanceKM + 1 }, "max_distance_km"},
		"not a week":       {func(in *domain.WishesInput) { in.Weeks = []string{"2026-25"} }, "weeks"},
		"unknown offer":    {func(in *domain.WishesInput) { in.Offers = []string{"offer-2"} }, "offers"},
		"offer twice":      {func(in *domain.WishesInput) { in.Offers = []string{"offer-1", "offer-1"} }, "offers"},
		"too many offers":  {func(in *domain.WishesInput) { in.Offers = make([]string, domain.MaxWishedOffers+1) }, "offers"},
		"sectors optional": {func(in *domain.WishesInput) { in.Sectors = nil; in.MaxDistanceKM = 0 }, "max_distance_km"},
	} {
		t.Run(name, func(t *testing.T) {
			in := domain.WishesInput{Sectors: []string{"s12"}, MaxDistanceKM: 10}
			c.edit(&in)
			evs, err := p.RecordWishes(in, places, offers)
			wantInvalid(t, evs, err, c.field)
		})
	}
	var nobody domain.Pupil
	evs, err := nobody.RecordWishes(in, places, offers)
	wantIs(t, evs, err, domain.ErrNotFound)
}

// The rules the read side shares with the decisions.
func TestEligibilityRules(t *testing.T) {
	rep := domain.SchoolRegistered{UAI: "0941234A", Kind: "college", EducationPriority: "rep"}
	plain := domain.SchoolRegistered{UAI: "0940001B", Kind: "college", EducationPriority: "none"}
	if !(domain.Reservation{}).Admits(plain) || !(domain.Reservation{REP: true}).Admits(rep) ||
		(domain.Reservation{REP: true}).Admits(plain) || !(domain.Reservation{Schools: []string{"0940001B"}}).Admits(plain) ||
		(domain.Reservation{QPV: true}).Admits(domain.SchoolRegistered{Kind: "college", QPV: true}) {
		t.Error("Reservation.Admits")
	}
	birth, _ := domain.ParseDate("2012-06-20")
	start, _ := domain.ParseWeek(week25) // 2026-06-15: five days short of 14
	if domain.AgeAllows("company", false, birth, start) || !domain.AgeAllows("company", true, birth, start) ||
		!domain.AgeAllows("public", false, birth, start) || !domain.AgeAllows("company", false, birth, start.AddDate(0, 0, 7)) {
		t.Error("AgeAllows")
	}
	if !domain.PeriodFits("3e", []string{week25}) || domain.PeriodFits("3e", []string{week25, week26}) ||
		!domain.PeriodFits("2de", []string{week25, week26}) || domain.PeriodFits("2de", []string{week25, week27}) {
		t.Error("PeriodFits")
	}
	if domain.Started(week25, now) || !domain.Started("2026-W10", now) {
		t.Error("Started")
	}
}
