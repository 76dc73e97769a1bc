package domain_test

import (
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"passerelle/domain"
)

func TestRegisterEmployer(t *testing.T) {
	in := employerInput()
	in.Name, in.Address = "  Boulangerie Martin ", " 12 rue du Général Leclerc\t"
	ev := only[*domain.EmployerRegistered](t, must(t)(domain.RegisterEmployer("emp-1", in, places)))
	want := domain.EmployerRegistered{
		EmployerID: "emp-1", Name: "Boulangerie Martin", SIRET: "73282932000074", Kind: "company",
		CommuneCode: "94028", Department: "94", Address: "12 rue du Général Leclerc",
	}
	if *ev != want {
		t.Fatalf("event = %+v, want %+v", *ev, want)
	}
	var e domain.Employer
	if e.Exists() {
		t.Fatal("a new employer exists")
	}
	e.Apply(ev)
	if !e.Exists() || e.Registered != want {
		t.Fatalf("after Apply: exists=%v, %+v", e.Exists(), e.Registered)
	}
}

func TestRegisterEmployerKindsAndPlaces(t *testing.T) {
	tests := []struct {
		kind, commune, siret, wantDep string
	}{
		{"company", "75101", "73282932000074", "75"}, // a Paris arrondissement
		{"public", "2A004", "35600000000048", "2A"},  // Corsica; La Poste's head office
		{"association", "97411", "35600000049837", "974"},
	}
	for _, tt := range tests {
		in := employerInput()
		in.Kind, in.CommuneCode, in.SIRET = tt.kind, tt.commune, tt.siret
		ev := only[*domain.EmployerRegistered](t, must(t)(domain.RegisterEmployer("e", in, places)))
		if ev.Department != tt.wantDep || ev.Kind != tt.kind || ev.SIRET != tt.siret {
			t.Errorf("%+v: got %+v", tt, *ev)
		}
	}
}

func TestRegisterEmployerValidation(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(*domain.RegisterEmployerInput)
		fields []string
	}{
		{"blank name", func(in *domain.RegisterEmployerInput) { in.Name = " \t" }, []string{"name"}},
		{"long name", func(in *domain.RegisterEmployerInput) { in.Name = strings.Repeat("a", 201) }, []string{"name"}},
		{"bad SIRET key", func(in *domain.RegisterEmployerInput) { in.SIRET = "73282932000075" }, []string{"siret"}},
		{"short SIRET", func(in *domain.RegisterEmployerInput) { in.SIRET = "732829320" }, []string{"siret"}},
		{"spaced SIRET", func(in *domain.RegisterEmployerInput) { in.SIRET = "732 829 320 00074" }, []string{"siret"}},
		{"unknown kind", func(in *domain.RegisterEmployerInput) { in.Kind = "person" }, []string{"kind"}},
		{"capitalised kind", func(in *domain.RegisterEmployerInput) { in.Kind = "Company" }, []string{"kind"}},
		{"unknown commune", func(in *domain.RegisterEmployerInput) { in.CommuneCode = "99999" }, []string{"commune_code"}},
		{"postal code as commune", func(in *domain.RegisterEmployerInput) { in.CommuneCode = "94000" }, []string{"commune_code"}},
		{"no address", func(in *domain.RegisterEmployerInput) { in.Address = "" }, []string{"address"}},
		{"long address", func(in *domain.RegisterEmployerInput) { in.Address = strings.Repeat("a", 301) }, []string{"address"}},
		{"everything", func(in *domain.RegisterEmployerInput) { *in = domain.RegisterEmployerInput{} },
			[]string{"name", "siret", "kind", "commune_code", "address"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := employerInput()
			tt.edit(&in)
			evs, err := domain.RegisterEmployer("emp-1", in, places)
			wantInvalid(t, evs, err, tt.fields...)
		})
	}
}

