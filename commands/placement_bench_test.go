package commands_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"passerelle/commands"
	"passerelle/domain"
	"passerelle/domain/refdata"
	"passerelle/eventstore"
	"passerelle/eventstore/embedded"
)

// BenchmarkPlacement runs one whole placement per iteration on the
// embedded store: a pupil applies, the employer accepts, the pupil
// confirms (a convention is drafted).
func BenchmarkPlacement(b *testing.B) {
	s, err := embedded.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	svc, ctx, n := commands.NewService(s, refdata.MustLoad()), context.Background(), 0
	meta := func() commands.Meta {
		n++
		return commands.Meta{CommandID: fmt.Sprint("cmd-", n), Actor: eventstore.Actor{Role: "backoffice"}, Now: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	}
	must := func(r commands.Result, err error) commands.Result {
		if err != nil {
			b.Fatal(err)
		}
		return r
	}
	emp := must(svc.RegisterEmployer(ctx, meta(), domain.RegisterEmployerInput{Name: "Garage", SIRET: "73282932000074", Kind: "company", CommuneCode: "94028", Address: "3 rue"}))
	must(svc.RegisterSchool(ctx, meta(), domain.RegisterSchoolInput{UAI: "0941234A", Name: "Collège", Kind: "college", CommuneCode: "94028", EducationPriority: "none"}))
	var offers []string
	for range 1 + b.N/400 {
		offers = append(offers, must(svc.PostOffer(ctx, meta(), commands.PostOfferInput{EmployerID: emp.ID, PostOfferInput: domain.PostOfferInput{
			Title: "Atelier", Description: "Découverte", Sector: "s1", Grades: []string{"3e"}, Weeks: []string{"2026-W50"},
			Seats: 500, CommuneCode: "94028", Address: "3 rue", Lat: 48.79, Lon: 2.45}})).ID)
	}
	b.ResetTimer()
	for i := range b.N {
		p := must(svc.RegisterPupil(ctx, meta(), domain.RegisterPupilInput{SchoolUAI: "0941234A", Grade: "3e", ClassName: "3eA",
			FirstName: "Élève", LastName: fmt.Sprint(i), BirthDate: "2012-05-01",
			Guardians: []domain.Guardian{{Name: "Parent", Email: "p@example.fr", Phone: "0600000000"}}}))
		app := must(svc.Apply(ctx, meta(), commands.ApplyInput{OfferID: offers[i/400], PupilID: p.ID,
			SubmitInput: domain.SubmitInput{Weeks: []string{"2026-W50"}, Motivation: "motivé"}}))
		must(svc.Accept(ctx, meta(), app.ID))
		must(svc.Confirm(ctx, meta(), app.ID))
	}
}
