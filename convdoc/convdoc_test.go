package convdoc_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"passerelle/convdoc"
	"passerelle/domain"
)

// terms are a complete convention whose names carry French accents.
func terms() domain.ConventionTerms {
	return domain.ConventionTerms{
		Drafted: domain.ConventionDrafted{
			ConventionID: "5b0c7c1e-2f43-5d7a-9a51-0d8e3c2b1a44", ApplicationID: "app-1", OfferID: "off-1",
			EmployerID: "emp-1", EmployerName: "Boulangerie Lefèvre & Fils", EmployerSIRET: "73282932000074",
			PupilID: "pupil-1", SchoolUAI: "0941234A", SchoolName: "Collège Françoise-Dolto", GuardianCount: 2,
			Weeks: []string{"2027-W02"}, StartDate: "2027-01-11", EndDate: "2027-01-15",
			OfferTitle: "Découverte du fournil", Description: "Pétrissage, façonnage et cuisson du pain ; accueil des clients à la boutique.",
			Address: "12 rue de l’Église, Créteil", CommuneCode: "94028",
			DailyHours:    &domain.DailyHours{Start: "08:30", End: "16:30", LunchBreakMinutes: 60},
			RequiredRoles: domain.RequiredRoles, ClassName: "3e B",
			PupilFirstName: "Chloé", PupilLastName: "Bœuf-Gaëlle",
			Guardians: []domain.Guardian{{Name: "Hélène Bœuf", Email: "helene@example.fr", Phone: "0612345678"},
				{Name: "François Bœuf", Email: "francois@example.fr"}},
		},
		Tutor:           &domain.Person{Name: "Jérôme Lefèvre", Email: "jerome@boulangerie-lefevre.fr", Phone: "0145678901"},
		Activities:      "Observer le pétrissage, la cuisson et la vente ; goûter la brioche à l’œuf.",
		ReferentTeacher: &domain.Person{Name: "Agnès Çelik", Email: "agnes.celik@ac-creteil.fr"},
		BothGuardians:   true,
	}
}

// golden is the SHA-256 of terms' document, pinned when pdf-1 was
// released. It changes only when the rendering does (this package, fpdf,
// the fonts): conventions in progress would then be served a PDF their
// document_hash is not of. Such a change is a new Version, the old one
// still rendered for the conventions whose hash is of it, never a new
// golden value for the same Version.
const golden = "1427d7a7f249b2680bcbd5b0892daf28d5c3286b646b6b7aac3d2785c9e23bf3"

func hashOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// The document is a function of the terms alone: rendered twice here, in
// another process, and as pinned when this rendering was released, the
// bytes are the same; Hash is their SHA-256.
func TestDeterministic(t *testing.T) {
	first, second := convdoc.PDF(terms()), convdoc.PDF(terms())
	if !bytes.Equal(first, second) {
		t.Fatal("two renderings of the same terms differ")
	}
	version, hash := convdoc.Hash(terms())
	if version != convdoc.Version || hash != hashOf(first) {
		t.Fatalf("Hash = %s %s, want %s %s", version, hash, convdoc.Version, hashOf(first))
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "CONVDOC_CHILD=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	if child := strings.Fields(string(out)); len(child) == 0 || child[0] != hash {
		t.Fatalf("another process rendered %q, this one %s", out, hash)
	}
	if hash != golden {
		t.Fatalf("the rendering changed: %s, pinned %s", hash, golden)
	}
	other := terms()
	other.Drafted.PupilFirstName = "Chloe" // one accent less
	if _, h := convdoc.Hash(other); h == hash {
		t.Fatal("a change of a name leaves the hash unchanged")
	}
}

// TestMain prints the document's hash instead of testing in the process
// TestDeterministic starts.
func TestMain(m *testing.M) {
	if os.Getenv("CONVDOC_CHILD") == "1" {
		_, hash := convdoc.Hash(terms())
		_, _ = os.Stdout.WriteString(hash + "\n")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// No clock: the document's dates are the convention's first day.
func TestDates(t *testing.T) {
	b := convdoc.PDF(terms())
	if !bytes.Contains(b, []byte("/CreationDate (D:20270111000000")) || !bytes.Contains(b, []byte("/ModDate (D:20270111000000")) {
		t.Fatal("the document's dates are not the convention's start date")
	}
}

// The document as a person sees it: poppler's pdftoppm draws the page at
// 80 dpi, an A4 page with ink on it. The picture is saved as a test
// artefact (docs/convention.png is one).
func TestPDFToPNG(t *testing.T) {
	tool, err := exec.LookPath("pdftoppm")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("pdftoppm is missing: .ci/run installs poppler-utils")
		}
		t.Skip("pdftoppm is not installed (apt-get install poppler-utils)")
	}
	dir := t.TempDir()
	pdf := filepath.Join(dir, "convention.pdf")
	if err := os.WriteFile(pdf, convdoc.PDF(terms()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(tool, "-png", "-r", "80", "-singlefile", pdf, filepath.Join(dir, "convention")).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v: %s", err, out)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "convention.png"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	// A4 at 80 dpi: 210 mm × 297 mm is 661.4 × 935.4 pixels
	if b := img.Bounds(); abs(b.Dx()-661) > 1 || abs(b.Dy()-935) > 1 {
		t.Fatalf("page of %d×%d pixels, want A4 at 80 dpi (661×935)", b.Dx(), b.Dy())
	}
	if ink := inked(img); ink < 0.01 || ink > 0.5 {
		t.Fatalf("%.4f of the page is inked: blank or black", ink)
	}
	if err := os.WriteFile(filepath.Join(t.ArtifactDir(), "convention.png"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

// inked is the share of the pixels that are darker than light grey.
func inked(img image.Image) float64 {
	b, dark := img.Bounds(), 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if (r+g+bl)/3 < 0xc000 {
				dark++
			}
		}
	}
	return float64(dark) / float64(b.Dx()*b.Dy())
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// BenchmarkPDF is the cost of one document: the command side pays it on
// each draft and each completed part, the read side on each request.
func BenchmarkPDF(b *testing.B) {
	t := terms()
	for b.Loop() {
		convdoc.PDF(t)
	}
}