// One employer per SIRET: the same registration again changes nothing;
// another with the same SIRET is refused naming the employer registered.
func TestEmployerRegisterOncePerSIRET(t *testing.T) {
	var e domain.Employer
	apply(&e, must(t)(e.Register("emp-1", employerInput(), places))...)
	evs, err := e.Register("emp-1", employerInput(), places)
	if err != nil || len(evs) != 0 {
		t.Fatalf("the same registration again: %v %v", evs, err)
	}
	spaced := employerInput()
	spaced.Name = " " + spaced.Name + " " // the same once trimmed
	if evs, err := e.Register("emp-1", spaced, places); err != nil || len(evs) != 0 {
		t.Fatalf("the same registration, spaced: %v %v", evs, err)
	}
	other := employerInput()
	other.Name = "Autre enseigne"
	evs, err = e.Register("emp-1", other, places)
	var rule *domain.RuleError
	if !errors.As(err, &rule) || rule.Rule != "siret_registered" || !strings.Contains(rule.Message, "emp-1") || !strings.Contains(rule.Fields["siret"], "emp-1") || len(evs) != 0 {
		t.Fatalf("another registration of the SIRET: %v %v, want a refusal naming emp-1", evs, err)
	}
	bad := other
	bad.Kind = "person"
	if _, err := e.Register("emp-1", bad, places); !errors.As(err, new(*domain.ValidationError)) {
		t.Fatalf("invalid input on a registered SIRET: %v, want a validation error", err)
	}
}

func TestSchoolRegister(t *testing.T) {
	var s domain.School
	in := collegeInput()
	in.Name = " Collège Louis Pasteur "
	ev := only[*domain.SchoolRegistered](t, must(t)(s.Register(in, places)))
	want := domain.SchoolRegistered{
		UAI: "0941234A", Name: "Collège Louis Pasteur", Kind: "college", CommuneCode: "94028",
		Department: "94", EducationPriority: "rep",
	}
	if *ev != want {
		t.Fatalf("event = %+v, want %+v", *ev, want)
	}
	if s.Exists() {
		t.Fatal("deciding changed the aggregate")
	}
	s.Apply(ev)
	if !s.Exists() || s.Registered != want {
		t.Fatalf("after Apply: exists=%v, %+v", s.Exists(), s.Registered)
	}

	// The same registration again (a retried command) changes nothing,
	// whitespace aside.
	wantNothing(t)(s.Register(in, places))
	wantNothing(t)(s.Register(collegeInput(), places))

	// A different registration of the same UAI is a conflict.
	changes := []func(*domain.RegisterSchoolInput){
		func(in *domain.RegisterSchoolInput) { in.Name = "Collège Jean Moulin" },
		func(in *domain.RegisterSchoolInput) { in.EducationPriority = "rep_plus" },
		func(in *domain.RegisterSchoolInput) { in.QPV = true },
		func(in *domain.RegisterSchoolInput) { in.CommuneCode = "94046" },
		func(in *domain.RegisterSchoolInput) { in.Kind = "lycee" },
	}
	for i, change := range changes {
		in := collegeInput()
		change(&in)
		evs, err := s.Register(in, places)
		wantIs(t, evs, err, domain.ErrConflict)
		if t.Failed() {
			t.Fatalf("change %d", i)
		}
	}
	// Input is still validated first.
	bad := collegeInput()
	bad.Kind = "primaire"
	_, err := s.Register(bad, places)
	wantFields(t, err, "kind")
}

func TestSchoolRegisterValidation(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(*domain.RegisterSchoolInput)
		fields []string
	}{
		{"lower-case UAI letter", func(in *domain.RegisterSchoolInput) { in.UAI = "0941234a" }, []string{"uai"}},
		{"short UAI", func(in *domain.RegisterSchoolInput) { in.UAI = "094123A" }, []string{"uai"}},
		{"no name", func(in *domain.RegisterSchoolInput) { in.Name = "  " }, []string{"name"}},
		{"long name", func(in *domain.RegisterSchoolInput) { in.Name = strings.Repeat("é", 101) }, []string{"name"}}, // 202 bytes
		{"primary school", func(in *domain.RegisterSchoolInput) { in.Kind = "ecole" }, []string{"kind"}},
		{"accented kind", func(in *domain.RegisterSchoolInput) { in.Kind = "collège" }, []string{"kind"}},
		{"unknown commune", func(in *domain.RegisterSchoolInput) { in.CommuneCode = "" }, []string{"commune_code"}},
		{"priority", func(in *domain.RegisterSchoolInput) { in.EducationPriority = "rep+" }, []string{"education_priority"}},
		{"no priority", func(in *domain.RegisterSchoolInput) { in.EducationPriority = "" }, []string{"education_priority"}},
		{"everything", func(in *domain.RegisterSchoolInput) { *in = domain.RegisterSchoolInput{} },
			[]string{"uai", "name", "kind", "commune_code", "education_priority"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := collegeInput()
			tt.edit(&in)
			var s domain.School
			evs, err := s.Register(in, places)
			wantInvalid(t, evs, err, tt.fields...)
		})
	}
	for _, prio := range []string{"none", "rep", "rep_plus"} {
		in := lyceeInput()
		in.EducationPriority = prio
		var s domain.School
		if ev := only[*domain.SchoolRegistered](t, must(t)(s.Register(in, places))); ev.EducationPriority != prio || !ev.QPV || ev.Kind != "lycee" {
			t.Errorf("priority %q: %+v", prio, *ev)
		}
	}
}

