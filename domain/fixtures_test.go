package domain_test

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"passerelle/domain"
	"passerelle/domain/refdata"
)

var places = refdata.MustLoad()

// now is the clock of every decision in these tests.
var now = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)

const (
	week25 = "2026-W25"
	week26 = "2026-W26"
	week27 = "2026-W27"
	week28 = "2026-W28"
)

type applier interface{ Apply(domain.Event) }

func apply(a applier, evs ...domain.Event) {
	for _, e := range evs {
		a.Apply(e)
	}
}

// must returns a function that fails the test when a decision fails and
// otherwise returns the decided events.
func must(t *testing.T) func([]domain.Event, error) []domain.Event {
	t.Helper()
	return func(evs []domain.Event, err error) []domain.Event {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return evs
	}
}

// wantFields checks that err is a *ValidationError naming exactly the
// given fields, each with a rule.
func wantFields(t *testing.T, err error, want ...string) {
	t.Helper()
	var ve *domain.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error = %v, want a *ValidationError naming %v", err, want)
	}
	got := slices.Sorted(maps.Keys(ve.Fields))
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Fatalf("fields = %v, want %v (%v)", got, want, err)
	}
	for _, k := range got {
		if ve.Fields[k] == "" {
			t.Errorf("field %s has an empty rule", k)
		}
	}
}

// wantInvalid checks that a decision refused input naming exactly the
// given fields, with no events.
func wantInvalid(t *testing.T, evs []domain.Event, err error, fields ...string) {
	t.Helper()
	if len(evs) != 0 {
		t.Fatalf("events %v with invalid input", types(evs))
	}
	wantFields(t, err, fields...)
}

// wantIs checks that err wraps target, and that no events came with it.
func wantIs(t *testing.T, evs []domain.Event, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want one wrapping %v", err, target)
	}
	if len(evs) != 0 {
		t.Fatalf("events %v came with the error", types(evs))
	}
}

// wantNothing returns a function that checks a decision that succeeds and
// changes nothing.
func wantNothing(t *testing.T) func([]domain.Event, error) {
	t.Helper()
	return func(evs []domain.Event, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		if len(evs) != 0 {
			t.Fatalf("events = %v, want none", types(evs))
		}
	}
}

// only checks that evs holds exactly one event of type T and returns it.
func only[T domain.Event](t *testing.T, evs []domain.Event) T {
	t.Helper()
	if len(evs) != 1 {
		t.Fatalf("events = %v, want exactly one", types(evs))
	}
	e, ok := evs[0].(T)
	if !ok {
		var zero T
		t.Fatalf("event is %T, want %T", evs[0], zero)
	}
	return e
}

func types(evs []domain.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.EventType()
	}
	return out
}

func employerInput() domain.RegisterEmployerInput {
	return domain.RegisterEmployerInput{
		Name: "Boulangerie Martin", SIRET: "73282932000074", Kind: "company",
		CommuneCode: "94028", Address: "12 rue du Général Leclerc",
	}
}

func collegeInput() domain.RegisterSchoolInput {
	return domain.RegisterSchoolInput{
		UAI: "0941234A", Name: "Collège Louis Pasteur", Kind: "college",
		CommuneCode: "94028", EducationPriority: "rep",
	}
}

func lyceeInput() domain.RegisterSchoolInput {
	return domain.RegisterSchoolInput{
		UAI: "0945678B", Name: "Lycée Léon Blum", Kind: "lycee",
		CommuneCode: "94028", EducationPriority: "none", QPV: true,
	}
}

func pupilInput(uai, grade string) domain.RegisterPupilInput {
	return domain.RegisterPupilInput{
		SchoolUAI: uai, Grade: grade, ClassName: "3eB", FirstName: "Léa", LastName: "Martin",
		BirthDate: "2011-05-12",
		Guardians: []domain.Guardian{{Name: "Sophie Martin", Email: "sophie.martin@example.fr", Phone: "06 12 34 56 78"}},
	}
}

// collegeOfferInput is an offer for 4e and 3e over weeks 25 and 26.
func collegeOfferInput() domain.PostOfferInput {
	return domain.PostOfferInput{
		Title: "Découverte du fournil", Description: "Une semaine aux côtés des boulangers.",
		Sector: "s12", Grades: []string{"4e", "3e"}, Weeks: []string{week26, week25}, Seats: 2,
		CommuneCode: "94028", Address: "12 rue du Général Leclerc", Lat: 48.78454, Lon: 2.45233,
		DailyHours: &domain.DailyHours{Start: "09:00", End: "16:00", LunchBreakMinutes: 60},
	}
}

