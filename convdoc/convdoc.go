// Package convdoc renders a convention's document, the PDF its parties
// sign: the document hash a signature names is the SHA-256 of exactly
// these bytes. Rendering is deterministic, a pure function of the terms
// (no clock, no random identifier, no map order, no compression whose
// output could change with the toolchain), so the command side hashes
// the document it drafts and the read side serves the same bytes later.
// A change of the bytes rendered for the same terms would leave signers
// unable to sign conventions in progress: TestGoldenHash pins them.
package convdoc

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/go-pdf/fpdf"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"

	"passerelle/domain"
)

// Version names this rendering of the document.
const Version = "pdf-1"

// The page: A4 portrait, in millimetres.
const (
	PageWidth  = 210.0
	PageHeight = 297.0
	margin     = 18.0
	font       = "go" // Go's fonts (BSD licence): Latin-1 and Latin Extended-A, so é, è, à, ç, œ
)

// epoch is the creation date of a document with no start date.
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Hash is the hex SHA-256 of the document rendered from t: what a signer
// of this version signs.
func Hash(t domain.ConventionTerms) (version, hash string) {
	sum := sha256.Sum256(PDF(t))
	return Version, hex.EncodeToString(sum[:])
}

// PDF renders the convention's document from its terms.
func PDF(t domain.ConventionTerms) []byte {
	d := t.Drafted
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetCompression(false)
	pdf.SetCatalogSort(true)
	// the document's dates are the convention's: its first day
	created := epoch
	if s, err := time.Parse(time.DateOnly, d.StartDate); err == nil {
		created = s
	}
	pdf.SetCreationDate(created)
	pdf.SetModificationDate(created)
	pdf.SetProducer("Passerelle "+Version, true)
	pdf.SetTitle("Convention de stage d’observation "+d.ConventionID, true)
	pdf.AddUTF8FontFromBytes(font, "", goregular.TTF)
	pdf.AddUTF8FontFromBytes(font, "B", gobold.TTF)
	pdf.SetMargins(margin, margin, margin)
	pdf.SetAutoPageBreak(true, margin)
	pdf.SetFooterFunc(func() {
		pdf.SetY(-margin + 4)
		pdf.SetFont(font, "", 8)
		pdf.CellFormat(0, 4, fmt.Sprintf("Convention %s · page %d/{nb}", d.ConventionID, pdf.PageNo()), "", 0, "C", false, 0, "")
	})
	pdf.AliasNbPages("")
	pdf.AddPage()
	w := writer{pdf}
	w.title(d)
	w.employer(t)
	w.school(t)
	w.pupil(t)
	w.placement(t)
	w.signatures(t)
	var b bytes.Buffer
	if err := pdf.Output(&b); err != nil {
		// the font and the layout are fixed: an error is a bug of this package
		panic("convdoc: " + err.Error())
	}
	return b.Bytes()
}

// writer lays out the document's parts.
type writer struct{ *fpdf.Fpdf }

func (w writer) title(d domain.ConventionDrafted) {
	w.SetFont(font, "B", 16)
	w.MultiCell(0, 8, "Convention de stage d’observation en milieu professionnel", "", "C", false)
	w.SetFont(font, "", 10)
	w.MultiCell(0, 5, "Référence "+d.ConventionID+" · candidature "+d.ApplicationID+" · offre "+d.OfferID, "", "C", false)
	w.Ln(4)
}

func (w writer) heading(s string) {
	w.Ln(2)
	w.SetFont(font, "B", 12)
	w.MultiCell(0, 7, s, "B", "L", false)
	w.Ln(1)
}

// field writes a labelled line; an empty value shows as a dash.
func (w writer) field(label, value string) {
	if strings.TrimSpace(value) == "" {
		value = "—"
	}
	w.SetFont(font, "B", 10)
	w.CellFormat(52, 5.5, label, "", 0, "L", false, 0, "")
	w.SetFont(font, "", 10)
	w.MultiCell(0, 5.5, value, "", "L", false)
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

func (w writer) employer(t domain.ConventionTerms) {
	d := t.Drafted
	w.heading("1. L’organisme d’accueil")
	w.field("Raison sociale", d.EmployerName)
	w.field("SIRET", d.EmployerSIRET)
	w.field("Adresse du stage", contact(d.Address, d.CommuneCode))
	if len(d.CoHosts) > 0 {
		names := make([]string, len(d.CoHosts))
		for i, c := range d.CoHosts {
			names[i] = c.Name
		}
		w.field("Programme partagé avec", strings.Join(names, ", "))
	}
	w.field("Tuteur ou tutrice", person(t.Tutor))
}

func (w writer) school(t domain.ConventionTerms) {
	d := t.Drafted
	w.heading("2. L’établissement scolaire")
	w.field("Établissement", contact(d.SchoolName, d.SchoolUAI))
	w.field("Professeur référent", person(t.ReferentTeacher))
}

func (w writer) pupil(t domain.ConventionTerms) {
	d := t.Drafted
	w.heading("3. L’élève")
	w.field("Élève", strings.TrimSpace(d.PupilFirstName+" "+d.PupilLastName))
	w.field("Classe", d.ClassName)
	if len(d.Guardians) == 0 {
		w.field("Représentant légal", "")
	}
	for i, g := range d.Guardians {
		w.field(fmt.Sprintf("Représentant légal %d", i+1), contact(g.Name, g.Email, g.Phone))
	}
}

func (w writer) placement(t domain.ConventionTerms) {
	d := t.Drafted
	w.heading("4. Le stage")
	w.field("Intitulé", d.OfferTitle)
	w.field("Description", d.Description)
	w.field("Activités prévues", t.Activities)
	w.field("Semaines", strings.Join(d.Weeks, ", "))
	w.field("Dates", "du "+frenchDate(d.StartDate)+" au "+frenchDate(d.EndDate))
	if h := d.DailyHours; h != nil {
		w.field("Horaires quotidiens", fmt.Sprintf("de %s à %s, pause déjeuner de %d minutes", h.Start, h.End, h.LunchBreakMinutes))
	}
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

func (w writer) signatures(t domain.ConventionTerms) {
	w.heading("5. Signatures")
	w.SetFont(font, "", 9)
	w.MultiCell(0, 4.5, "Chaque partie signe ce document sous sa forme électronique : sa signature nomme l’empreinte SHA-256 de ce fichier PDF. "+
		"Toute modification des termes produit un nouveau document et rend caduques les signatures données.", "", "L", false)
	w.Ln(2)
	for _, r := range Roles(t) {
		w.SetFont(font, "B", 10)
		w.CellFormat(80, 12, roleNames[r], "1", 0, "L", false, 0, "")
		w.SetFont(font, "", 9)
		w.CellFormat(0, 12, "Nom, date et signature :", "1", 1, "L", false, 0, "")
	}
}