func TestRegisterPupil(t *testing.T) {
	college := newSchool(t, collegeInput())
	lycee := newSchool(t, lyceeInput())
	tests := []struct {
		school *domain.School
		grade  domain.Grade
	}{
		{college, domain.Grade4e},
		{college, domain.Grade3e},
		{lycee, domain.Grade2de},
	}
	for _, tt := range tests {
		in := pupilInput(tt.school.Registered.UAI, string(tt.grade))
		in.FirstName, in.LastName, in.ClassName = " Léa ", " Martin ", " 3eB "
		in.Guardians = append(in.Guardians, domain.Guardian{Name: "Karim Martin", Email: "k.martin@example.com", Phone: "+33612345678"})
		ev := only[*domain.PupilRegistered](t, must(t)(domain.RegisterPupil("p-1", in, tt.school, now)))
		want := domain.PupilRegistered{
			PupilID: "p-1", SchoolUAI: tt.school.Registered.UAI, Department: "94", Grade: tt.grade,
			ClassName: "3eB", GuardianCount: 2, FirstName: "Léa", LastName: "Martin", BirthDate: "2011-05-12",
			Guardians: []domain.Guardian{
				{Name: "Sophie Martin", Email: "sophie.martin@example.fr", Phone: "06 12 34 56 78"},
				{Name: "Karim Martin", Email: "k.martin@example.com", Phone: "+33612345678"},
			},
		}
		if !reflect.DeepEqual(*ev, want) {
			t.Errorf("grade %s: event = %+v, want %+v", tt.grade, *ev, want)
		}
		var p domain.Pupil
		p.Apply(ev)
		if !p.Exists() || !reflect.DeepEqual(p.Registered, want) {
			t.Errorf("after Apply: exists=%v, %+v", p.Exists(), p.Registered)
		}
	}
}

