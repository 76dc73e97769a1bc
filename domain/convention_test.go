package domain_test

import (
	"errors"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"passerelle/domain"
)

var hexHash = regexp.MustCompile(`^[0-9a-f]{64}$`)

func confirmedApplication(t *testing.T) (*domain.Application, *domain.Offer) {
	t.Helper()
	offer := newOffer(t, "off-1", collegeOfferInput())
	a := submitted(t, "app-1", offer, pupil3e(t), week25)
	apply(offer, must(t)(offer.HoldSeat(a))...)
	apply(a, must(t)(a.Accept(now))...)
	apply(a, must(t)(a.Confirm("conv-1"))...)
	return a, offer
}

// draftInput is what the convention of pupil-3e's confirmed application
// is drafted from; the pupil has guardians legal guardians.
func draftInput(t *testing.T, guardians int) domain.DraftInput {
	t.Helper()
	a, offer := confirmedApplication(t)
	school := newSchool(t, collegeInput())
	pupil := newPupil(t, "pupil-3e", school, "3e")
	if guardians == 2 {
		pupil = newPupilWith(t, "pupil-3e", school, "3e", twoGuardians)
	}
	return domain.DraftInput{Application: a, Offer: offer, Employer: newEmployer(t), School: school, Pupil: pupil}
}

func draftedWith(t *testing.T, guardians int) *domain.Convention {
	t.Helper()
	var c domain.Convention
	apply(&c, domain.DraftConvention("conv-1", draftInput(t, guardians))...)
	return &c
}

func drafted(t *testing.T) *domain.Convention { return draftedWith(t, 1) }

func employerPart() domain.CompleteInput {
	return domain.CompleteInput{Party: "employer", Tutor: &domain.Person{Name: "Paul Martin", Email: "paul@boulangerie-martin.fr", Phone: "0145678901"},
		Activities: "Pétrissage, façonnage, cuisson, vente."}
}

func schoolPart(bothGuardians bool) domain.CompleteInput {
	return domain.CompleteInput{Party: "school", ReferentTeacher: &domain.Person{Name: "Claire Petit", Email: "claire.petit@ac-creteil.fr"}, BothGuardians: bothGuardians}
}

// ready returns a convention both parties completed.
func ready(t *testing.T, guardians int, bothGuardians bool) *domain.Convention {
	t.Helper()
	c := draftedWith(t, guardians)
	apply(c, must(t)(c.CompleteParty(employerPart()))...)
	apply(c, must(t)(c.CompleteParty(schoolPart(bothGuardians)))...)
	if c.Status() != domain.ConvReady {
		t.Fatalf("status = %q, want ready", c.Status())
	}
	return c
}

var signers = map[domain.Role]string{
	domain.RoleEmployer: "Paul Martin", domain.RoleSchoolHead: "Claire Petit",
	domain.RolePupil: "Léa Martin", domain.RoleGuardian: "Sophie Martin", domain.RoleSecondGuardian: "Karim Martin",
}

// sign signs the current document as role and applies the events.
func sign(t *testing.T, c *domain.Convention, role domain.Role) []domain.Event {
	t.Helper()
	evs := must(t)(c.Sign(domain.SignInput{Role: string(role), SignerName: signers[role], DocumentHash: c.Hash}, now))
	apply(c, evs...)
	return evs
}

func TestDraftConvention(t *testing.T) {
	in := draftInput(t, 1)
	evs := domain.DraftConvention("conv-1", in)
	ev := only[*domain.ConventionDrafted](t, evs)
	if !hexHash.MatchString(ev.DocumentHash) {
		t.Fatalf("DocumentHash = %q, want 64 lower-case hex digits", ev.DocumentHash)
	}
	want := domain.ConventionDrafted{
		ConventionID: "conv-1", ApplicationID: "app-1", OfferID: "off-1", EmployerID: "emp-1",
		EmployerName: "Boulangerie Martin", EmployerSIRET: "73282932000074",
		PupilID: "pupil-3e", SchoolUAI: "0941234A", SchoolName: "Collège Louis Pasteur", GuardianCount: 1,
		Weeks: []string{week25}, StartDate: "2026-06-15", EndDate: "2026-06-19",
		OfferTitle: "Découverte du fournil", Description: "Une semaine aux côtés des boulangers.",
		Address: "12 rue du Général Leclerc", CommuneCode: "94028",
		DailyHours:    &domain.DailyHours{Start: "09:00", End: "16:00", LunchBreakMinutes: 60},
		RequiredRoles: []domain.Role{domain.RoleEmployer, domain.RoleSchoolHead, domain.RolePupil, domain.RoleGuardian},
		DocumentHash:  ev.DocumentHash,
		// the document names the pupil and the guardians
		ClassName: "3eB", PupilFirstName: "Léa", PupilLastName: "Martin",
		Guardians: []domain.Guardian{{Name: "Sophie Martin", Email: "sophie.martin@example.fr", Phone: "06 12 34 56 78"}},
	}
	if !reflect.DeepEqual(*ev, want) {
		t.Fatalf("event = %+v\nwant    %+v", *ev, want)
	}
	if got := domain.DocumentHash(domain.ConventionTerms{Drafted: *ev}); got != ev.DocumentHash {
		t.Fatalf("DocumentHash(drafted) = %s, event says %s", got, ev.DocumentHash)
	}
	// The hash covers the terms, not itself.
	withOther := *ev
	withOther.DocumentHash = strings.Repeat("0", 64)
	if domain.DocumentHash(domain.ConventionTerms{Drafted: withOther}) != ev.DocumentHash {
		t.Fatal("the hash depends on the hash field")
	}
	if again := only[*domain.ConventionDrafted](t, domain.DraftConvention("conv-1", in)); again.DocumentHash != ev.DocumentHash {
		t.Fatal("drafting the same terms twice gives two hashes")
	}
	if two := only[*domain.ConventionDrafted](t, domain.DraftConvention("conv-1", draftInput(t, 2))); two.GuardianCount != 2 {
		t.Fatalf("GuardianCount = %d, want 2", two.GuardianCount)
	}

	var c domain.Convention
	if c.Exists() || c.Status() != domain.ConvDraft {
		t.Fatalf("a new convention: exists=%v status=%q", c.Exists(), c.Status())
	}
	c.Apply(ev)
	if !c.Exists() || c.Hash != ev.DocumentHash || c.Status() != domain.ConvDraft || c.Signed || c.Complete() {
		t.Fatalf("after Apply: exists=%v hash=%s status=%q", c.Exists(), c.Hash, c.Status())
	}
	if got := c.MissingRoles(); !slices.Equal(got, domain.RequiredRoles) {
		t.Fatalf("MissingRoles = %v, want %v", got, domain.RequiredRoles)
	}
	if !reflect.DeepEqual(c.Drafted(), *ev) {
		t.Fatalf("Drafted() = %+v", c.Drafted())
	}
}

