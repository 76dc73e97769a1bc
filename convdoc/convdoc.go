// Package convdoc renders a convention's document, the PDF its parties
// sign: the document hash a signature names is the SHA-256 of exactly
// these bytes. Rendering is deterministic, a pure function of the terms
// (no clock, no random identifier, no map order, no compression whose
// output could change with the toolchain), so the command side hashes
// the document it drafts and the read side serves the same bytes later.
//
// Each rendering is a Version, recorded with the hash it gave: a
// convention is rendered by the version it was hashed under, for ever,
// since a change of the bytes rendered for the same terms would leave
// signers unable to sign conventions in progress. The golden tests pin
// every version's bytes.
package convdoc

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"passerelle/domain"
)

// The renderings.
const (
	// VersionPDF1 is the first PDF (fpdf, the fonts subset per document):
	// conventions hashed under it are still rendered by it.
	VersionPDF1 = "pdf-1"
	// VersionPDF2 is the same document written by this package, the Go
	// fonts embedded whole, prepared once per process.
	VersionPDF2 = "pdf-2"
	// Version is the rendering new documents get.
	Version = VersionPDF2
)

// The page: A4 portrait, in millimetres.
const (
	PageWidth  = 210.0
	PageHeight = 297.0
	margin     = 18.0
)

// epoch is the creation date of a document with no start date.
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Hash is the version and hex SHA-256 of the document rendered from t:
// what a signer of a new document signs (a domain.DocumentHasher).
func Hash(t domain.ConventionTerms) (version, hash string) {
	return Version, Sum(Version, t)
}

// Render renders the document of terms t as the given version made it.
// "" (conventions hashed from their terms, before the PDF) and a version
// this package does not know get the current one: there is no PDF their
// hash is of.
func Render(version string, t domain.ConventionTerms) []byte {
	return bytes.Join(Parts(version, t), nil)
}

// Parts is Render(version, t) in parts to write one after the other,
// without copying them into one: pdf-2's first part is the fonts'
// objects, the same for every document and shared (never to be
// modified).
func Parts(version string, t domain.ConventionTerms) [][]byte {
	if version == VersionPDF1 {
		return [][]byte{pdf1(t)}
	}
	fs := fonts()
	return [][]byte{fs.prefix, tail(fs, contentOf(t))}
}

// Sum is the hex SHA-256 of Render(version, t), without writing the
// fonts' bytes, the same for every document, again.
func Sum(version string, t domain.ConventionTerms) string {
	if version == VersionPDF1 {
		sum := sha256.Sum256(pdf1(t))
		return hex.EncodeToString(sum[:])
	}
	return sum2(t)
}

// document is what the document says, in reading order; each version
// lays it out. A change here changes every version's bytes (the golden
// tests fail): a new wording is a new function for a new version.
type document struct {
	id, title, subtitle string
	sections            []section // the last one, the signatures, has no fields
	notice              string    // what a signature is, under the last heading
	signers             []string  // one box each
	created             time.Time // the document's dates: the convention's first day
}

type section struct {
	heading string
	fields  []field
}

// field is a labelled value; an empty value shows as a dash.
type field struct{ label, value string }

func contentOf(t domain.ConventionTerms) document {
	d := t.Drafted
	doc := document{
		id:       d.ConventionID,
		title:    "Convention de stage d’observation en milieu professionnel",
		subtitle: "Référence " + d.ConventionID + " · candidature " + d.ApplicationID + " · offre " + d.OfferID,
		sections: []section{employer(t), school(t), pupil(t), placement(t), {heading: "5. Signatures"}},
		notice: "Chaque partie signe ce document sous sa forme électronique : sa signature nomme l’empreinte SHA-256 de ce fichier PDF. " +
			"Toute modification des termes produit un nouveau document et rend caduques les signatures données.",
		created: epoch,
	}
	if s, err := time.Parse(time.DateOnly, d.StartDate); err == nil {
		doc.created = s
	}
	for _, r := range Roles(t) {
		doc.signers = append(doc.signers, roleNames[r])
	}
	for _, s := range doc.sections {
		for i, f := range s.fields {
			if strings.TrimSpace(f.value) == "" {
				s.fields[i].value = "—"
			}
		}
	}
	return doc
}