func TestRegisterPupilValidation(t *testing.T) {
	college := newSchool(t, collegeInput())
	lycee := newSchool(t, lyceeInput())
	guardian := func(name, email, phone string) domain.Guardian {
		return domain.Guardian{Name: name, Email: email, Phone: phone}
	}
	ok := guardian("Sophie Martin", "sophie.martin@example.fr", "0612345678")
	tests := []struct {
		name   string
		school *domain.School
		edit   func(*domain.RegisterPupilInput)
		fields []string
	}{
		{"2de in a collège", college, func(in *domain.RegisterPupilInput) { in.Grade = "2de" }, []string{"grade"}},
		{"3e in a lycée", lycee, func(in *domain.RegisterPupilInput) { in.Grade = "3e"; in.SchoolUAI = "0945678B" }, []string{"grade"}},
		{"4e in a lycée", lycee, func(in *domain.RegisterPupilInput) { in.Grade = "4e"; in.SchoolUAI = "0945678B" }, []string{"grade"}},
		{"unknown grade", college, func(in *domain.RegisterPupilInput) { in.Grade = "5e" }, []string{"grade"}},
		{"bad UAI", college, func(in *domain.RegisterPupilInput) { in.SchoolUAI = "941234A" }, []string{"school_uai"}},
		{"no school", nil, func(*domain.RegisterPupilInput) {}, []string{"school_uai"}},
		{"unregistered school", &domain.School{}, func(*domain.RegisterPupilInput) {}, []string{"school_uai"}},
		{"no class", college, func(in *domain.RegisterPupilInput) { in.ClassName = "" }, []string{"class_name"}},
		{"long class", college, func(in *domain.RegisterPupilInput) { in.ClassName = strings.Repeat("x", 51) }, []string{"class_name"}},
		{"no first name", college, func(in *domain.RegisterPupilInput) { in.FirstName = " " }, []string{"first_name"}},
		{"no last name", college, func(in *domain.RegisterPupilInput) { in.LastName = "" }, []string{"last_name"}},
		{"birth date shape", college, func(in *domain.RegisterPupilInput) { in.BirthDate = "12/05/2011" }, []string{"birth_date"}},
		{"birth date not real", college, func(in *domain.RegisterPupilInput) { in.BirthDate = "2011-02-30" }, []string{"birth_date"}},
		{"too young", college, func(in *domain.RegisterPupilInput) { in.BirthDate = "2017-01-01" }, []string{"birth_date"}},
		{"born in the future", college, func(in *domain.RegisterPupilInput) { in.BirthDate = "2027-01-01" }, []string{"birth_date"}},
		{"too old", college, func(in *domain.RegisterPupilInput) { in.BirthDate = "2000-01-01" }, []string{"birth_date"}},
		{"no guardian", college, func(in *domain.RegisterPupilInput) { in.Guardians = nil }, []string{"guardians"}},
		{"three guardians", college, func(in *domain.RegisterPupilInput) { in.Guardians = []domain.Guardian{ok, ok, ok} }, []string{"guardians"}},
		{"guardian without name", college, func(in *domain.RegisterPupilInput) {
			in.Guardians = []domain.Guardian{guardian(" ", ok.Email, ok.Phone)}
		}, []string{"guardians[0].name"}},
		{"second guardian's email", college, func(in *domain.RegisterPupilInput) {
			in.Guardians = []domain.Guardian{ok, guardian("Karim", "karim.example.com", ok.Phone)}
		}, []string{"guardians[1].email"}},
		{"email with display name", college, func(in *domain.RegisterPupilInput) {
			in.Guardians = []domain.Guardian{guardian("Sophie", "Sophie <sophie@example.fr>", ok.Phone)}
		}, []string{"guardians[0].email"}},
		{"email with a space", college, func(in *domain.RegisterPupilInput) {
			in.Guardians = []domain.Guardian{guardian("Sophie", "sophie @example.fr", ok.Phone)}
		}, []string{"guardians[0].email"}},
		{"two emails", college, func(in *domain.RegisterPupilInput) {
			in.Guardians = []domain.Guardian{guardian("Sophie", "a@example.fr,b@example.fr", ok.Phone)}
		}, []string{"guardians[0].email"}},
		{"no email", college, func(in *domain.RegisterPupilInput) {
			in.Guardians = []domain.Guardian{guardian("Sophie", "", ok.Phone)}
		}, []string{"guardians[0].email"}},
		{"short phone", college, func(in *domain.RegisterPupilInput) {
			in.Guardians = []domain.Guardian{guardian("Sophie", ok.Email, "06 12 34 56 7")}
		}, []string{"guardians[0].phone"}},
		{"long phone", college, func(in *domain.RegisterPupilInput) {
			in.Guardians = []domain.Guardian{guardian("Sophie", ok.Email, "+3361234567890123")}
		}, []string{"guardians[0].phone"}},
		{"plus inside phone", college, func(in *domain.RegisterPupilInput) {
			in.Guardians = []domain.Guardian{guardian("Sophie", ok.Email, "06+12345678")}
		}, []string{"guardians[0].phone"}},
		{"letters in phone", college, func(in *domain.RegisterPupilInput) {
			in.Guardians = []domain.Guardian{guardian("Sophie", ok.Email, "06 12 34 56 AB")}
		}, []string{"guardians[0].phone"}},
		{"both guardians wrong", college, func(in *domain.RegisterPupilInput) {
			in.Guardians = []domain.Guardian{guardian("", "x", "1"), guardian("B", "y", "2")}
		}, []string{"guardians[0].name", "guardians[0].email", "guardians[0].phone", "guardians[1].email", "guardians[1].phone"}},
		{"everything", nil, func(in *domain.RegisterPupilInput) { *in = domain.RegisterPupilInput{} },
			[]string{"school_uai", "grade", "class_name", "first_name", "last_name", "birth_date", "guardians"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := pupilInput("0941234A", "3e")
			tt.edit(&in)
			evs, err := domain.RegisterPupil("p-1", in, tt.school, now)
			wantInvalid(t, evs, err, tt.fields...)
		})
	}
}

func TestRegisterPupilPhones(t *testing.T) {
	school := newSchool(t, collegeInput())
	for _, phone := range []string{"0612345678", "06 12 34 56 78", "06.12.34.56.78", "06-12-34-56-78", "+33 6 12 34 56 78", "+262262123456", "123456789012345"} {
		in := pupilInput("0941234A", "3e")
		in.Guardians[0].Phone = phone
		if _, err := domain.RegisterPupil("p", in, school, now); err != nil {
			t.Errorf("phone %q: %v", phone, err)
		}
	}
}