// A 2de placement over two weeks runs from the first Monday to the second
// Friday.
func TestDraftConventionTwoWeeks(t *testing.T) {
	offer := newOffer(t, "off-2de", lyceeOfferInput())
	pupil := pupil2de(t)
	a := submitted(t, "app-2", offer, pupil, week26, week25)
	ev := only[*domain.ConventionDrafted](t, domain.DraftConvention("conv-2", domain.DraftInput{Application: a, Offer: offer, Pupil: pupil}))
	if ev.StartDate != "2026-06-15" || ev.EndDate != "2026-06-26" || !slices.Equal(ev.Weeks, []string{week25, week26}) {
		t.Fatalf("dates %s–%s, weeks %v", ev.StartDate, ev.EndDate, ev.Weeks)
	}
	if ev.EmployerSIRET != "" || ev.SchoolName != "" || ev.GuardianCount != 1 {
		t.Fatalf("parties not given: %+v", *ev)
	}
}

func TestDocumentHashDependsOnTerms(t *testing.T) {
	base := *only[*domain.ConventionDrafted](t, domain.DraftConvention("conv-1", draftInput(t, 1)))
	person := &domain.Person{Name: "Paul Martin", Email: "paul@example.fr"}
	changes := map[string]func(*domain.ConventionTerms){
		"convention":  func(c *domain.ConventionTerms) { c.Drafted.ConventionID = "conv-2" },
		"application": func(c *domain.ConventionTerms) { c.Drafted.ApplicationID = "app-2" },
		"offer":       func(c *domain.ConventionTerms) { c.Drafted.OfferID = "off-2" },
		"employer":    func(c *domain.ConventionTerms) { c.Drafted.EmployerID = "emp-2" },
		"SIRET":       func(c *domain.ConventionTerms) { c.Drafted.EmployerSIRET = "44306184100047" },
		"pupil":       func(c *domain.ConventionTerms) { c.Drafted.PupilID = "pupil-2" },
		"school":      func(c *domain.ConventionTerms) { c.Drafted.SchoolUAI = "0945678B" },
		"guardians":   func(c *domain.ConventionTerms) { c.Drafted.GuardianCount = 2 },
		"weeks":       func(c *domain.ConventionTerms) { c.Drafted.Weeks = []string{week26} },
		"more weeks":  func(c *domain.ConventionTerms) { c.Drafted.Weeks = []string{week25, week26} },
		"end date":    func(c *domain.ConventionTerms) { c.Drafted.EndDate = "2026-06-18" },
		"title":       func(c *domain.ConventionTerms) { c.Drafted.OfferTitle += "." },
		"address":     func(c *domain.ConventionTerms) { c.Drafted.Address = "14 rue" },
		"hours": func(c *domain.ConventionTerms) {
			c.Drafted.DailyHours = &domain.DailyHours{Start: "09:00", End: "15:00"}
		},
		"roles":            func(c *domain.ConventionTerms) { c.Drafted.RequiredRoles = c.Drafted.RequiredRoles[:3] },
		"tutor":            func(c *domain.ConventionTerms) { c.Tutor = person },
		"activities":       func(c *domain.ConventionTerms) { c.Activities = "Vente." },
		"referent teacher": func(c *domain.ConventionTerms) { c.ReferentTeacher = person },
		"both guardians":   func(c *domain.ConventionTerms) { c.BothGuardians = true },
	}
	seen := map[string]string{base.DocumentHash: "base"}
	for name, change := range changes {
		d := base
		d.Weeks = slices.Clone(base.Weeks)
		d.RequiredRoles = slices.Clone(base.RequiredRoles)
		terms := domain.ConventionTerms{Drafted: d}
		change(&terms)
		h := domain.DocumentHash(terms)
		if !hexHash.MatchString(h) {
			t.Errorf("%s: hash %q", name, h)
		}
		if other, ok := seen[h]; ok {
			t.Errorf("changing the %s gives the hash of %s", name, other)
		}
		seen[h] = name
	}
}

