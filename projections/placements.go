package projections

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"passerelle/domain"
	"passerelle/eventstore"
)

// PlacementsName is the projection of applications and conventions.
const PlacementsName = "placements"

// ApplicationDoc is an application as the API serves it. It names no pupil:
// the pupil's identity lives with the pupil, not in the employer's inbox.
type ApplicationDoc struct {
	ID           string       `json:"id"`
	OfferID      string       `json:"offer_id"`
	EmployerID   string       `json:"employer_id"`
	PupilID      string       `json:"pupil_id"`
	SchoolUAI    string       `json:"school_uai,omitempty"`
	Grade        domain.Grade `json:"grade"`
	Status       string       `json:"status"`
	Weeks        []string     `json:"weeks"`
	Motivation   string       `json:"motivation"`
	Erased       bool         `json:"personal_data_erased,omitempty"`
	ConventionID string       `json:"convention_id,omitempty"`
	// Accepted: the employer accepted it once; before that the employer's
	// inbox shows nothing that identifies the pupil.
	Accepted    bool      `json:"accepted"`
	SubmittedAt time.Time `json:"submitted_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// ExpiresAt is when the application expires if nothing happens, and
	// OnExpiry what then happens (the rule of the expiry), while it has a
	// deadline.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	OnExpiry  string     `json:"on_expiry,omitempty"`
	// ProposedBy: the desk proposed the pupil (an application on their
	// behalf); BookingID: the school's group booking made it.
	ProposedBy *domain.Proposer `json:"proposed_by,omitempty"`
	BookingID  string           `json:"booking_id,omitempty"`
}

// ConventionDoc is a convention as the API serves it: its terms, the
// current document's hash, and the signatures on that document.
type ConventionDoc struct {
	ID              string             `json:"id"`
	ApplicationID   string             `json:"application_id"`
	OfferID         string             `json:"offer_id"`
	EmployerID      string             `json:"employer_id"`
	EmployerName    string             `json:"employer_name"`
	PupilID         string             `json:"pupil_id"`
	SchoolUAI       string             `json:"school_uai"`
	SchoolName      string             `json:"school_name"`
	Weeks           []string           `json:"weeks"`
	StartDate       string             `json:"start_date"`
	EndDate         string             `json:"end_date"`
	OfferTitle      string             `json:"offer_title"`
	Address         string             `json:"address"`
	DailyHours      *domain.DailyHours `json:"daily_hours,omitempty"`
	Tutor           *domain.Person     `json:"tutor,omitempty"`
	Activities      string             `json:"activities,omitempty"`
	ReferentTeacher *domain.Person     `json:"referent_teacher,omitempty"`
	BothGuardians   bool               `json:"both_guardians"`
	Status          string             `json:"status"`
	CancelReason    string             `json:"cancel_reason,omitempty"`
	DocumentHash    string             `json:"document_hash"`
	Signatures      []domain.Signature `json:"signatures"`
	RequiredRoles   []domain.Role      `json:"required_roles"`
	MissingRoles    []domain.Role      `json:"missing_roles"`
}

// ApplicationDocKey is an application's document (keys here are relative to the generation prefix).
func ApplicationDocKey(id string) string { return "application:" + id }

// ConventionDocKey is a convention's document.
func ConventionDocKey(id string) string { return "convention:" + id }

// PupilApplicationsKey is the sorted set of a pupil's applications, by log position.
func PupilApplicationsKey(id string) string {
	return "pupil:" + id + ":applications"
}

// EmployerApplicationsKey is the sorted set of the applications to an employer's offers, by log position.
func EmployerApplicationsKey(id string) string { return "employer:" + id + ":applications" }

// EmployersKey is the set of registered employers.
func EmployersKey() string { return "employers" }

// PupilInfoKey is a pupil's follow-up document; it exists for every registered pupil (lists of an unknown one answer 404).
func PupilInfoKey(id string) string { return "pupil:" + id + ":info" }

// SchoolsKey is the set of registered schools (follow-up keys hold no personal data: ids and counts only).
func SchoolsKey() string { return "schools" }

// DepartmentSchoolsKey is the set of the schools of a département.
func DepartmentSchoolsKey(dep string) string { return "department:" + dep + ":schools" }

// SchoolInfoKey is a school's follow-up document.
func SchoolInfoKey(uai string) string { return "school:" + uai + ":info" }

// SchoolPupilsKey is the set of a school's pupils.
func SchoolPupilsKey(uai string) string { return "school:" + uai + ":pupils" }

// SchoolPlacedKey is the set of a school's pupils with a confirmed placement.
func SchoolPlacedKey(uai string) string { return "school:" + uai + ":placed" }

// SchoolSignedKey is the set of a school's pupils with a signed convention.
func SchoolSignedKey(uai string) string { return "school:" + uai + ":signed" }

// SchoolProposalsKey is the set of the applications proposed for a
// school's pupils.
func SchoolProposalsKey(uai string) string { return "school:" + uai + ":proposals" }

// SchoolPendingProposalsKey is the set of the proposals for a school's
// pupils still awaiting an answer (see SchoolProposalsKey).
func SchoolPendingProposalsKey(uai string) string { return "school:" + uai + ":proposals:pending" }

// SchoolConventionsKey is the set of the conventions of a school's pupils.
func SchoolConventionsKey(uai string) string { return "school:" + uai + ":conventions" }

// SchoolInfo is what the follow-up keeps of a school.
type SchoolInfo struct {
	UAI               string `json:"uai"`
	Name              string `json:"name"`
	Department        string `json:"department"`
	Kind              string `json:"kind"`
	EducationPriority string `json:"education_priority"`
	QPV               bool   `json:"qpv"`
}

// PupilInfo is what the follow-up keeps of a pupil: no name.
type PupilInfo struct {
	School    string       `json:"school_uai"`
	Grade     domain.Grade `json:"grade,omitempty"`
	ClassName string       `json:"class_name,omitempty"`
}

// SchoolClassesKey is the set of a school's class names.
func SchoolClassesKey(uai string) string { return "school:" + uai + ":classes" }

// SchoolClassKey is the set of the pupils of one class (a teacher's follow-up list).
func SchoolClassKey(uai, className string) string { return "school:" + uai + ":class:" + className }

// DeadlinesKey is a sorted set of pending applications scored by the Unix
// time at which they expire; the expiry scheduler reads it.
func DeadlinesKey() string { return "deadlines" }

// Placements projects the registrations, applications and conventions.
type Placements struct{}

// Name names the projection.
func (Placements) Name() string { return PlacementsName }

// Layout versions the model's keys and documents.
func (Placements) Layout() int { return 3 }

// ReadsPersonal implements PersonalReader: an application's document shows
// its motivation to those who decide on it, a convention's the names of
// those who signed it.
func (Placements) ReadsPersonal(eventType string) bool {
	switch eventType {
	case domain.ApplicationSubmitted{}.EventType(), domain.ConventionSignatureAdded{}.EventType():
		return true
	}
	return false
}

// Internal documents of the model, beside those the API reads.
func employerKey(id string) string    { return "employer:" + id + ":info" }
func classNamesKey(uai string) string { return "school:" + uai + ":class-names" }

// Touches names the documents an event changes; a forget names the pupil first, then the pupil's applications.
func (Placements) Touches(ev Event, docs Docs) []Ref {
	cat, id := subject(ev)
	switch e := ev.Data.(type) {
	case *domain.EmployerRegistered:
		return []Ref{ref[employerDoc](employerKey(id))}
	case *domain.SchoolRegistered:
		return []Ref{ref[SchoolInfo](SchoolInfoKey(id))}
	case *domain.PupilRegistered:
		return []Ref{ref[pupilDoc](PupilInfoKey(id)), ref[classNames](classNamesKey(e.SchoolUAI))}
	case *domain.PupilForgotten:
		// the pupil's applications copied the motivation, their
		// conventions the names of the pupil and guardians who signed
		refs := []Ref{naming[pupilDoc](PupilInfoKey(id))}
		if p := doc[pupilDoc](docs, PupilInfoKey(id)); p != nil {
			for _, a := range p.Applications {
				refs = append(refs, naming[applicationDoc](ApplicationDocKey(a)))
				if d := doc[applicationDoc](docs, ApplicationDocKey(a)); d != nil && d.ConventionID != "" {
					refs = append(refs, ref[conventionDoc](ConventionDocKey(d.ConventionID)))
				}
			}
		}
		return refs
	case *domain.PupilWeeksReserved, *domain.PupilWeeksReleased:
		return []Ref{ref[pupilDoc](PupilInfoKey(id))}
	case *domain.ApplicationSubmitted:
		return []Ref{ref[applicationDoc](ApplicationDocKey(id)), ref[pupilDoc](PupilInfoKey(e.PupilID))}
	case *domain.ConventionSigned, *domain.ConventionCancelled:
		// the pupil's follow-up counts signed conventions
		refs := []Ref{naming[conventionDoc](ConventionDocKey(id))}
		if c := doc[conventionDoc](docs, ConventionDocKey(id)); c != nil {
			refs = append(refs, ref[pupilDoc](PupilInfoKey(c.PupilID)))
		}
		return refs
	}
	switch cat {
	case "application":
		return []Ref{ref[applicationDoc](ApplicationDocKey(id))}
	case "convention":
		return []Ref{ref[conventionDoc](ConventionDocKey(id))}
	}
	return nil
}

// Folds the events of applications and conventions, and those Touches
// names by their type.
func (Placements) Folds(category, eventType string) bool {
	return category == "application" || category == "convention" || placementsTypes[eventType]
}

// placementsTypes are the types of event Touches names documents for in
// any stream.
var placementsTypes = map[string]bool{
	domain.EmployerRegistered{}.EventType(): true, domain.SchoolRegistered{}.EventType(): true,
	domain.PupilRegistered{}.EventType(): true, domain.PupilForgotten{}.EventType(): true,
	domain.PupilWeeksReserved{}.EventType(): true, domain.PupilWeeksReleased{}.EventType(): true,
	domain.ApplicationSubmitted{}.EventType(): true, domain.ConventionSigned{}.EventType(): true,
	domain.ConventionCancelled{}.EventType(): true,
}

// Apply folds an event into the registration, application and convention documents.
func (Placements) Apply(ev Event, docs Docs) {
	_, id := subject(ev)
	switch e := ev.Data.(type) {
	case *domain.EmployerRegistered:
		docs[employerKey(id)] = &employerDoc{ID: id}
	case *domain.SchoolRegistered:
		docs[SchoolInfoKey(id)] = &SchoolInfo{UAI: e.UAI, Name: e.Name, Department: e.Department, Kind: e.Kind, EducationPriority: e.EducationPriority, QPV: e.QPV}
	case *domain.PupilRegistered:
		docs[PupilInfoKey(id)] = &pupilDoc{ID: id, PupilInfo: PupilInfo{School: e.SchoolUAI, Grade: e.Grade, ClassName: e.ClassName}}
		if e.ClassName != "" {
			c := create[classNames](docs, classNamesKey(e.SchoolUAI))
			c.School = e.SchoolUAI
			c.Names = addOnce(c.Names, e.ClassName)
		}
	case *domain.PupilForgotten:
		eraseCopies(docs)
	case *domain.ApplicationSubmitted:
		a := &applicationDoc{Position: ev.Position, ApplicationDoc: ApplicationDoc{
			ID: e.ApplicationID, OfferID: e.OfferID, EmployerID: e.EmployerID, PupilID: e.PupilID,
			SchoolUAI: e.SchoolUAI, Grade: e.Grade, Status: domain.StatusSubmitted, Weeks: e.Weeks,
			Motivation: e.Motivation, Erased: e.Erased, SubmittedAt: e.SubmittedAt, UpdatedAt: ev.OccurredAt,
			ProposedBy: e.ProposedBy, BookingID: e.BookingID,
		}}
		a.deadline()
		docs[ApplicationDocKey(id)] = a
		if p := doc[pupilDoc](docs, PupilInfoKey(e.PupilID)); p != nil {
			p.Applications = addOnce(p.Applications, id)
		}
	case *domain.ConventionDrafted:
		docs[ConventionDocKey(id)] = newConvention(e)
	case *domain.PupilWeeksReserved:
		if p := doc[pupilDoc](docs, PupilInfoKey(id)); p != nil {
			p.Placements = addOnce(p.Placements, e.ApplicationID)
		}
	case *domain.PupilWeeksReleased:
		if p := doc[pupilDoc](docs, PupilInfoKey(id)); p != nil {
			p.Placements = remove(p.Placements, e.ApplicationID)
		}
	default:
		followUp(ev, docs)
	}
}

// eraseCopies erases the personal data this model copied into the
// documents a forget touched (the pupil's); ids and counts stay.
func eraseCopies(docs Docs) {
	for _, d := range docs {
		switch d := d.(type) {
		case *applicationDoc:
			d.Motivation, d.Erased = "", true
		case *conventionDoc:
			for i := range d.Signatures {
				d.Signatures[i].Erase()
			}
		}
	}
}

// followUp folds the events that follow an application or a convention
// into their documents, when known; a signed convention counts for its
// pupil.
func followUp(ev Event, docs Docs) {
	cat, id := subject(ev)
	if a := doc[applicationDoc](docs, ApplicationDocKey(id)); cat == "application" && a != nil {
		a.apply(ev)
	}
	c := doc[conventionDoc](docs, ConventionDocKey(id))
	if cat != "convention" || c == nil {
		return
	}
	c.apply(ev.Data)
	if p := doc[pupilDoc](docs, PupilInfoKey(c.PupilID)); p != nil {
		p.Signed = remove(p.Signed, id)
		if c.Status == domain.ConvSigned {
			p.Signed = append(p.Signed, id)
		}
	}
}

func addOnce(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

func remove(list []string, s string) []string {
	return slices.DeleteFunc(list, func(x string) bool { return x == s })
}

// employerDoc is a registered employer.
type employerDoc struct {
	ID string `json:"employer_id"`
}

func (d *employerDoc) Entries(dst []Entry) []Entry { return append(dst, member(EmployersKey(), d.ID)) }

// Entries list a school among the schools, nationally and in its
// département.
func (s *SchoolInfo) Entries(dst []Entry) []Entry {
	return append(dst, member(SchoolsKey(), s.UAI), member(DepartmentSchoolsKey(s.Department), s.UAI))
}

// classNames are the names of a school's classes, which its pupils share.
type classNames struct {
	School string   `json:"school_uai"`
	Names  []string `json:"names"`
}

func (c *classNames) Entries(dst []Entry) []Entry {
	for _, n := range c.Names {
		dst = append(dst, member(SchoolClassesKey(c.School), n))
	}
	return dst
}

// pupilDoc is the follow-up of a pupil: PupilInfo, which the API reads,
// and the ids behind the school's lists.
type pupilDoc struct {
	ID string `json:"pupil_id"`
	PupilInfo
	Applications []string `json:"applications,omitempty"`       // submitted
	Placements   []string `json:"placements,omitempty"`         // applications holding the pupil's weeks
	Signed       []string `json:"signed_conventions,omitempty"` // signed conventions
}

// Entries list the pupil in the school's sets: registered, in a class,
// placed while some weeks are reserved, signed while a convention is.
func (p *pupilDoc) Entries(out []Entry) []Entry {
	out = append(out, member(SchoolPupilsKey(p.School), p.ID))
	if p.ClassName != "" {
		out = append(out, member(SchoolClassKey(p.School, p.ClassName), p.ID))
	}
	if len(p.Placements) > 0 {
		out = append(out, member(SchoolPlacedKey(p.School), p.ID))
	}
	if len(p.Signed) > 0 {
		out = append(out, member(SchoolSignedKey(p.School), p.ID))
	}
	return out
}

// applicationDoc is ApplicationDoc and what its entries need besides.
type applicationDoc struct {
	ApplicationDoc
	Position   eventstore.Position `json:"position"` // of the submission: the order of the lists
	AcceptedAt time.Time           `json:"accepted_at,omitzero"`
}

// aggregate is the application as the domain folds it.
func (a *applicationDoc) aggregate() domain.Application {
	return domain.Application{Status: a.Status, AcceptedAt: a.AcceptedAt, ConventionID: a.ConventionID,
		Submitted: domain.ApplicationSubmitted{SubmittedAt: a.SubmittedAt}}
}

func (a *applicationDoc) apply(ev Event) {
	agg := a.aggregate()
	agg.Apply(ev.Data)
	a.Status, a.AcceptedAt, a.ConventionID, a.UpdatedAt = agg.Status, agg.AcceptedAt, agg.ConventionID, ev.OccurredAt
	a.Accepted = a.Accepted || a.Status == domain.StatusAccepted
	a.deadline()
}

// deadline shows the application's deadline and what happens then.
func (a *applicationDoc) deadline() {
	agg := a.aggregate()
	a.ExpiresAt, a.OnExpiry = nil, ""
	if t, ok := agg.Deadline(); ok {
		a.ExpiresAt, a.OnExpiry = &t, domain.ExpiryRule(a.Status)
	}
}

// Entries list the application for its pupil and its employer, and under
// its deadline while it has one.
func (a *applicationDoc) Entries(out []Entry) []Entry {
	out = append(out,
		scored(PupilApplicationsKey(a.PupilID), a.ID, float64(a.Position)),
		scored(EmployerApplicationsKey(a.EmployerID), a.ID, float64(a.Position)))
	agg := a.aggregate()
	if t, ok := agg.Deadline(); ok {
		out = append(out, scored(DeadlinesKey(), a.ID, float64(t.Unix())))
	}
	if a.ProposedBy != nil && a.SchoolUAI != "" {
		out = append(out, member(SchoolProposalsKey(a.SchoolUAI), a.ID))
		if agg.Pending() {
			out = append(out, member(SchoolPendingProposalsKey(a.SchoolUAI), a.ID))
		}
	}
	return out
}

// conventionDoc is ConventionDoc and the domain's progress of the
// convention, which its status and missing roles come from.
type conventionDoc struct {
	ConventionDoc
	Progress domain.ConventionProgress `json:"progress"`
}

func newConvention(e *domain.ConventionDrafted) *conventionDoc {
	c := &conventionDoc{ConventionDoc: ConventionDoc{
		ID: e.ConventionID, ApplicationID: e.ApplicationID, OfferID: e.OfferID, EmployerID: e.EmployerID,
		EmployerName: e.EmployerName, PupilID: e.PupilID, SchoolUAI: e.SchoolUAI, SchoolName: e.SchoolName,
		Weeks: e.Weeks, StartDate: e.StartDate, EndDate: e.EndDate, OfferTitle: e.OfferTitle, Address: e.Address,
		DailyHours: e.DailyHours, DocumentHash: e.DocumentHash, Signatures: []domain.Signature{},
	}}
	c.progressed(e)
	return c
}

func (c *conventionDoc) apply(e domain.Event) {
	switch e := e.(type) {
	case *domain.ConventionCompleted:
		if e.Party == "employer" {
			c.Tutor, c.Activities = e.Tutor, e.Activities
		} else {
			c.ReferentTeacher, c.BothGuardians = e.ReferentTeacher, e.BothGuardians
		}
		c.DocumentHash, c.Signatures = e.DocumentHash, []domain.Signature{}
	case *domain.ConventionSignatureAdded:
		c.Signatures = append(c.Signatures, domain.SignatureOf(e))
	case *domain.ConventionCancelled:
		c.CancelReason = e.Reason
	}
	c.progressed(e)
}

// progressed folds e into the convention's progress and shows it.
func (c *conventionDoc) progressed(e domain.Event) {
	c.Progress.Apply(e)
	c.Status, c.RequiredRoles = c.Progress.Status(), c.Progress.Roles
	c.MissingRoles = append([]domain.Role{}, c.Progress.MissingRoles()...)
}

func (c *conventionDoc) Entries(dst []Entry) []Entry {
	return append(dst, member(SchoolConventionsKey(c.SchoolUAI), c.ID))
}

// All returns every projector of the service.
func All() []Projector { return []Projector{Offers{}, Stats{}, Placements{}} }

// DueApplications lists the pending applications whose deadline is at or
// before now, at most limit of them, from the served generation.
func DueApplications(ctx context.Context, rdb redis.UniversalClient, now time.Time, limit int64) ([]string, error) {
	prefix, err := ActivePrefix(ctx, rdb, PlacementsName)
	if err != nil || prefix == "" {
		return nil, err
	}
	return rdb.ZRangeByScore(ctx, prefix+DeadlinesKey(), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(now.Unix(), 10), Count: limit,
	}).Result()
}