// placementApp is an application of pupil-2de for weeks, as the pupil's
// aggregate sees it.
func placementApp(id string, weeks ...string) *domain.Application {
	return &domain.Application{Submitted: domain.ApplicationSubmitted{ApplicationID: id, OfferID: "off-" + id, PupilID: "pupil-2de", Weeks: weeks}}
}

// The pupil's stream owns the pupil's weeks: a confirmed placement
// reserves them, and no other placement may take any of them until they
// are released.
func TestPupilWeeks(t *testing.T) {
	apps := map[string]*domain.Application{
		"a25-26": placementApp("a25-26", week25, week26),
		"a26-27": placementApp("a26-27", week26, week27),
		"a27":    placementApp("a27", week27),
		"a28":    placementApp("a28", week28),
		"a25":    placementApp("a25", week25),
	}
	reserve := func(id string) func(*domain.Pupil) ([]domain.Event, error) {
		return func(p *domain.Pupil) ([]domain.Event, error) { return p.ReserveWeeks(apps[id]) }
	}
	release := func(id string) func(*domain.Pupil) ([]domain.Event, error) {
		return func(p *domain.Pupil) ([]domain.Event, error) { return p.ReleaseWeeks(id), nil }
	}
	tests := []struct {
		name     string
		reserved []string // placements already reserved
		released []string // then released
		decide   func(*domain.Pupil) ([]domain.Event, error)
		want     domain.Event // nil: no change
		rule     string
	}{
		{name: "reserve with nothing reserved", decide: reserve("a25-26"),
			want: &domain.PupilWeeksReserved{PupilID: "pupil-2de", ApplicationID: "a25-26", Weeks: []string{week25, week26}}},
		{name: "reserve the same placement again", reserved: []string{"a25-26"}, decide: reserve("a25-26")},
		{name: "reserve an overlapping week", reserved: []string{"a25-26"}, decide: reserve("a26-27"), rule: "overlapping_placement"},
		{name: "reserve a week inside a reserved pair", reserved: []string{"a25-26"}, decide: reserve("a25"), rule: "overlapping_placement"},
		{name: "reserve a pair over a reserved week", reserved: []string{"a27"}, decide: reserve("a26-27"), rule: "overlapping_placement"},
		{name: "reserve the next week", reserved: []string{"a25-26"}, decide: reserve("a27"),
			want: &domain.PupilWeeksReserved{PupilID: "pupil-2de", ApplicationID: "a27", Weeks: []string{week27}}},
		{name: "reserve between two placements", reserved: []string{"a25", "a27"}, decide: reserve("a26-27"), rule: "overlapping_placement"},
		{name: "reserve after the overlapping one was released", reserved: []string{"a25-26"}, released: []string{"a25-26"}, decide: reserve("a26-27"),
			want: &domain.PupilWeeksReserved{PupilID: "pupil-2de", ApplicationID: "a26-27", Weeks: []string{week26, week27}}},
		{name: "reserve again after a release", reserved: []string{"a25-26"}, released: []string{"a25-26"}, decide: reserve("a25-26"),
			want: &domain.PupilWeeksReserved{PupilID: "pupil-2de", ApplicationID: "a25-26", Weeks: []string{week25, week26}}},
		{name: "release a reserved placement", reserved: []string{"a25-26", "a28"}, decide: release("a25-26"),
			want: &domain.PupilWeeksReleased{PupilID: "pupil-2de", ApplicationID: "a25-26"}},
		{name: "release a placement not reserved", reserved: []string{"a28"}, decide: release("a25-26")},
		{name: "release a placement already released", reserved: []string{"a28"}, released: []string{"a28"}, decide: release("a28")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pupil2de(t)
			for _, id := range tt.reserved {
				apply(p, must(t)(p.ReserveWeeks(apps[id]))...)
			}
			for _, id := range tt.released {
				apply(p, p.ReleaseWeeks(id)...)
			}
			before := maps.Clone(p.Reserved)
			evs, err := tt.decide(p)
			if !maps.EqualFunc(p.Reserved, before, slices.Equal) {
				t.Fatal("deciding changed the aggregate")
			}
			switch {
			case tt.rule != "":
				wantRule(t, evs, err, tt.rule)
				return
			case tt.want == nil:
				wantNothing(t)(evs, err)
				return
			}
			if len(evs) != 1 || err != nil || !reflect.DeepEqual(evs[0], tt.want) {
				t.Fatalf("got %v, %v; want %+v", evs, err, tt.want)
			}
			apply(p, evs...)
			// No two reserved placements share a week.
			for a, wa := range p.Reserved {
				for b, wb := range p.Reserved {
					if a < b && domain.Overlaps(wa, wb) {
						t.Fatalf("%s %v and %s %v are both reserved", a, wa, b, wb)
					}
				}
			}
		})
	}
}