func TestConventionComplete(t *testing.T) {
	c := drafted(t)
	in := employerPart()
	in.Tutor = &domain.Person{Name: " Paul Martin ", Email: "paul@boulangerie-martin.fr", Phone: "0145678901 "}
	in.Activities = "\nPétrissage, façonnage, cuisson, vente. "
	ev := only[*domain.ConventionCompleted](t, must(t)(c.CompleteParty(in)))
	tutor := &domain.Person{Name: "Paul Martin", Email: "paul@boulangerie-martin.fr", Phone: "0145678901"}
	terms := c.Terms
	terms.Tutor, terms.Activities = tutor, "Pétrissage, façonnage, cuisson, vente."
	want := domain.ConventionCompleted{ConventionID: "conv-1", Party: "employer", Tutor: tutor, Activities: terms.Activities,
		RequiredRoles: domain.RequiredRoles, DocumentHash: domain.DocumentHash(terms)}
	if !reflect.DeepEqual(*ev, want) {
		t.Fatalf("event = %+v\nwant    %+v", *ev, want)
	}
	if ev.DocumentHash == c.Hash {
		t.Fatal("completing did not change the document's hash")
	}
	if c.Terms.Tutor != nil {
		t.Fatal("deciding changed the aggregate")
	}
	c.Apply(ev)
	if c.Hash != ev.DocumentHash || domain.DocumentHash(c.Terms) != c.Hash || c.Complete() || c.Status() != domain.ConvDraft {
		t.Fatalf("after the employer's part: hash %s status %q", c.Hash, c.Status())
	}
	// The same part again is no change.
	wantNothing(t)(c.CompleteParty(in))
	wantNothing(t)(c.CompleteParty(employerPart()))

	ev = only[*domain.ConventionCompleted](t, must(t)(c.CompleteParty(schoolPart(false))))
	if ev.Party != "school" || ev.ReferentTeacher == nil || ev.Tutor != nil || ev.Activities != "" {
		t.Fatalf("event = %+v", *ev)
	}
	c.Apply(ev)
	if !c.Complete() || c.Status() != domain.ConvReady || domain.DocumentHash(c.Terms) != c.Hash || *c.Terms.Tutor != *tutor {
		t.Fatalf("after both parts: status %q, terms %+v", c.Status(), c.Terms)
	}

	person := func(name, email, phone string) *domain.Person {
		return &domain.Person{Name: name, Email: email, Phone: phone}
	}
	tests := []struct {
		name   string
		in     domain.CompleteInput
		fields []string
	}{
		{"no party", domain.CompleteInput{Tutor: tutor, Activities: "x"}, []string{"party"}},
		{"the pupil as a party", domain.CompleteInput{Party: "pupil"}, []string{"party"}},
		{"no tutor", domain.CompleteInput{Party: "employer", Activities: "x"}, []string{"tutor"}},
		{"tutor without a name", domain.CompleteInput{Party: "employer", Tutor: person(" ", "a@b.fr", ""), Activities: "x"}, []string{"tutor.name"}},
		{"tutor without an email", domain.CompleteInput{Party: "employer", Tutor: person("Paul", "paul", ""), Activities: "x"}, []string{"tutor.email"}},
		{"tutor with a bad phone", domain.CompleteInput{Party: "employer", Tutor: person("Paul", "a@b.fr", "12"), Activities: "x"}, []string{"tutor.phone"}},
		{"no activities", domain.CompleteInput{Party: "employer", Tutor: tutor, Activities: "  "}, []string{"activities"}},
		{"long activities", domain.CompleteInput{Party: "employer", Tutor: tutor, Activities: strings.Repeat("a", 5001)}, []string{"activities"}},
		{"no referent teacher", domain.CompleteInput{Party: "school"}, []string{"referent_teacher"}},
		{"referent with a display name", domain.CompleteInput{Party: "school", ReferentTeacher: person("Claire", "Claire <c@ac.fr>", "")}, []string{"referent_teacher.email"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := c.CompleteParty(tt.in)
			if len(evs) != 0 {
				t.Fatalf("events %v", types(evs))
			}
			wantFields(t, err, tt.fields...)
		})
	}
	var missing domain.Convention
	evs, err := missing.CompleteParty(employerPart())
	wantIs(t, evs, err, domain.ErrNotFound)
}