// footer is the line at the foot of page n of total.
func (d document) footer(n, total int) string {
	return fmt.Sprintf("Convention %s · page %d/%d", d.id, n, total)
}

func person(p *domain.Person) string {
	if p == nil {
		return ""
	}
	return contact(p.Name, p.Email, p.Phone)
}

func contact(parts ...string) string {
	var out []string
	for _, s := range parts {
		if s != "" {
			out = append(out, s)
		}
	}
	return strings.Join(out, " · ")
}

func employer(t domain.ConventionTerms) section {
	d := t.Drafted
	s := section{heading: "1. L’organisme d’accueil", fields: []field{
		{"Raison sociale", d.EmployerName},
		{"SIRET", d.EmployerSIRET},
		{"Adresse du stage", contact(d.Address, d.CommuneCode)},
	}}
	if len(d.CoHosts) > 0 {
		names := make([]string, len(d.CoHosts))
		for i, c := range d.CoHosts {
			names[i] = c.Name
		}
		s.fields = append(s.fields, field{"Programme partagé avec", strings.Join(names, ", ")})
	}
	s.fields = append(s.fields, field{"Tuteur ou tutrice", person(t.Tutor)})
	return s
}

func school(t domain.ConventionTerms) section {
	d := t.Drafted
	return section{heading: "2. L’établissement scolaire", fields: []field{
		{"Établissement", contact(d.SchoolName, d.SchoolUAI)},
		{"Professeur référent", person(t.ReferentTeacher)},
	}}
}

func pupil(t domain.ConventionTerms) section {
	d := t.Drafted
	s := section{heading: "3. L’élève", fields: []field{
		{"Élève", strings.TrimSpace(d.PupilFirstName + " " + d.PupilLastName)},
		{"Classe", d.ClassName},
	}}
	if len(d.Guardians) == 0 {
		s.fields = append(s.fields, field{"Représentant légal", ""})
	}
	for i, g := range d.Guardians {
		s.fields = append(s.fields, field{fmt.Sprintf("Représentant légal %d", i+1), contact(g.Name, g.Email, g.Phone)})
	}
	return s
}

func placement(t domain.ConventionTerms) section {
	d := t.Drafted
	s := section{heading: "4. Le stage", fields: []field{
		{"Intitulé", d.OfferTitle},
		{"Description", d.Description},
		{"Activités prévues", t.Activities},
		{"Semaines", strings.Join(d.Weeks, ", ")},
		{"Dates", "du " + frenchDate(d.StartDate) + " au " + frenchDate(d.EndDate)},
	}}
	if h := d.DailyHours; h != nil {
		s.fields = append(s.fields, field{"Horaires quotidiens", fmt.Sprintf("de %s à %s, pause déjeuner de %d minutes", h.Start, h.End, h.LunchBreakMinutes)})
	}
	return s
}

func frenchDate(s string) string {
	day, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return s
	}
	return day.Format("02/01/2006")
}

// roleNames are the signatories as the document names them.
var roleNames = map[domain.Role]string{
	domain.RoleEmployer:       "Pour l’organisme d’accueil",
	domain.RoleSchoolHead:     "Le chef d’établissement",
	domain.RolePupil:          "L’élève",
	domain.RoleGuardian:       "Le représentant légal",
	domain.RoleSecondGuardian: "Le second représentant légal",
}

// Roles are the signatories the terms require.
func Roles(t domain.ConventionTerms) []domain.Role {
	roles := append([]domain.Role(nil), domain.RequiredRoles...)
	if t.BothGuardians && t.Drafted.GuardianCount > 1 {
		roles = append(roles, domain.RoleSecondGuardian)
	}
	return roles
}