func TestPupilApplications(t *testing.T) {
	p := pupil2de(t)
	offer := newOffer(t, "off-1", lyceeOfferInput())
	a := submitted(t, "app-1", offer, p, week25, week26)
	ev := only[*domain.PupilApplied](t, p.RecordApplication(a))
	if want := (domain.PupilApplied{PupilID: "pupil-2de", ApplicationID: "app-1", OfferID: "off-1", Weeks: []string{week25, week26}}); !reflect.DeepEqual(*ev, want) {
		t.Fatalf("event = %+v, want %+v", *ev, want)
	}
	if len(p.Applications) != 0 {
		t.Fatal("deciding changed the aggregate")
	}
	p.Apply(ev)
	if evs := p.RecordApplication(a); len(evs) != 0 {
		t.Fatalf("recorded twice: %v", types(evs))
	}
	var missing domain.Pupil
	if evs := missing.RecordApplication(a); len(evs) != 0 {
		t.Fatalf("recorded on a missing pupil: %v", types(evs))
	}

	for _, x := range []*domain.Application{
		placementApp("a26-27", week26, week27), placementApp("a27", week27), placementApp("a28", week28), placementApp("a24", "2026-W24"),
	} {
		apply(p, p.RecordApplication(x)...)
	}
	tests := []struct {
		except string
		weeks  []string
		want   []string
	}{
		{"app-1", []string{week25, week26}, []string{"a26-27"}},
		{"", []string{week26}, []string{"a26-27", "app-1"}},
		{"a26-27", []string{week26, week27}, []string{"a27", "app-1"}},
		{"", []string{week27, week28}, []string{"a26-27", "a27", "a28"}},
		{"a28", []string{week28}, nil},
		{"", []string{"2026-W30"}, nil},
		{"", []string{"2026-W24", week25}, []string{"a24", "app-1"}},
	}
	for _, tt := range tests {
		if got := p.OverlappingApplications(tt.except, tt.weeks); !slices.Equal(got, tt.want) {
			t.Errorf("OverlappingApplications(%q, %v) = %v, want %v", tt.except, tt.weeks, got, tt.want)
		}
	}
}

// Forgetting a pupil erases the personal data of the pupil and the
// guardians, once; a forgotten pupil applies nowhere any more.
func TestPupilForget(t *testing.T) {
	var missing domain.Pupil
	evs, err := missing.Forget()
	wantIs(t, evs, err, domain.ErrNotFound)

	p := pupil3e(t)
	ev := only[*domain.PupilForgotten](t, must(t)(p.Forget()))
	if *ev != (domain.PupilForgotten{PupilID: "pupil-3e"}) {
		t.Fatalf("event = %+v", *ev)
	}
	if p.Forgotten || p.Registered.FirstName == "" {
		t.Fatal("deciding changed the aggregate")
	}
	p.Apply(ev)
	r := p.Registered
	if !p.Forgotten || r.FirstName != "" || r.LastName != "" || r.BirthDate != "" || r.Guardians != nil {
		t.Fatalf("after Apply: forgotten=%v %+v", p.Forgotten, r)
	}
	if r.PupilID != "pupil-3e" || r.SchoolUAI != "0941234A" || r.Grade != domain.Grade3e || r.GuardianCount != 1 {
		t.Fatalf("forgetting lost what is not personal: %+v", r)
	}
	wantNothing(t)(p.Forget())

	offer := newOffer(t, "off-1", collegeOfferInput())
	var a domain.Application
	evs, err = a.Submit("app", offer, p, schoolFor(t, p), domain.SubmitInput{Weeks: []string{week25}, Motivation: "x"}, now)
	if len(evs) != 0 {
		t.Fatalf("events %v", types(evs))
	}
	wantFields(t, err, "pupil_id")
}