// TestConventionTransitions runs every command of a convention from every
// state it can be in.
func TestConventionTransitions(t *testing.T) {
	const (
		draft           = "draft"
		employerDone    = "employer part only"
		schoolDone      = "school part only"
		readyState      = "ready"
		signing         = "signing"
		signed          = "signed"
		cancelled       = "cancelled"
		cancelledSigned = "cancelled after signing"
	)
	setup := map[string]func(t *testing.T) *domain.Convention{
		draft: drafted,
		employerDone: func(t *testing.T) *domain.Convention {
			c := drafted(t)
			apply(c, must(t)(c.CompleteParty(employerPart()))...)
			return c
		},
		schoolDone: func(t *testing.T) *domain.Convention {
			c := drafted(t)
			apply(c, must(t)(c.CompleteParty(schoolPart(false)))...)
			return c
		},
		readyState: func(t *testing.T) *domain.Convention { return ready(t, 1, false) },
		signing: func(t *testing.T) *domain.Convention {
			c := ready(t, 1, false)
			sign(t, c, domain.RoleEmployer)
			return c
		},
		signed: func(t *testing.T) *domain.Convention {
			c := ready(t, 1, false)
			for _, r := range domain.RequiredRoles {
				sign(t, c, r)
			}
			return c
		},
		cancelled: func(t *testing.T) *domain.Convention {
			c := drafted(t)
			apply(c, must(t)(c.Cancel("abandon"))...)
			return c
		},
		cancelledSigned: func(t *testing.T) *domain.Convention {
			c := ready(t, 1, false)
			for _, r := range domain.RequiredRoles {
				sign(t, c, r)
			}
			apply(c, must(t)(c.Cancel("fermeture"))...)
			return c
		},
	}
	otherTutor := employerPart()
	otherTutor.Tutor = &domain.Person{Name: "Marc Durand", Email: "marc@boulangerie-martin.fr"}
	otherReferent := schoolPart(false)
	otherReferent.ReferentTeacher = &domain.Person{Name: "Yves Morel", Email: "yves.morel@ac-creteil.fr"}
	outdated := strings.Repeat("ab", 32)
	commands := map[string]func(*domain.Convention) ([]domain.Event, error){
		"complete_employer": func(c *domain.Convention) ([]domain.Event, error) { return c.CompleteParty(otherTutor) },
		"complete_school":   func(c *domain.Convention) ([]domain.Event, error) { return c.CompleteParty(otherReferent) },
		// the pupil signs the current document (as the pupil did in the
		// signed states)
		"sign_pupil": func(c *domain.Convention) ([]domain.Event, error) {
			return c.Sign(domain.SignInput{Role: "pupil", SignerName: signers[domain.RolePupil], DocumentHash: c.Hash}, now)
		},
		// someone other than Paul Martin signs for the employer
		"sign_employer_other": func(c *domain.Convention) ([]domain.Event, error) {
			return c.Sign(domain.SignInput{Role: "employer", SignerName: "Anne Martin", DocumentHash: c.Hash}, now)
		},
		"sign_outdated": func(c *domain.Convention) ([]domain.Event, error) {
			return c.Sign(domain.SignInput{Role: "guardian", SignerName: signers[domain.RoleGuardian], DocumentHash: outdated}, now)
		},
		"cancel": func(c *domain.Convention) ([]domain.Event, error) { return c.Cancel(" Fermeture ") },
	}
	type want struct {
		events string // event types decided, comma-separated; "" for none
		rule   string
		status string // after applying
	}
	ev := func(events, status string) want { return want{events: events, status: status} }
	none := func(status string) want { return want{status: status} }
	refused := func(rule string) want { return want{rule: rule} }
	const (
		completed = "ConventionCompleted"
		added     = "ConventionSignatureAdded"
		cancel    = "ConventionCancelled"
	)
	table := map[string]map[string]want{
		draft: {
			"complete_employer": ev(completed, domain.ConvDraft), "complete_school": ev(completed, domain.ConvDraft),
			"sign_pupil": refused("convention_incomplete"), "sign_employer_other": refused("convention_incomplete"),
			"sign_outdated": refused("convention_incomplete"), "cancel": ev(cancel, domain.ConvCancelled),
		},
		employerDone: {
			"complete_employer": ev(completed, domain.ConvDraft), "complete_school": ev(completed, domain.ConvReady),
			"sign_pupil": refused("convention_incomplete"), "sign_employer_other": refused("convention_incomplete"),
			"sign_outdated": refused("convention_incomplete"), "cancel": ev(cancel, domain.ConvCancelled),
		},
		schoolDone: {
			"complete_employer": ev(completed, domain.ConvReady), "complete_school": ev(completed, domain.ConvDraft),
			"sign_pupil": refused("convention_incomplete"), "sign_employer_other": refused("convention_incomplete"),
			"sign_outdated": refused("convention_incomplete"), "cancel": ev(cancel, domain.ConvCancelled),
		},
		readyState: {
			"complete_employer": ev(completed, domain.ConvReady), "complete_school": ev(completed, domain.ConvReady),
			"sign_pupil": ev(added, domain.ConvSigning), "sign_employer_other": ev(added, domain.ConvSigning),
			"sign_outdated": refused("outdated_document"), "cancel": ev(cancel, domain.ConvCancelled),
		},
		signing: { // the employer signed: a new version voids the signature
			"complete_employer": ev(completed, domain.ConvReady), "complete_school": ev(completed, domain.ConvReady),
			"sign_pupil": ev(added, domain.ConvSigning), "sign_employer_other": refused("already_signed"),
			"sign_outdated": refused("outdated_document"), "cancel": ev(cancel, domain.ConvCancelled),
		},
		signed: { // nothing changes any more; the placement may still be cancelled
			"complete_employer": refused("convention_signed"), "complete_school": refused("convention_signed"),
			"sign_pupil": none(domain.ConvSigned), "sign_employer_other": refused("convention_signed"),
			"sign_outdated": refused("convention_signed"), "cancel": ev(cancel, domain.ConvCancelled),
		},
		cancelled: {
			"complete_employer": refused("convention_cancelled"), "complete_school": refused("convention_cancelled"),
			"sign_pupil": refused("convention_cancelled"), "sign_employer_other": refused("convention_cancelled"),
			"sign_outdated": refused("convention_cancelled"), "cancel": none(domain.ConvCancelled),
		},
		cancelledSigned: {
			"complete_employer": refused("convention_cancelled"), "complete_school": refused("convention_cancelled"),
			"sign_pupil": none(domain.ConvCancelled), "sign_employer_other": refused("convention_cancelled"),
			"sign_outdated": refused("convention_cancelled"), "cancel": none(domain.ConvCancelled),
		},
	}
	for _, from := range slices.Sorted(maps.Keys(setup)) {
		row := table[from]
		if len(row) != len(commands) {
			t.Fatalf("%s: %d commands in the table, want %d", from, len(row), len(commands))
		}
		for name, w := range row {
			t.Run(from+"/"+name, func(t *testing.T) {
				c := setup[from](t)
				hash, sigs, status := c.Hash, len(c.Signatures), c.Status()
				evs, err := commands[name](c)
				if c.Hash != hash || len(c.Signatures) != sigs || c.Status() != status {
					t.Fatal("deciding changed the aggregate")
				}
				if w.rule != "" {
					wantRule(t, evs, err, w.rule)
					return
				}
				if got := strings.Join(types(evs), ","); err != nil || got != w.events {
					t.Fatalf("got [%s], %v; want [%s]", got, err, w.events)
				}
				apply(c, evs...)
				if c.Status() != w.status {
					t.Fatalf("status = %q, want %q", c.Status(), w.status)
				}
				if w.events == completed {
					if c.Hash == hash || len(c.Signatures) != 0 || domain.DocumentHash(c.Terms) != c.Hash {
						t.Fatalf("after completing: hash changed %v, %d signatures left", c.Hash != hash, len(c.Signatures))
					}
				}
			})
		}
	}
}

