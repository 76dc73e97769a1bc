package projections

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"passerelle/domain"
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

// Placement keys, relative to the generation prefix.
func ApplicationDocKey(id string) string { return "application:" + id }
func ConventionDocKey(id string) string  { return "convention:" + id }
func PupilApplicationsKey(id string) string {
	return "pupil:" + id + ":applications"
}
func EmployerApplicationsKey(id string) string { return "employer:" + id + ":applications" }

// EmployersKey is the set of registered employers; PupilInfoKey exists for
// every registered pupil (lists of an unknown one answer 404).
func EmployersKey() string          { return "employers" }
func PupilInfoKey(id string) string { return pupilInfoKey(id) }

// School and pupil follow-up keys (no personal data: ids and counts only).
func SchoolsKey() string                     { return "schools" }
func DepartmentSchoolsKey(dep string) string { return "department:" + dep + ":schools" }
func SchoolInfoKey(uai string) string        { return "school:" + uai + ":info" }
func SchoolPupilsKey(uai string) string      { return "school:" + uai + ":pupils" }
func SchoolPlacedKey(uai string) string      { return "school:" + uai + ":placed" }
func SchoolSignedKey(uai string) string      { return "school:" + uai + ":signed" }
func SchoolConventionsKey(uai string) string { return "school:" + uai + ":conventions" }
func pupilInfoKey(id string) string          { return "pupil:" + id + ":info" }
func pupilPlacementsKey(id string) string    { return "pupil:" + id + ":placements" }
func pupilSignedKey(id string) string        { return "pupil:" + id + ":signed" }

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

// SchoolClassesKey is the set of a school's class names; SchoolClassKey the
// set of the pupils of one class (a teacher's follow-up list).
func SchoolClassesKey(uai string) string          { return "school:" + uai + ":classes" }
func SchoolClassKey(uai, className string) string { return "school:" + uai + ":class:" + className }

// DeadlinesKey is a sorted set of pending applications scored by the Unix
// time at which they expire; the expiry scheduler reads it.
func DeadlinesKey() string { return "deadlines" }

// Placements projects application and convention status.
type Placements struct{}

func (Placements) Name() string { return PlacementsName }

