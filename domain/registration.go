package domain

import (
	"fmt"
	"net/mail"
	"sort"
	"strings"
	"time"
)

// Places is the reference data the domain validates locations against.
type Places interface {
	// CommuneDepartment returns the département of an INSEE commune code.
	CommuneDepartment(code string) (string, bool)
	// CommuneCentre returns the coordinates of a commune's centre.
	CommuneCentre(code string) (lat, lon float64, ok bool)
	// SectorExists reports whether a national sector code exists.
	SectorExists(code string) bool
	// DepartmentExists and RegionExists check département and INSEE
	// région codes.
	DepartmentExists(code string) bool
	RegionExists(code string) bool
}

// Employer is a host: a company, a public administration or an association.
type Employer struct {
	Registered EmployerRegistered
	exists     bool
}

// Exists reports whether the employer is registered.
func (a *Employer) Exists() bool { return a.exists }

// Apply folds one of the employer's events into its state.
func (a *Employer) Apply(e Event) {
	if ev, ok := e.(*EmployerRegistered); ok {
		a.Registered, a.exists = *ev, true
	}
}

// RegisterEmployerInput is the register-employer command.
type RegisterEmployerInput struct {
	Name, SIRET, Kind, CommuneCode, Address string
}

// RegisterEmployer decides the registration of a new employer.
func RegisterEmployer(id string, in RegisterEmployerInput, places Places) ([]Event, error) {
	p := Problems{}
	required(p, "name", in.Name, 200)
	if !ValidSIRET(in.SIRET) {
		p.Add("siret", "must be 14 digits with a valid Luhn key")
	}
	switch in.Kind {
	case "company", "public", "association":
	default:
		p.Add("kind", "must be one of company, public, association")
	}
	dep, ok := places.CommuneDepartment(in.CommuneCode)
	if !ok {
		p.Add("commune_code", "must be an INSEE commune code")
	}
	required(p, "address", in.Address, 300)
	if err := p.Err(); err != nil {
		return nil, err
	}
	return []Event{&EmployerRegistered{
		EmployerID: id, Name: strings.TrimSpace(in.Name), SIRET: in.SIRET, Kind: in.Kind,
		CommuneCode: in.CommuneCode, Department: dep, Address: strings.TrimSpace(in.Address),
	}}, nil
}

// Register decides the registration of the employer of a SIRET, on the
// employer's stream (one per SIRET): the same registration again changes
// nothing, another with the same SIRET is refused naming the employer
// registered.
func (a *Employer) Register(id string, in RegisterEmployerInput, places Places) ([]Event, error) {
	evs, err := RegisterEmployer(id, in, places)
	if err != nil || !a.exists {
		return evs, err
	}
	if *evs[0].(*EmployerRegistered) == a.Registered {
		return nil, nil
	}
	taken := "already registered as employer " + a.Registered.EmployerID
	return nil, &RuleError{Rule: "siret_registered", Message: fmt.Sprintf("SIRET %s is %s", in.SIRET, taken),
		Fields: map[string]string{"siret": taken}}
}

// School is a collège or a lycée, identified by its UAI.
type School struct {
	Registered SchoolRegistered
	exists     bool
}

// Exists reports whether the school is registered.
func (a *School) Exists() bool { return a.exists }

// Apply folds one of the school's events into its state.
func (a *School) Apply(e Event) {
	if ev, ok := e.(*SchoolRegistered); ok {
		a.Registered, a.exists = *ev, true
	}
}

// RegisterSchoolInput is the register-school command.
type RegisterSchoolInput struct {
	UAI, Name, Kind, CommuneCode, EducationPriority string
	QPV                                             bool
}