func TestConventionSignValidation(t *testing.T) {
	c := ready(t, 1, false)
	tests := []struct {
		name   string
		in     domain.SignInput
		fields []string
	}{
		{"no role", domain.SignInput{SignerName: "Jean Dupont", DocumentHash: c.Hash}, []string{"role"}},
		{"unknown role", domain.SignInput{Role: "teacher", SignerName: "Jean Dupont", DocumentHash: c.Hash}, []string{"role"}},
		{"capitalised role", domain.SignInput{Role: "Employer", SignerName: "Jean Dupont", DocumentHash: c.Hash}, []string{"role"}},
		{"second guardian not required", domain.SignInput{Role: "second_guardian", SignerName: "Karim Martin", DocumentHash: c.Hash}, []string{"role"}},
		{"no signer", domain.SignInput{Role: "employer", SignerName: " ", DocumentHash: c.Hash}, []string{"signer_name"}},
		{"long signer", domain.SignInput{Role: "employer", SignerName: strings.Repeat("n", 201), DocumentHash: c.Hash}, []string{"signer_name"}},
		{"no hash", domain.SignInput{Role: "employer", SignerName: "Jean Dupont"}, []string{"document_hash"}},
		{"short hash", domain.SignInput{Role: "employer", SignerName: "Jean Dupont", DocumentHash: c.Hash[:63]}, []string{"document_hash"}},
		{"not hex", domain.SignInput{Role: "employer", SignerName: "Jean Dupont", DocumentHash: strings.Repeat("g", 64)}, []string{"document_hash"}},
		{"everything", domain.SignInput{}, []string{"role", "signer_name", "document_hash"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := c.Sign(tt.in, now)
			if len(evs) != 0 {
				t.Fatalf("events %v", types(evs))
			}
			wantFields(t, err, tt.fields...)
		})
	}

	var missing domain.Convention
	evs, err := missing.Sign(domain.SignInput{Role: "pupil", SignerName: "Léa Martin", DocumentHash: c.Hash}, now)
	wantIs(t, evs, err, domain.ErrNotFound)
	evs, err = missing.Sign(domain.SignInput{Role: "teacher", SignerName: "Léa Martin", DocumentHash: c.Hash}, now)
	if len(evs) != 0 {
		t.Fatalf("events %v", types(evs))
	}
	wantFields(t, err, "role")
}

func TestConventionSign(t *testing.T) {
	c := drafted(t)
	// Nobody signs before both parties completed the convention.
	evs, err := c.Sign(domain.SignInput{Role: "employer", SignerName: "Paul Martin", DocumentHash: c.Hash}, now)
	wantRule(t, evs, err, "convention_incomplete")
	apply(c, must(t)(c.CompleteParty(employerPart()))...)
	evs, err = c.Sign(domain.SignInput{Role: "employer", SignerName: "Paul Martin", DocumentHash: c.Hash}, now)
	wantRule(t, evs, err, "convention_incomplete")
	apply(c, must(t)(c.CompleteParty(schoolPart(false)))...)

	local := now.In(time.FixedZone("CEST", 2*3600))
	evs = must(t)(c.Sign(domain.SignInput{Role: "employer", SignerName: " Paul Martin ", DocumentHash: strings.ToUpper(c.Hash)}, local))
	ev := only[*domain.ConventionSignatureAdded](t, evs)
	want := domain.ConventionSignatureAdded{ConventionID: "conv-1", Role: domain.RoleEmployer, SignerName: "Paul Martin", DocumentHash: c.Hash, SignedAt: now}
	if !reflect.DeepEqual(*ev, want) {
		t.Fatalf("event = %+v\nwant    %+v", *ev, want)
	}
	if len(c.Signatures) != 0 {
		t.Fatal("deciding changed the aggregate")
	}
	c.Apply(ev)
	if c.Status() != domain.ConvSigning {
		t.Fatalf("status = %q, want %q", c.Status(), domain.ConvSigning)
	}
	wantSig := domain.Signature{Role: domain.RoleEmployer, SignerName: "Paul Martin", DocumentHash: c.Hash, SignedAt: now}
	if got := c.Signatures[domain.RoleEmployer]; !reflect.DeepEqual(got, wantSig) {
		t.Fatalf("signature = %+v, want %+v", got, wantSig)
	}

	// The same signature again is no change; another signer for the same
	// role is refused.
	wantNothing(t)(c.Sign(domain.SignInput{Role: "employer", SignerName: "Paul Martin", DocumentHash: c.Hash}, now.Add(time.Hour)))
	evs, err = c.Sign(domain.SignInput{Role: "employer", SignerName: "Anne Martin", DocumentHash: c.Hash}, now)
	wantRule(t, evs, err, "already_signed")

	// A signature of another version of the document is refused, naming
	// the current one.
	other := strings.Repeat("ab", 32)
	evs, err = c.Sign(domain.SignInput{Role: "pupil", SignerName: "Léa Martin", DocumentHash: other}, now)
	wantRule(t, evs, err, "outdated_document")
	if !strings.Contains(err.Error(), c.Hash) {
		t.Errorf("error %q does not name the current hash", err)
	}
	if got := c.MissingRoles(); !slices.Equal(got, []domain.Role{domain.RoleSchoolHead, domain.RolePupil, domain.RoleGuardian}) {
		t.Fatalf("MissingRoles = %v", got)
	}
}