func (Placements) Handle(ctx context.Context, v View, ev Event) ([]Cmd, error) {
	switch e := ev.Data.(type) {
	case *domain.SchoolRegistered:
		info := SchoolInfo{UAI: e.UAI, Name: e.Name, Department: e.Department, Kind: e.Kind, EducationPriority: e.EducationPriority, QPV: e.QPV}
		return []Cmd{
			setJSON(v.Key(SchoolInfoKey(e.UAI)), info),
			{"SADD", v.Key(SchoolsKey()), e.UAI},
			{"SADD", v.Key(DepartmentSchoolsKey(e.Department)), e.UAI},
		}, nil
	case *domain.EmployerRegistered:
		return []Cmd{{"SADD", v.Key(EmployersKey()), e.EmployerID}}, nil
	case *domain.PupilRegistered:
		cmds := []Cmd{
			setJSON(v.Key(pupilInfoKey(e.PupilID)), PupilInfo{School: e.SchoolUAI, Grade: e.Grade, ClassName: e.ClassName}),
			{"SADD", v.Key(SchoolPupilsKey(e.SchoolUAI)), e.PupilID},
		}
		if e.ClassName != "" {
			cmds = append(cmds, Cmd{"SADD", v.Key(SchoolClassesKey(e.SchoolUAI)), e.ClassName},
				Cmd{"SADD", v.Key(SchoolClassKey(e.SchoolUAI, e.ClassName)), e.PupilID})
		}
		return cmds, nil
	case *domain.PupilWeeksReserved:
		return pupilSet(ctx, v, e.PupilID, pupilPlacementsKey, SchoolPlacedKey, "SADD", e.ApplicationID)
	case *domain.PupilWeeksReleased:
		return pupilSet(ctx, v, e.PupilID, pupilPlacementsKey, SchoolPlacedKey, "SREM", e.ApplicationID)
	case *domain.ApplicationSubmitted:
		d := ApplicationDoc{
			ID: e.ApplicationID, OfferID: e.OfferID, EmployerID: e.EmployerID, PupilID: e.PupilID,
			SchoolUAI: e.SchoolUAI, Grade: e.Grade, Status: domain.StatusSubmitted, Weeks: e.Weeks,
			Motivation: e.Motivation, Erased: e.Erased, SubmittedAt: e.SubmittedAt, UpdatedAt: ev.OccurredAt,
		}
		score := float64(ev.Position)
		return []Cmd{
			setJSON(v.Key(ApplicationDocKey(d.ID)), d),
			{"ZADD", v.Key(PupilApplicationsKey(d.PupilID)), score, d.ID},
			{"ZADD", v.Key(EmployerApplicationsKey(d.EmployerID)), score, d.ID},
			{"ZADD", v.Key(DeadlinesKey()), d.SubmittedAt.Add(domain.AnswerWithin).Unix(), d.ID},
		}, nil
	case *domain.PupilForgotten:
		// erase the personal data this model copied; ids and counts stay
		ids, err := v.RDB.ZRange(ctx, v.Key(PupilApplicationsKey(e.PupilID)), 0, -1).Result()
		if err != nil {
			return nil, err
		}
		var cmds []Cmd
		for _, id := range ids {
			var d ApplicationDoc
			ok, err := getJSON(ctx, v.RDB, v.Key(ApplicationDocKey(id)), &d)
			if err != nil {
				return nil, err
			}
			if ok {
				d.Motivation, d.Erased = "", true
				cmds = append(cmds, setJSON(v.Key(ApplicationDocKey(id)), d))
			}
		}
		return cmds, nil
	case *domain.ApplicationRead:
		return appStatus(ctx, v, ev, e.ApplicationID, domain.StatusRead, "")
	case *domain.ApplicationAccepted:
		cmds, err := appStatus(ctx, v, ev, e.ApplicationID, domain.StatusAccepted, "")
		if len(cmds) > 0 {
			cmds = append(cmds, Cmd{"ZADD", v.Key(DeadlinesKey()), e.AcceptedAt.Add(domain.ConfirmWithin).Unix(), e.ApplicationID})
		}
		return cmds, err
	case *domain.ApplicationRejected:
		return appStatus(ctx, v, ev, e.ApplicationID, domain.StatusRejected, "")
	case *domain.ApplicationWithdrawn:
		return appStatus(ctx, v, ev, e.ApplicationID, domain.StatusWithdrawn, "")
	case *domain.ApplicationConfirmed:
		return appStatus(ctx, v, ev, e.ApplicationID, domain.StatusConfirmed, e.ConventionID)
	case *domain.ApplicationCancelled:
		return appStatus(ctx, v, ev, e.ApplicationID, domain.StatusCancelled, "")
	case *domain.ApplicationExpired:
		return appStatus(ctx, v, ev, e.ApplicationID, domain.StatusExpired, "")
	case *domain.ConventionDrafted:
		d := ConventionDoc{
			ID: e.ConventionID, ApplicationID: e.ApplicationID, OfferID: e.OfferID, EmployerID: e.EmployerID,
			EmployerName: e.EmployerName, PupilID: e.PupilID, SchoolUAI: e.SchoolUAI, SchoolName: e.SchoolName,
			Weeks: e.Weeks, StartDate: e.StartDate, EndDate: e.EndDate, OfferTitle: e.OfferTitle, Address: e.Address,
			DailyHours: e.DailyHours, Status: domain.ConvDraft, DocumentHash: e.DocumentHash,
			Signatures: []domain.Signature{}, RequiredRoles: e.RequiredRoles, MissingRoles: e.RequiredRoles,
		}
		return []Cmd{
			setJSON(v.Key(ConventionDocKey(d.ID)), d),
			{"SADD", v.Key(SchoolConventionsKey(d.SchoolUAI)), d.ID},
		}, nil
	case *domain.ConventionCompleted:
		return updateConvention(ctx, v, e.ConventionID, func(d *ConventionDoc) {
			if e.Party == "employer" {
				d.Tutor, d.Activities = e.Tutor, e.Activities
			} else {
				d.ReferentTeacher, d.BothGuardians = e.ReferentTeacher, e.BothGuardians
			}
			d.DocumentHash, d.RequiredRoles, d.Signatures = e.DocumentHash, e.RequiredRoles, []domain.Signature{}
			d.Status = domain.ConvDraft
			if d.Tutor != nil && d.ReferentTeacher != nil {
				d.Status = domain.ConvReady
			}
		})
	case *domain.ConventionSignatureAdded:
		return updateConvention(ctx, v, e.ConventionID, func(d *ConventionDoc) {
			d.Signatures = append(d.Signatures, domain.Signature{Role: e.Role, SignerName: e.SignerName, DocumentHash: e.DocumentHash, SignedAt: e.SignedAt})
			d.Status = domain.ConvSigning
		})
	case *domain.ConventionSigned:
		var pupil string
		cmds, err := updateConvention(ctx, v, e.ConventionID, func(d *ConventionDoc) { d.Status, pupil = domain.ConvSigned, d.PupilID })
		if err != nil || pupil == "" {
			return cmds, err
		}
		more, err := pupilSet(ctx, v, pupil, pupilSignedKey, SchoolSignedKey, "SADD", e.ConventionID)
		return append(cmds, more...), err
	case *domain.ConventionCancelled:
		var pupil string
		cmds, err := updateConvention(ctx, v, e.ConventionID, func(d *ConventionDoc) {
			d.Status, d.CancelReason, pupil = domain.ConvCancelled, e.Reason, d.PupilID
		})
		if err != nil || pupil == "" {
			return cmds, err
		}
		more, err := pupilSet(ctx, v, pupil, pupilSignedKey, SchoolSignedKey, "SREM", e.ConventionID)
		return append(cmds, more...), err
	}
	return nil, nil
}

