package history_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"passerelle/commands"
	"passerelle/domain"
	"passerelle/domain/allocation"
	"passerelle/domain/refdata"
	"passerelle/eventstore"
	"passerelle/eventstore/embedded"
	"passerelle/history"
)

// TestMarketScope: the log's market keeps the pupils of the scope's
// communes and grades, the slots of its weeks that have not started, and
// ranks each pupil's choices by distance, at most maxChoices.
func TestMarketScope(t *testing.T) {
	store, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	places := refdata.MustLoad()
	svc := commands.NewService(store, places)
	ctx := context.Background()
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	n := 0
	meta := func() commands.Meta {
		n++
		return commands.Meta{CommandID: fmt.Sprint("cmd-", n), Actor: eventstore.Actor{Role: "backoffice"}, Now: now}
	}
	must := func(r commands.Result, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	for _, s := range []struct{ uai, commune string }{{"0940201A", "94028"}, {"0940202B", "94046"}} {
		must(svc.RegisterSchool(ctx, meta(), domain.RegisterSchoolInput{UAI: s.uai, Name: "Collège", Kind: "college", CommuneCode: s.commune, EducationPriority: "none"}))
	}
	pupil := func(uai, grade string) string {
		return must(svc.RegisterPupil(ctx, meta(), domain.RegisterPupilInput{SchoolUAI: uai, Grade: grade, ClassName: "A", FirstName: "Léa", LastName: "M",
			BirthDate: "2012-01-01", Guardians: []domain.Guardian{{Name: "P", Email: "p@example.fr", Phone: "0600000000"}}}))
	}
	inCreteil3e, _, _ := pupil("0940201A", "3e"), pupil("0940201A", "4e"), pupil("0940202B", "3e")
	emp := must(svc.RegisterEmployer(ctx, meta(), domain.RegisterEmployerInput{Name: "Garage", SIRET: "73282932000074", Kind: "public", CommuneCode: "94028", Address: "1 rue"}))
	offer := func(lat, lon float64, weeks ...string) string {
		return must(svc.PostOffer(ctx, meta(), commands.PostOfferInput{EmployerID: emp, PostOfferInput: domain.PostOfferInput{
			Title: "Atelier", Description: "Atelier", Sector: "s1", Grades: []string{"4e", "3e"}, Weeks: weeks, Seats: 2,
			CommuneCode: "94028", Address: "1 rue", Lat: lat, Lon: lon}}))
	}
	far := offer(48.80, 2.50, "2026-W50", "2027-W02")
	near := offer(48.785, 2.452, "2026-W46", "2026-W50") // W46 starts 9 November

	clock := func() time.Time { return now.AddDate(0, 0, 10) } // W46 has started
	scope := allocation.Scope{Departments: []string{"94"}, Communes: []string{"94028"}, Grades: []string{"3e"}, Weeks: []string{"2026-W46", "2026-W50"}}
	m, err := history.NewMarket(store, places, clock).Market(ctx, scope, 5)
	if err != nil {
		t.Fatal(err)
	}
	var slots []string
	for _, s := range m.Slots {
		slots = append(slots, s.OfferID+"/"+s.Weeks[0])
	}
	if want := []string{far + "/2026-W50", near + "/2026-W50"}; !slices.Equal(slices.Sorted(slices.Values(slots)), slices.Sorted(slices.Values(want))) {
		t.Fatalf("slots %v, want far and near in W50 only", slots)
	}
	if len(m.Pupils) != 1 || m.Pupils[0].ID != inCreteil3e {
		t.Fatalf("pupils %+v, want the 3e pupil in Créteil only", m.Pupils)
	}
	cs := m.Pupils[0].Choices
	if len(cs) != 2 || m.Slots[cs[0].Slot].OfferID != near || cs[0].DistanceKM > cs[1].DistanceKM {
		t.Fatalf("choices %+v, want near then far", cs)
	}
	if m, _ := history.NewMarket(store, places, clock).Market(ctx, scope, 1); len(m.Pupils[0].Choices) != 1 {
		t.Fatalf("max 1 choice: %+v", m.Pupils[0].Choices)
	}
}