// Changing the document after a signature voids every signature given:
// they must all be given again on the new version, and the old version can
// no longer be signed.
func TestConventionAmendVoidsSignatures(t *testing.T) {
	c := ready(t, 1, false)
	first := c.Hash
	sign(t, c, domain.RoleEmployer)
	sign(t, c, domain.RolePupil)
	sign(t, c, domain.RoleSchoolHead)

	// Completing with the very same part changes nothing.
	wantNothing(t)(c.CompleteParty(schoolPart(false)))
	wantNothing(t)(c.CompleteParty(employerPart()))
	if len(c.Signatures) != 3 {
		t.Fatalf("%d signatures left", len(c.Signatures))
	}

	changed := employerPart()
	changed.Activities = "Vente uniquement."
	ev := only[*domain.ConventionCompleted](t, must(t)(c.CompleteParty(changed)))
	c.Apply(ev)
	if c.Hash == first || c.Hash != ev.DocumentHash || len(c.Signatures) != 0 || c.Status() != domain.ConvReady {
		t.Fatalf("after the change: hash %s, %d signatures, status %q", c.Hash, len(c.Signatures), c.Status())
	}
	if got := c.MissingRoles(); !slices.Equal(got, domain.RequiredRoles) {
		t.Fatalf("MissingRoles = %v", got)
	}
	// The guardian saw the first version.
	evs, err := c.Sign(domain.SignInput{Role: "guardian", SignerName: "Sophie Martin", DocumentHash: first}, now)
	wantRule(t, evs, err, "outdated_document")
	if !strings.Contains(err.Error(), c.Hash) {
		t.Errorf("error %q does not name the current hash", err)
	}
	// The guardian signs the current one: not yet signed, the others must
	// sign again.
	if got := types(sign(t, c, domain.RoleGuardian)); !slices.Equal(got, []string{"ConventionSignatureAdded"}) {
		t.Fatalf("events %v", got)
	}
	sign(t, c, domain.RoleEmployer)
	sign(t, c, domain.RolePupil)
	evs = sign(t, c, domain.RoleSchoolHead)
	if got := types(evs); !slices.Equal(got, []string{"ConventionSignatureAdded", "ConventionSigned"}) {
		t.Fatalf("events %v", got)
	}
	if s := evs[1].(*domain.ConventionSigned); s.DocumentHash != c.Hash || s.DocumentHash == first {
		t.Fatalf("signed %s, current %s", s.DocumentHash, c.Hash)
	}
	for r, s := range c.Signatures {
		if s.DocumentHash != c.Hash {
			t.Errorf("%s signed %s, not the current version", r, s.DocumentHash)
		}
	}
}

// The second guardian signs only when the school asks for both guardians
// and the pupil has two; the convention is signed exactly when every
// required role has signed.
func TestConventionSecondGuardian(t *testing.T) {
	base := []domain.Role{domain.RoleEmployer, domain.RoleSchoolHead, domain.RolePupil, domain.RoleGuardian}
	tests := []struct {
		guardians int
		both      bool
		second    bool
	}{
		{1, false, false},
		{1, true, false},
		{2, false, false},
		{2, true, true},
	}
	for _, tt := range tests {
		t.Run(strings.Repeat("guardian,", tt.guardians)+map[bool]string{true: "both asked", false: "one asked"}[tt.both], func(t *testing.T) {
			c := ready(t, tt.guardians, tt.both)
			want := base
			if tt.second {
				want = append(slices.Clone(base), domain.RoleSecondGuardian)
			}
			if !slices.Equal(c.Roles, want) || !slices.Equal(c.MissingRoles(), want) {
				t.Fatalf("roles %v, missing %v; want %v", c.Roles, c.MissingRoles(), want)
			}
			if !tt.second {
				evs, err := c.Sign(domain.SignInput{Role: "second_guardian", SignerName: "Karim Martin", DocumentHash: c.Hash}, now)
				if len(evs) != 0 {
					t.Fatalf("events %v", types(evs))
				}
				wantFields(t, err, "role")
			}
			for i, r := range base {
				evs := sign(t, c, r)
				last := i == len(base)-1 && !tt.second
				if got := len(evs) == 2; got != last || c.Signed != last {
					t.Fatalf("after %s: events %v, signed %v", r, types(evs), c.Signed)
				}
			}
			if tt.second {
				if c.Status() != domain.ConvSigning || !slices.Equal(c.MissingRoles(), []domain.Role{domain.RoleSecondGuardian}) {
					t.Fatalf("status %q, missing %v", c.Status(), c.MissingRoles())
				}
				evs := sign(t, c, domain.RoleSecondGuardian)
				if got := types(evs); !slices.Equal(got, []string{"ConventionSignatureAdded", "ConventionSigned"}) {
					t.Fatalf("events %v", got)
				}
			}
			if c.Status() != domain.ConvSigned || len(c.MissingRoles()) != 0 {
				t.Fatalf("status %q, missing %v", c.Status(), c.MissingRoles())
			}
		})
	}

	// The school changing its mind changes the required roles, and voids
	// the signatures.
	c := ready(t, 2, false)
	sign(t, c, domain.RoleGuardian)
	apply(c, must(t)(c.CompleteParty(schoolPart(true)))...)
	if !slices.Contains(c.Roles, domain.RoleSecondGuardian) || len(c.Signatures) != 0 {
		t.Fatalf("roles %v, %d signatures", c.Roles, len(c.Signatures))
	}
	sign(t, c, domain.RoleSecondGuardian)
	apply(c, must(t)(c.CompleteParty(schoolPart(false)))...)
	if slices.Contains(c.Roles, domain.RoleSecondGuardian) || len(c.Signatures) != 0 {
		t.Fatalf("roles %v, %d signatures", c.Roles, len(c.Signatures))
	}
	// The employer completing again keeps the school's choice.
	apply(c, must(t)(c.CompleteParty(schoolPart(true)))...)
	other := employerPart()
	other.Activities = "Autre chose."
	apply(c, must(t)(c.CompleteParty(other))...)
	if !slices.Contains(c.Roles, domain.RoleSecondGuardian) {
		t.Fatalf("roles %v after the employer's change", c.Roles)
	}
}

