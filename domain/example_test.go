package domain_test

import (
	"errors"
	"fmt"
	"time"

	"passerelle/domain"
	"passerelle/domain/refdata"
)

func ExampleParseWeek() {
	monday, err := domain.ParseWeek("2025-W25")
	fmt.Println(monday.Format("Monday 2 January 2006"), err)
	_, err = domain.ParseWeek("2025-W53")
	fmt.Println(err)
	// Output:
	// Monday 16 June 2025 <nil>
	// week 53 does not exist in 2025
}

func ExampleValidSIRET() {
	fmt.Println(domain.ValidSIRET("73282932000074"))
	fmt.Println(domain.ValidSIRET("73282932000075"))
	fmt.Println(domain.ValidSIRET("35600000049837")) // La Poste: digit sum 45
	// Output:
	// true
	// false
	// true
}

// An offer's seats are held week by week: deciding returns events, and
// only applying them changes the aggregate.
func Example_offer() {
	places := refdata.MustLoad()
	var employer domain.Employer
	evs, _ := domain.RegisterEmployer("emp-1", domain.RegisterEmployerInput{
		Name: "Mairie de Créteil", SIRET: "73282932000074", Kind: "public",
		CommuneCode: "94028", Address: "Place Salvador Allende",
	}, places)
	employer.Apply(evs[0])

	var offer domain.Offer
	evs, err := domain.PostOffer("off-1", &employer, domain.PostOfferInput{
		Title: "Services techniques", Description: "Une semaine avec les jardiniers.",
		Sector: "s1", Grades: []string{"3e"}, Weeks: []string{"2026-W25"}, Seats: 1,
		CommuneCode: "94028", Address: "Place Salvador Allende", Lat: 48.7771, Lon: 2.4534,
	}, places, time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	fmt.Println(evs[0].EventType(), err)
	offer.Apply(evs[0])
	fmt.Println("free in 2026-W25:", offer.Free("2026-W25"))

	app := &domain.Application{Submitted: domain.ApplicationSubmitted{ApplicationID: "app-1", PupilID: "p-1", Weeks: []string{"2026-W25"}}}
	evs, _ = offer.HoldSeat(app)
	fmt.Println(evs[0].EventType())
	offer.Apply(evs[0])
	fmt.Println("free in 2026-W25:", offer.Free("2026-W25"))

	other := &domain.Application{Submitted: domain.ApplicationSubmitted{ApplicationID: "app-2", PupilID: "p-2", Weeks: []string{"2026-W25"}}}
	_, err = offer.HoldSeat(other)
	fmt.Println(errors.Is(err, domain.ErrConflict), err)

	for _, e := range offer.ReleaseSeat("app-1") {
		fmt.Println(e.EventType())
		offer.Apply(e)
	}
	fmt.Println("free in 2026-W25:", offer.Free("2026-W25"))
	// Output:
	// OfferPosted <nil>
	// free in 2026-W25: 1
	// SeatHeld
	// free in 2026-W25: 0
	// true no seat left in week 2026-W25
	// SeatReleased
	// free in 2026-W25: 1
}

// An application goes from submitted to accepted to confirmed; a retried
// command decides nothing, and a transition that is not allowed is a
// conflict.
func Example_application() {
	places := refdata.MustLoad()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

	var employer domain.Employer
	evs, _ := domain.RegisterEmployer("emp-1", domain.RegisterEmployerInput{
		Name: "Boulangerie Martin", SIRET: "73282932000074", Kind: "company", CommuneCode: "94028", Address: "12 rue du Général Leclerc",
	}, places)
	employer.Apply(evs[0])
	var offer domain.Offer
	evs, _ = domain.PostOffer("off-1", &employer, domain.PostOfferInput{
		Title: "Découverte du fournil", Description: "Une semaine au fournil.", Sector: "s12",
		Grades: []string{"2de"}, Weeks: []string{"2026-W25", "2026-W26"}, Seats: 2,
		CommuneCode: "94028", Address: "12 rue du Général Leclerc", Lat: 48.78454, Lon: 2.45233,
	}, places, now)
	offer.Apply(evs[0])
	var school domain.School
	evs, _ = school.Register(domain.RegisterSchoolInput{
		UAI: "0945678B", Name: "Lycée Léon Blum", Kind: "lycee", CommuneCode: "94028", EducationPriority: "none",
	}, places)
	school.Apply(evs[0])
	var pupil domain.Pupil
	evs, _ = domain.RegisterPupil("pupil-1", domain.RegisterPupilInput{
		SchoolUAI: "0945678B", Grade: "2de", ClassName: "2nde3", FirstName: "Hugo", LastName: "Bernard", BirthDate: "2010-09-01",
		Guardians: []domain.Guardian{{Name: "Nadia Bernard", Email: "nadia@example.fr", Phone: "0612345678"}},
	}, &school, now)
	pupil.Apply(evs[0])

	var app domain.Application
	step := func(name string, evs []domain.Event, err error) {
		for _, e := range evs {
			app.Apply(e)
		}
		fmt.Printf("%-9s events=%d status=%s", name, len(evs), app.Status)
		var re *domain.RuleError
		if errors.As(err, &re) {
			fmt.Printf(" refused by %s: %v", re.Rule, err)
		}
		fmt.Println()
	}
	in := domain.SubmitInput{Weeks: []string{"2026-W26", "2026-W25"}, Motivation: "J'aime le pain."}
	evs, err := app.Submit("app-1", &offer, &pupil, &school, in, now)
	step("submit", evs, err)
	evs, err = app.Submit("app-1", &offer, &pupil, &school, in, now)
	step("submit", evs, err)
	fmt.Println("weeks:", app.Submitted.Weeks)
	evs, err = app.Confirm("conv-1")
	step("confirm", evs, err)
	evs, err = app.MarkRead()
	step("read", evs, err)
	evs, err = app.Accept(now.Add(48 * time.Hour))
	step("accept", evs, err)
	deadline, _ := app.Deadline()
	fmt.Println("confirm by:", deadline.Format(time.DateOnly))
	evs, err = app.Confirm("conv-1")
	step("confirm", evs, err)
	evs, err = app.Withdraw("Je préfère un autre stage.", time.Date(2026, 6, 15, 8, 0, 0, 0, time.UTC))
	step("withdraw", evs, err)
	evs, err = app.Withdraw("Je préfère un autre stage.", now.Add(72*time.Hour))
	fmt.Printf("withdraw releases the seat: %v\n", evs[0].(*domain.ApplicationWithdrawn).SeatReleased)
	step("withdraw", evs, err)
	evs, err = app.Accept(now)
	step("accept", evs, err)
	// Output:
	// submit    events=1 status=submitted
	// submit    events=0 status=submitted
	// weeks: [2026-W25 2026-W26]
	// confirm   events=0 status=submitted refused by wrong_status: cannot confirm an application that is submitted
	// read      events=1 status=read
	// accept    events=1 status=accepted
	// confirm by: 2026-03-11
	// confirm   events=1 status=confirmed
	// withdraw  events=0 status=confirmed refused by internship_started: the internship has started: it can no longer be withdrawn
	// withdraw releases the seat: true
	// withdraw  events=1 status=withdrawn
	// accept    events=0 status=withdrawn refused by wrong_status: cannot accept an application that is withdrawn
}

// A convention is completed by the employer and the school, then signed
// when the last required role signs the current version of the document.
func Example_convention() {
	app := &domain.Application{Submitted: domain.ApplicationSubmitted{
		ApplicationID: "app-1", PupilID: "pupil-1", SchoolUAI: "0941234A", Weeks: []string{"2026-W25"},
	}}
	offer := &domain.Offer{Posted: domain.OfferPosted{OfferID: "off-1", EmployerID: "emp-1", Title: "Découverte du fournil"}}
	var c domain.Convention
	for _, e := range domain.DraftConvention("conv-1", domain.DraftInput{Application: app, Offer: offer}) {
		c.Apply(e)
	}
	fmt.Println(c.Status(), len(c.Hash), c.MissingRoles())

	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	rule := func(err error) string {
		var re *domain.RuleError
		if errors.As(err, &re) {
			return re.Rule
		}
		return fmt.Sprint(err)
	}
	_, err := c.Sign(domain.SignInput{Role: "pupil", SignerName: "Léa Martin", DocumentHash: c.Hash}, now)
	fmt.Println(rule(err))

	drafted := c.Hash
	for _, in := range []domain.CompleteInput{
		{Party: "employer", Tutor: &domain.Person{Name: "Paul Martin", Email: "paul@example.fr"}, Activities: "Fournil et vente."},
		{Party: "school", ReferentTeacher: &domain.Person{Name: "Claire Petit", Email: "claire.petit@ac-creteil.fr"}},
	} {
		evs, err := c.CompleteParty(in)
		for _, e := range evs {
			c.Apply(e)
		}
		fmt.Println(in.Party, "completed:", err, c.Status())
	}
	_, err = c.Sign(domain.SignInput{Role: "pupil", SignerName: "Léa Martin", DocumentHash: drafted}, now)
	fmt.Println(rule(err))

	signers := []domain.SignInput{
		{Role: "employer", SignerName: "Paul Martin"},
		{Role: "school_head", SignerName: "Claire Petit"},
		{Role: "pupil", SignerName: "Léa Martin"},
		{Role: "guardian", SignerName: "Sophie Martin"},
	}
	for _, in := range signers {
		in.DocumentHash = c.Hash
		evs, err := c.Sign(in, now)
		for _, e := range evs {
			fmt.Print(e.EventType(), " ")
			c.Apply(e)
		}
		fmt.Println(err, c.Status(), c.MissingRoles())
	}
	// Output:
	// draft 64 [employer school_head pupil guardian]
	// convention_incomplete
	// employer completed: <nil> draft
	// school completed: <nil> ready
	// outdated_document
	// ConventionSignatureAdded <nil> signing [school_head pupil guardian]
	// ConventionSignatureAdded <nil> signing [pupil guardian]
	// ConventionSignatureAdded <nil> signing [guardian]
	// ConventionSignatureAdded ConventionSigned <nil> signed []
}
