package projections

import (
	"context"
	"time"

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
	SchoolUAI    string       `json:"school_uai"`
	Grade        domain.Grade `json:"grade"`
	Status       string       `json:"status"`
	Weeks        []string     `json:"weeks"`
	Motivation   string       `json:"motivation"`
	ConventionID string       `json:"convention_id,omitempty"`
	SubmittedAt  time.Time    `json:"submitted_at"`
	UpdatedAt    time.Time    `json:"updated_at"`
}

// ConventionDoc is a convention as the API serves it.
type ConventionDoc struct {
	ID            string             `json:"id"`
	ApplicationID string             `json:"application_id"`
	OfferID       string             `json:"offer_id"`
	EmployerID    string             `json:"employer_id"`
	PupilID       string             `json:"pupil_id"`
	SchoolUAI     string             `json:"school_uai"`
	Weeks         []string           `json:"weeks"`
	OfferTitle    string             `json:"offer_title"`
	Status        string             `json:"status"`
	DocumentHash  string             `json:"document_hash"`
	Signatures    []domain.Signature `json:"signatures"`
	RequiredRoles []domain.Role      `json:"required_roles"`
	MissingRoles  []domain.Role      `json:"missing_roles"`
}

// Placement keys, relative to the generation prefix.
func ApplicationDocKey(id string) string { return "application:" + id }
func ConventionDocKey(id string) string  { return "convention:" + id }
func PupilApplicationsKey(id string) string {
	return "pupil:" + id + ":applications"
}
func EmployerApplicationsKey(id string) string { return "employer:" + id + ":applications" }

// Placements projects application and convention status.
type Placements struct{}

func (Placements) Name() string { return PlacementsName }

func (Placements) Handle(ctx context.Context, v View, ev Event) ([]Cmd, error) {
	switch e := ev.Data.(type) {
	case *domain.ApplicationSubmitted:
		d := ApplicationDoc{
			ID: e.ApplicationID, OfferID: e.OfferID, EmployerID: e.EmployerID, PupilID: e.PupilID,
			SchoolUAI: e.SchoolUAI, Grade: e.Grade, Status: domain.StatusSubmitted, Weeks: e.Weeks,
			Motivation: e.Motivation, SubmittedAt: e.SubmittedAt, UpdatedAt: ev.OccurredAt,
		}
		score := float64(ev.Position)
		return []Cmd{
			setJSON(v.Key(ApplicationDocKey(d.ID)), d),
			{"ZADD", v.Key(PupilApplicationsKey(d.PupilID)), score, d.ID},
			{"ZADD", v.Key(EmployerApplicationsKey(d.EmployerID)), score, d.ID},
		}, nil
	case *domain.ApplicationAccepted:
		return appStatus(ctx, v, ev, e.ApplicationID, domain.StatusAccepted, "")
	case *domain.ApplicationRejected:
		return appStatus(ctx, v, ev, e.ApplicationID, domain.StatusRejected, "")
	case *domain.ApplicationWithdrawn:
		return appStatus(ctx, v, ev, e.ApplicationID, domain.StatusWithdrawn, "")
	case *domain.ApplicationConfirmed:
		return appStatus(ctx, v, ev, e.ApplicationID, domain.StatusConfirmed, e.ConventionID)
	case *domain.ConventionDrafted:
		d := ConventionDoc{
			ID: e.ConventionID, ApplicationID: e.ApplicationID, OfferID: e.OfferID, EmployerID: e.EmployerID,
			PupilID: e.PupilID, SchoolUAI: e.SchoolUAI, Weeks: e.Weeks, OfferTitle: e.OfferTitle,
			Status: domain.ConventionDraft, DocumentHash: e.DocumentHash, Signatures: []domain.Signature{},
			RequiredRoles: e.RequiredRoles, MissingRoles: e.RequiredRoles,
		}
		return []Cmd{setJSON(v.Key(ConventionDocKey(d.ID)), d)}, nil
	case *domain.ConventionSignatureAdded:
		var d ConventionDoc
		if ok, err := getJSON(ctx, v.RDB, v.Key(ConventionDocKey(e.ConventionID)), &d); !ok {
			return nil, err
		}
		d.Signatures = append(d.Signatures, domain.Signature{Role: e.Role, SignerName: e.SignerName, DocumentHash: e.DocumentHash, SignedAt: e.SignedAt})
		d.MissingRoles = d.MissingRoles[:0:0]
		for _, r := range d.RequiredRoles {
			if !signed(d.Signatures, r) {
				d.MissingRoles = append(d.MissingRoles, r)
			}
		}
		d.Status = domain.ConventionSigning
		return []Cmd{setJSON(v.Key(ConventionDocKey(d.ID)), d)}, nil
	case *domain.ConventionSigned:
		var d ConventionDoc
		if ok, err := getJSON(ctx, v.RDB, v.Key(ConventionDocKey(e.ConventionID)), &d); !ok {
			return nil, err
		}
		d.Status = domain.ConventionSignedS
		return []Cmd{setJSON(v.Key(ConventionDocKey(d.ID)), d)}, nil
	}
	return nil, nil
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
	if conventionID != "" {
		d.ConventionID = conventionID
	}
	return []Cmd{setJSON(v.Key(ApplicationDocKey(id)), d)}, nil
}

// All returns every projector of the service.
func All() []Projector { return []Projector{Offers{}, Stats{}, Placements{}} }