// pupilSet adds (SADD) or removes (SREM) member from one of the pupil's
// sets, and keeps the pupil in the school's matching set while the pupil's
// set is not empty.
func pupilSet(ctx context.Context, v View, pupilID string, pupilKey, schoolKey func(string) string, op, member string) ([]Cmd, error) {
	var info PupilInfo
	if ok, err := getJSON(ctx, v.RDB, v.Key(pupilInfoKey(pupilID)), &info); !ok {
		return nil, err
	}
	key := v.Key(pupilKey(pupilID))
	members, err := v.RDB.SMembers(ctx, key).Result()
	if err != nil {
		return nil, err
	}
	n := len(members)
	has := false
	for _, m := range members {
		has = has || m == member
	}
	switch {
	case op == "SADD" && !has:
		n++
	case op == "SREM" && has:
		n--
	}
	cmds := []Cmd{{op, key, member}}
	if n > 0 {
		return append(cmds, Cmd{"SADD", v.Key(schoolKey(info.School)), pupilID}), nil
	}
	return append(cmds, Cmd{"SREM", v.Key(schoolKey(info.School)), pupilID}), nil
}

func updateConvention(ctx context.Context, v View, id string, change func(*ConventionDoc)) ([]Cmd, error) {
	var d ConventionDoc
	if ok, err := getJSON(ctx, v.RDB, v.Key(ConventionDocKey(id)), &d); !ok {
		return nil, err
	}
	change(&d)
	d.MissingRoles = []domain.Role{}
	for _, r := range d.RequiredRoles {
		if !signed(d.Signatures, r) {
			d.MissingRoles = append(d.MissingRoles, r)
		}
	}
	return []Cmd{setJSON(v.Key(ConventionDocKey(d.ID)), d)}, nil
}

func signed(sigs []domain.Signature, r domain.Role) bool {
	for _, s := range sigs {
		if s.Role == r {
			return true
		}
	}
	return false
}

func appStatus(ctx context.Context, v View, ev Event, id, status, conventionID string) ([]Cmd, error) {
	var d ApplicationDoc
	if ok, err := getJSON(ctx, v.RDB, v.Key(ApplicationDocKey(id)), &d); !ok {
		return nil, err
	}
	d.Status, d.UpdatedAt = status, ev.OccurredAt
	d.Accepted = d.Accepted || status == domain.StatusAccepted
	if conventionID != "" {
		d.ConventionID = conventionID
	}
	cmds := []Cmd{setJSON(v.Key(ApplicationDocKey(id)), d)}
	if status != domain.StatusRead && status != domain.StatusAccepted {
		cmds = append(cmds, Cmd{"ZREM", v.Key(DeadlinesKey()), id}) // no deadline past this state
	}
	return cmds, nil
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