// ConventionSigned comes with the last distinct required role, whatever
// the order and whatever repeated signatures come in between: with four
// roles, and with five when both guardians sign.
func TestConventionSignedWithLastRole(t *testing.T) {
	for _, tt := range []struct {
		guardians int
		both      bool
		roles     []domain.Role
	}{
		{1, false, domain.RequiredRoles},
		{2, true, append(slices.Clone(domain.RequiredRoles), domain.RoleSecondGuardian)},
	} {
		orders := permutations(tt.roles)
		n := len(tt.roles)
		for _, order := range orders {
			t.Run(strings.Join(roleNames(order), ","), func(t *testing.T) {
				c := ready(t, tt.guardians, tt.both)
				for i, role := range order {
					in := domain.SignInput{Role: string(role), SignerName: signers[role], DocumentHash: c.Hash}
					evs := must(t)(c.Sign(in, now))
					if i < n-1 {
						only[*domain.ConventionSignatureAdded](t, evs)
					} else {
						if got := types(evs); !slices.Equal(got, []string{"ConventionSignatureAdded", "ConventionSigned"}) {
							t.Fatalf("last signature: events %v", got)
						}
						if s := evs[1].(*domain.ConventionSigned); *s != (domain.ConventionSigned{ConventionID: "conv-1", DocumentHash: c.Hash}) {
							t.Fatalf("ConventionSigned = %+v", *s)
						}
					}
					apply(c, evs...)
					if got, want := len(c.MissingRoles()), n-1-i; got != want {
						t.Fatalf("after %d signatures: %d missing roles, want %d", i+1, got, want)
					}
					if slices.Contains(c.MissingRoles(), role) {
						t.Fatalf("%s signed but is still missing", role)
					}
					// Signing again with an earlier role is no change.
					first := order[0]
					wantNothing(t)(c.Sign(domain.SignInput{Role: string(first), SignerName: signers[first], DocumentHash: c.Hash}, now))
					wantStatus := domain.ConvSigning
					if i == n-1 {
						wantStatus = domain.ConvSigned
					}
					if c.Status() != wantStatus || c.Signed != (i == n-1) {
						t.Fatalf("after %d signatures: status %q signed=%v", i+1, c.Status(), c.Signed)
					}
				}
				// Once signed, every signature again is no change.
				for _, role := range order {
					wantNothing(t)(c.Sign(domain.SignInput{Role: string(role), SignerName: signers[role], DocumentHash: c.Hash}, now))
				}
				if c.MissingRoles() != nil {
					t.Fatalf("MissingRoles = %v", c.MissingRoles())
				}
			})
		}
	}
}

func TestConventionCancel(t *testing.T) {
	c := ready(t, 1, false)
	for _, reason := range []string{"", " ", strings.Repeat("r", 1001)} {
		evs, err := c.Cancel(reason)
		if len(evs) != 0 {
			t.Fatalf("events %v", types(evs))
		}
		wantFields(t, err, "reason")
	}
	var missing domain.Convention
	evs, err := missing.Cancel("x")
	wantIs(t, evs, err, domain.ErrNotFound)

	ev := only[*domain.ConventionCancelled](t, must(t)(c.Cancel("  L'entreprise ferme. ")))
	if *ev != (domain.ConventionCancelled{ConventionID: "conv-1", Reason: "L'entreprise ferme."}) {
		t.Fatalf("event = %+v", *ev)
	}
	c.Apply(ev)
	if c.Status() != domain.ConvCancelled || !c.Cancelled {
		t.Fatalf("status %q", c.Status())
	}
	wantNothing(t)(c.Cancel("encore"))
}

func permutations(roles []domain.Role) [][]domain.Role {
	if len(roles) <= 1 {
		return [][]domain.Role{slices.Clone(roles)}
	}
	var out [][]domain.Role
	for i, r := range roles {
		rest := slices.Concat(roles[:i], roles[i+1:])
		for _, p := range permutations(rest) {
			out = append(out, append([]domain.Role{r}, p...))
		}
	}
	return out
}

func roleNames(roles []domain.Role) []string {
	out := make([]string, len(roles))
	for i, r := range roles {
		out[i] = string(r)
	}
	return out
}