// Register decides the registration of a school; its id is its UAI.
func (a *School) Register(in RegisterSchoolInput, places Places) ([]Event, error) {
	p := Problems{}
	if !ValidUAI(in.UAI) {
		p.Add("uai", "must be 7 digits followed by an upper-case letter")
	}
	required(p, "name", in.Name, 200)
	switch in.Kind {
	case "college", "lycee":
	default:
		p.Add("kind", "must be one of college, lycee")
	}
	dep, ok := places.CommuneDepartment(in.CommuneCode)
	if !ok {
		p.Add("commune_code", "must be an INSEE commune code")
	}
	switch in.EducationPriority {
	case "none", "rep", "rep_plus":
	default:
		p.Add("education_priority", "must be one of none, rep, rep_plus")
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	ev := &SchoolRegistered{
		UAI: in.UAI, Name: strings.TrimSpace(in.Name), Kind: in.Kind, CommuneCode: in.CommuneCode,
		Department: dep, EducationPriority: in.EducationPriority, QPV: in.QPV,
	}
	if a.exists {
		if a.Registered == *ev {
			return nil, nil // the same registration again changes nothing
		}
		return nil, Refuse("school_already_registered", "school %s is already registered with other details", in.UAI)
	}
	return []Event{ev}, nil
}

// Pupil is a pupil registered by their school. The pupil's stream also
// owns the pupil's weeks: a confirmed placement reserves them there, so two
// overlapping placements can never both be confirmed.
type Pupil struct {
	Registered   PupilRegistered
	Applications map[string][]string // application -> weeks
	Reserved     map[string][]string // confirmed application -> weeks
	Wishes       *PupilWishesRecorded
	Forgotten    bool
	exists       bool
}

// Exists reports whether the pupil is registered.
func (a *Pupil) Exists() bool { return a.exists }

// Apply folds one of the pupil's events into its state.
func (a *Pupil) Apply(e Event) {
	switch ev := e.(type) {
	case *PupilRegistered:
		a.Registered, a.exists = *ev, true
		if a.Registered.GuardianCount == 0 {
			// registrations stored before the count was recorded list them
			a.Registered.GuardianCount = len(ev.Guardians)
		}
		a.Applications, a.Reserved = map[string][]string{}, map[string][]string{}
	case *PupilApplied:
		a.Applications[ev.ApplicationID] = ev.Weeks
	case *PupilWeeksReserved:
		a.Reserved[ev.ApplicationID] = ev.Weeks
	case *PupilWeeksReleased:
		delete(a.Reserved, ev.ApplicationID)
	case *PupilWishesRecorded:
		a.Wishes = ev
	case *PupilForgotten:
		a.Forgotten = true
		a.Registered.FirstName, a.Registered.LastName, a.Registered.BirthDate, a.Registered.Guardians = "", "", "", nil
	}
}

// Forget erases the pupil's personal data; the key destruction that makes
// it final is the command's second step.
func (a *Pupil) Forget() ([]Event, error) {
	if !a.exists {
		return nil, NotFoundf("pupil")
	}
	if a.Forgotten {
		return nil, nil
	}
	return []Event{&PupilForgotten{PupilID: a.Registered.PupilID}}, nil
}

// RecordApplication tracks an application on the pupil's stream.
func (a *Pupil) RecordApplication(app *Application) []Event {
	id := app.Submitted.ApplicationID
	if _, ok := a.Applications[id]; ok || !a.exists {
		return nil
	}
	return []Event{&PupilApplied{PupilID: a.Registered.PupilID, ApplicationID: id, OfferID: app.Submitted.OfferID, Weeks: app.Submitted.Weeks}}
}

// ReserveWeeks takes the application's weeks for a confirmed placement.
func (a *Pupil) ReserveWeeks(app *Application) ([]Event, error) {
	id := app.Submitted.ApplicationID
	if _, ok := a.Reserved[id]; ok {
		return nil, nil
	}
	for other, weeks := range a.Reserved {
		if Overlaps(weeks, app.Submitted.Weeks) {
			return nil, Refuse("overlapping_placement", "the pupil already has a confirmed placement (application %s) in weeks %v", other, weeks)
		}
	}
	return []Event{&PupilWeeksReserved{PupilID: a.Registered.PupilID, ApplicationID: id, Weeks: app.Submitted.Weeks}}, nil
}

// ReleaseWeeks frees the weeks of a placement that will not take place.
func (a *Pupil) ReleaseWeeks(applicationID string) []Event {
	if _, ok := a.Reserved[applicationID]; !ok {
		return nil
	}
	return []Event{&PupilWeeksReleased{PupilID: a.Registered.PupilID, ApplicationID: applicationID}}
}

// OverlappingApplications lists the pupil's other applications that share
// a week with weeks.
func (a *Pupil) OverlappingApplications(except string, weeks []string) []string {
	var out []string
	for id, w := range a.Applications {
		if id != except && Overlaps(w, weeks) {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// RegisterPupilInput is the register-pupil command.
type RegisterPupilInput struct {
	SchoolUAI, Grade, ClassName, FirstName, LastName, BirthDate string
	Guardians                                                   []Guardian
}

// RegisterPupil decides the registration of a pupil of school; now bounds
// the birth date.
func RegisterPupil(id string, in RegisterPupilInput, school *School, now time.Time) ([]Event, error) {
	p := Problems{}
	if !ValidUAI(in.SchoolUAI) {
		p.Add("school_uai", "must be 7 digits followed by an upper-case letter")
	} else if school == nil || !school.Exists() {
		p.Add("school_uai", "no school is registered with this UAI")
	}
	g := Grade(in.Grade)
	if !g.Valid() {
		p.Add("grade", "must be one of 4e, 3e, 2de")
	} else if school != nil && school.Exists() && (school.Registered.Kind == "lycee") != g.Lycee() {
		p.Add("grade", fmt.Sprintf("a %s has no pupils in %s", school.Registered.Kind, g))
	}
	required(p, "class_name", in.ClassName, 50)
	required(p, "first_name", in.FirstName, 100)
	required(p, "last_name", in.LastName, 100)
	if bd, err := ParseDate(in.BirthDate); err != nil {
		p.Add("birth_date", err.Error())
	} else if age := now.Sub(bd).Hours() / 24 / 365.25; age < 10 || age > 25 {
		p.Add("birth_date", "the pupil must be between 10 and 25 years old")
	}
	checkGuardians(p, in.Guardians)
	if err := p.Err(); err != nil {
		return nil, err
	}
	return []Event{&PupilRegistered{
		PupilID: id, SchoolUAI: in.SchoolUAI, Department: school.Registered.Department, Grade: g,
		ClassName: strings.TrimSpace(in.ClassName), GuardianCount: len(in.Guardians), FirstName: strings.TrimSpace(in.FirstName),
		LastName: strings.TrimSpace(in.LastName), BirthDate: in.BirthDate, Guardians: in.Guardians,
	}}, nil
}

// checkGuardians requires one or two guardians, each with a name, an
// e-mail address and a phone number.
func checkGuardians(p Problems, guardians []Guardian) {
	if n := len(guardians); n < 1 || n > 2 {
		p.Add("guardians", "one or two legal guardians are required")
	}
	for i, gd := range guardians {
		f := fmt.Sprintf("guardians[%d]", i)
		required(p, f+".name", gd.Name, 200)
		if _, err := mail.ParseAddress(gd.Email); err != nil || strings.ContainsAny(gd.Email, "<> ") {
			p.Add(f+".email", "must be an e-mail address")
		}
		if !validPhone(gd.Phone) {
			p.Add(f+".phone", "must be a phone number of 10 to 15 digits, optionally starting with +")
		}
	}
}

func validPhone(s string) bool {
	digits := 0
	for i, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '+' && i == 0, c == ' ', c == '.', c == '-':
		default:
			return false
		}
	}
	return digits >= 10 && digits <= 15
}
