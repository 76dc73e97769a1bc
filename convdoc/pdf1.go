package convdoc

import (
	"bytes"
	"fmt"

	"github.com/go-pdf/fpdf"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"

	"passerelle/domain"
)

// pdf1Font is Go's fonts (BSD licence) as pdf-1 names them.
const pdf1Font = "go"

// pdf1 renders version pdf-1: fpdf parses, subsets and compresses the
// fonts for each document (~10 MB allocated), which is why pdf-2
// replaced it. Its bytes must never change: TestGoldenPDF1.
func pdf1(t domain.ConventionTerms) []byte {
	doc := contentOf(t)
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetCompression(false)
	pdf.SetCatalogSort(true)
	pdf.SetCreationDate(doc.created)
	pdf.SetModificationDate(doc.created)
	pdf.SetProducer("Passerelle "+VersionPDF1, true)
	pdf.SetTitle("Convention de stage d’observation "+doc.id, true)
	pdf.AddUTF8FontFromBytes(pdf1Font, "", goregular.TTF)
	pdf.AddUTF8FontFromBytes(pdf1Font, "B", gobold.TTF)
	pdf.SetMargins(margin, margin, margin)
	pdf.SetAutoPageBreak(true, margin)
	pdf.SetFooterFunc(func() {
		pdf.SetY(-margin + 4)
		pdf.SetFont(pdf1Font, "", 8)
		pdf.CellFormat(0, 4, fmt.Sprintf("Convention %s · page %d/{nb}", doc.id, pdf.PageNo()), "", 0, "C", false, 0, "")
	})
	pdf.AliasNbPages("")
	pdf.AddPage()
	w := writer1{pdf}
	w.title(doc)
	for _, s := range doc.sections {
		w.heading(s.heading)
		for _, f := range s.fields {
			w.field(f)
		}
	}
	w.signatures(doc)
	var b bytes.Buffer
	if err := pdf.Output(&b); err != nil {
		// the font and the layout are fixed: an error is a bug of this package
		panic("convdoc: " + err.Error())
	}
	return b.Bytes()
}

// writer1 lays out pdf-1's parts.
type writer1 struct{ *fpdf.Fpdf }

func (w writer1) title(doc document) {
	w.SetFont(pdf1Font, "B", 16)
	w.MultiCell(0, 8, doc.title, "", "C", false)
	w.SetFont(pdf1Font, "", 10)
	w.MultiCell(0, 5, doc.subtitle, "", "C", false)
	w.Ln(4)
}

func (w writer1) heading(s string) {
	w.Ln(2)
	w.SetFont(pdf1Font, "B", 12)
	w.MultiCell(0, 7, s, "B", "L", false)
	w.Ln(1)
}

func (w writer1) field(f field) {
	w.SetFont(pdf1Font, "B", 10)
	w.CellFormat(52, 5.5, f.label, "", 0, "L", false, 0, "")
	w.SetFont(pdf1Font, "", 10)
	w.MultiCell(0, 5.5, f.value, "", "L", false)
}

// signatures follows the last heading: the notice, a box per signer.
func (w writer1) signatures(doc document) {
	w.SetFont(pdf1Font, "", 9)
	w.MultiCell(0, 4.5, doc.notice, "", "L", false)
	w.Ln(2)
	for _, name := range doc.signers {
		w.SetFont(pdf1Font, "B", 10)
		w.CellFormat(80, 12, name, "1", 0, "L", false, 0, "")
		w.SetFont(pdf1Font, "", 9)
		w.CellFormat(0, 12, "Nom, date et signature :", "1", 1, "L", false, 0, "")
	}
}