// A pupil registered before PupilRegistered carried guardian_count (the
// stored event has only the guardians) still has two guardians: a
// convention drafted for them requires the second guardian when the
// school asks for both.
func TestDraftConventionFromAStoredPupilWithoutGuardianCount(t *testing.T) {
	stored := `{"pupil_id":"pupil-3e","school_uai":"0941234A","department":"94","grade":"3e","class_name":"3eB",` +
		`"first_name":"Léa","last_name":"Martin","birth_date":"2011-05-12","guardians":[` +
		`{"name":"Sophie Martin","email":"sophie.martin@example.fr","phone":"0612345678"},` +
		`{"name":"Karim Martin","email":"karim.martin@example.fr","phone":"+33612345678"}]}`
	e, err := domain.Decode("PupilRegistered", []byte(stored))
	if err != nil {
		t.Fatal(err)
	}
	var pupil domain.Pupil
	pupil.Apply(e)
	in := draftInput(t, 1)
	in.Pupil = &pupil
	var c domain.Convention
	apply(&c, domain.DraftConvention("conv-1", in)...)
	if got := c.Drafted().GuardianCount; got != 2 {
		t.Errorf("DOMAIN BUG (registration.go Pupil.Apply, convention.go DraftConvention): a PupilRegistered stored without "+
			"guardian_count but with 2 guardians drafts a convention with GuardianCount %d, want 2; the count is read only "+
			"from the new field, never from the guardians listed", got)
	}
	apply(&c, must(t)(c.CompleteParty(employerPart()))...)
	apply(&c, must(t)(c.CompleteParty(schoolPart(true)))...)
	if !slices.Contains(c.Roles, domain.RoleSecondGuardian) {
		t.Errorf("DOMAIN BUG: the school asked both guardians of a pupil who has two to sign, but the required roles are %v", c.Roles)
	}
}

// When both guardians must sign, each signs for themself: the guardian who
// signed one guardian's role cannot sign the other's; the other guardian
// can, and a rank the pupil does not have is refused.
func TestEachGuardianSignsForThemself(t *testing.T) {
	c := ready(t, 2, true)
	signAs := func(role domain.Role, guardian int) ([]domain.Event, error) {
		return c.Sign(domain.SignInput{Role: string(role), SignerName: signers[role], DocumentHash: c.Hash, Guardian: guardian}, now)
	}
	evs, err := signAs(domain.RoleGuardian, 1)
	if err != nil {
		t.Fatal(err)
	}
	if sig := only[*domain.ConventionSignatureAdded](t, evs); sig.Guardian != 1 || sig.PupilID != "pupil-3e" {
		t.Fatalf("a guardian's signature: %+v", sig)
	}
	apply(c, evs...)
	var rule *domain.RuleError
	if _, err := signAs(domain.RoleSecondGuardian, 1); !errors.As(err, &rule) || rule.Rule != "same_guardian" {
		t.Fatalf("the same guardian signing twice: %v", err)
	}
	if _, err := signAs(domain.RoleSecondGuardian, 3); !errors.As(err, &rule) || rule.Rule != "unknown_guardian" {
		t.Fatalf("a third guardian: %v", err)
	}
	evs, err = signAs(domain.RoleSecondGuardian, 2)
	if err != nil {
		t.Fatalf("the second guardian: %v", err)
	}
	apply(c, evs...)
	if got := c.Signatures[domain.RoleSecondGuardian]; got.Guardian != 2 || got.SignerName != signers[domain.RoleSecondGuardian] {
		t.Fatalf("second guardian's signature: %+v", got)
	}
	// the employer's signer is not the pupil's side: no pupil to seal for
	if sig := only[*domain.ConventionSignatureAdded](t, sign(t, c, domain.RoleEmployer)); sig.PupilID != "" || sig.Guardian != 0 {
		t.Fatalf("the employer's signature: %+v", sig)
	}
}

// A convention whose document is rendered (the PDF, outside the domain)
// names the rendering and its hash in every version; one drafted before,
// whose hash is the terms' digest, keeps its signatures when a party sends
// the same part again under the renderer.
func TestConventionRenderedDocument(t *testing.T) {
	render := func(terms domain.ConventionTerms) (string, string) {
		return "test-1", strings.Repeat("ab", 16) + domain.DocumentHash(terms)[:32] // another hash of the same terms
	}
	in := draftInput(t, 1)
	in.Document = render
	var c domain.Convention
	apply(&c, domain.DraftConvention("conv-1", in)...)
	if _, want := render(c.Terms); c.Version != "test-1" || c.Hash != want {
		t.Fatalf("drafted: version %q hash %s, want test-1 %s", c.Version, c.Hash, want)
	}
	part := employerPart()
	part.Document = render
	ev := only[*domain.ConventionCompleted](t, must(t)(c.CompleteParty(part)))
	c.Apply(ev)
	if _, want := render(c.Terms); ev.DocumentVersion != "test-1" || c.Hash != want {
		t.Fatalf("completed: version %q hash %s, want test-1 %s", ev.DocumentVersion, c.Hash, want)
	}

	legacy := ready(t, 1, false) // drafted and completed without a renderer
	sign(t, legacy, domain.RoleEmployer)
	again := schoolPart(false)
	again.Document = render
	wantNothing(t)(legacy.CompleteParty(again))
	if legacy.Version != "" || legacy.Hash != domain.DocumentHash(legacy.Terms) || len(legacy.Signatures) != 1 {
		t.Fatalf("legacy convention: version %q, %d signatures", legacy.Version, len(legacy.Signatures))
	}
}