// lyceeOfferInput is a one-seat offer for 2de over weeks 25 to 27.
func lyceeOfferInput() domain.PostOfferInput {
	in := collegeOfferInput()
	in.Grades = []string{"2de"}
	in.Weeks = []string{week25, week26, week27}
	in.Seats = 1
	return in
}

func newEmployer(t *testing.T) *domain.Employer {
	t.Helper()
	var e domain.Employer
	apply(&e, must(t)(domain.RegisterEmployer("emp-1", employerInput(), places))...)
	return &e
}

func newSchool(t *testing.T, in domain.RegisterSchoolInput) *domain.School {
	t.Helper()
	var s domain.School
	apply(&s, must(t)(s.Register(in, places))...)
	return &s
}

func newPupil(t *testing.T, id string, school *domain.School, grade string) *domain.Pupil {
	t.Helper()
	var p domain.Pupil
	apply(&p, must(t)(domain.RegisterPupil(id, pupilInput(school.Registered.UAI, grade), school, now))...)
	return &p
}

func newOffer(t *testing.T, id string, in domain.PostOfferInput) *domain.Offer {
	t.Helper()
	var o domain.Offer
	apply(&o, must(t)(domain.PostOffer(id, newEmployer(t), in, places, now))...)
	return &o
}

func pupil3e(t *testing.T) *domain.Pupil {
	t.Helper()
	return newPupil(t, "pupil-3e", newSchool(t, collegeInput()), "3e")
}

func pupil2de(t *testing.T) *domain.Pupil {
	t.Helper()
	return newPupil(t, "pupil-2de", newSchool(t, lyceeInput()), "2de")
}

// schoolFor returns the registered school of a pupil registered in one of
// the two fixture schools (nil for any other school).
func schoolFor(t *testing.T, pupil *domain.Pupil) *domain.School {
	t.Helper()
	if pupil == nil {
		return nil
	}
	for _, in := range []domain.RegisterSchoolInput{collegeInput(), lyceeInput()} {
		if in.UAI == pupil.Registered.SchoolUAI {
			return newSchool(t, in)
		}
	}
	return nil
}

// submitted returns the application of pupil, from a fixture school, to
// offer for weeks, decided at now.
func submitted(t *testing.T, id string, offer *domain.Offer, pupil *domain.Pupil, weeks ...string) *domain.Application {
	t.Helper()
	return submittedFrom(t, id, offer, pupil, schoolFor(t, pupil), weeks...)
}

// submittedFrom is submitted for a pupil of any school.
func submittedFrom(t *testing.T, id string, offer *domain.Offer, pupil *domain.Pupil, school *domain.School, weeks ...string) *domain.Application {
	t.Helper()
	var a domain.Application
	in := domain.SubmitInput{Weeks: weeks, Motivation: "J'aime le pain."}
	apply(&a, must(t)(a.Submit(id, offer, pupil, school, in, now))...)
	return &a
}

// wantRule checks that err is a *RuleError with the given rule, that it is
// a conflict, and that no events came with it.
func wantRule(t *testing.T, evs []domain.Event, err error, rule string) {
	t.Helper()
	var re *domain.RuleError
	if !errors.As(err, &re) {
		t.Fatalf("error = %v (%T), want a *RuleError %s", err, err, rule)
	}
	if re.Rule != rule {
		t.Fatalf("rule = %q (%v), want %q", re.Rule, err, rule)
	}
	if !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("rule error %v is not a conflict", err)
	}
	if strings.TrimSpace(re.Message) == "" {
		t.Fatalf("rule %s has no message", rule)
	}
	if len(evs) != 0 {
		t.Fatalf("events %v came with the error", types(evs))
	}
}

// newPupilWith registers a pupil of school from a customised input.
func newPupilWith(t *testing.T, id string, school *domain.School, grade string, edit func(*domain.RegisterPupilInput)) *domain.Pupil {
	t.Helper()
	in := pupilInput(school.Registered.UAI, grade)
	if edit != nil {
		edit(&in)
	}
	var p domain.Pupil
	apply(&p, must(t)(domain.RegisterPupil(id, in, school, now))...)
	return &p
}

// twoGuardians gives a pupil a second legal guardian.
func twoGuardians(in *domain.RegisterPupilInput) {
	in.Guardians = append(in.Guardians, domain.Guardian{Name: "Karim Martin", Email: "karim.martin@example.fr", Phone: "+33612345678"})
}
