package history

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"passerelle/domain"
	"passerelle/internal/api"
	"passerelle/internal/auth"
)

// ConventionDocument is the convention as its parties read and sign it:
// the terms and the parties' names, the pupil's and guardians' opened from
// their seal. It is read from the log, where personal data lives, so the
// read models never hold it and a forget erases it here too.
type ConventionDocument struct {
	ID            string `json:"id"`
	ApplicationID string `json:"application_id"`
	OfferID       string `json:"offer_id"`
	Status        string `json:"status"`
	// DocumentHash is what a signature names: the hex SHA-256 of the PDF
	// (DocumentVersion "pdf-1"), or of the terms for conventions drafted
	// before the PDF (no version).
	DocumentHash    string             `json:"document_hash"`
	DocumentVersion string             `json:"document_version,omitempty"`
	Employer        DocumentEmployer   `json:"employer"`
	CoHosts         []domain.CoHost    `json:"co_hosts,omitempty"` // the other employers of a collective programme
	School          DocumentSchool     `json:"school"`
	Pupil           DocumentPupil      `json:"pupil"`
	Guardians       []domain.Guardian  `json:"guardians"`
	Tutor           *domain.Person     `json:"tutor,omitempty"`
	Activities      string             `json:"activities,omitempty"`
	ReferentTeacher *domain.Person     `json:"referent_teacher,omitempty"`
	BothGuardians   bool               `json:"both_guardians"`
	OfferTitle      string             `json:"offer_title"`
	Description     string             `json:"description"`
	Address         string             `json:"address"`
	CommuneCode     string             `json:"commune_code"`
	Weeks           []string           `json:"weeks"`
	StartDate       string             `json:"start_date"`
	EndDate         string             `json:"end_date"`
	DailyHours      *domain.DailyHours `json:"daily_hours,omitempty"`
	RequiredRoles   []domain.Role      `json:"required_roles"`
	// Erased: the pupil was forgotten; their and their guardians' names
	// and contacts are gone.
	Erased   bool   `json:"personal_data_erased,omitempty"`
	Position string `json:"position"`
}

// DocumentEmployer is the host as the document names it.
type DocumentEmployer struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	SIRET string `json:"siret"`
}

// DocumentSchool is the pupil's school.
type DocumentSchool struct {
	UAI  string `json:"uai"`
	Name string `json:"name"`
}

// DocumentPupil is the pupil hosted.
type DocumentPupil struct {
	ID        string `json:"id"`
	FirstName string `json:"first_name,omitempty"`
	LastName  string `json:"last_name,omitempty"`
	ClassName string `json:"class_name,omitempty"`
}

// conventionDocument serves GET /v1/conventions/{id}/document. The route's
// representation is JSON, the PDF the parties sign or an HTML fragment for
// the page (documentFormat). The route's
// rule lets in the convention's parties: a convention exists once the pupil
// confirmed, so this is where a host learns whom it hosts. Once the
// convention is cancelled, the host needs that no more and the pupil's
// and guardians' names are withheld from it.
func (a *API) conventionDocument(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	format, err := documentFormat(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if _, err := api.MinPosition(r); err != nil { // the log holds every write: nothing to wait for
		api.WriteError(w, r, err)
		return
	}
	if a.store == nil || !domain.ValidID(id) {
		api.WriteError(w, r, notFound("convention"))
		return
	}
	var c domain.Convention
	evs, err := a.fold(r.Context(), domain.ConventionStream(id), "convention", &c)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if !c.Exists() {
		api.WriteError(w, r, notFound("convention"))
		return
	}
	doc := documentOf(&c)
	doc.Position = evs[len(evs)-1].Position.String()
	if p, ok := auth.From(r.Context()); ok && p.Role == auth.Employer && c.Cancelled {
		doc.Pupil.FirstName, doc.Pupil.LastName, doc.Guardians = "", "", []domain.Guardian{}
	}
	writeDocument(w, format, &c, doc)
}

func documentOf(c *domain.Convention) ConventionDocument {
	d, t := c.Drafted(), c.Terms
	guardians := d.Guardians
	if guardians == nil {
		guardians = []domain.Guardian{}
	}
	return ConventionDocument{
		ID: d.ConventionID, ApplicationID: d.ApplicationID, OfferID: d.OfferID, Status: c.Status(), DocumentHash: c.Hash, DocumentVersion: c.Version,
		Employer: DocumentEmployer{ID: d.EmployerID, Name: d.EmployerName, SIRET: d.EmployerSIRET}, CoHosts: d.CoHosts,
		School:    DocumentSchool{UAI: d.SchoolUAI, Name: d.SchoolName},
		Pupil:     DocumentPupil{ID: d.PupilID, FirstName: d.PupilFirstName, LastName: d.PupilLastName, ClassName: d.ClassName},
		Guardians: guardians, Tutor: t.Tutor, Activities: t.Activities, ReferentTeacher: t.ReferentTeacher, BothGuardians: t.BothGuardians,
		OfferTitle: d.OfferTitle, Description: d.Description, Address: d.Address, CommuneCode: d.CommuneCode,
		Weeks: d.Weeks, StartDate: d.StartDate, EndDate: d.EndDate, DailyHours: d.DailyHours,
		RequiredRoles: c.Roles, Erased: d.Erased,
	}
}
