package convdoc_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
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

// draft is a convention as drafted, no party's part yet, a collective
// programme's: dashes for the missing values, no second guardian.
func draft() domain.ConventionTerms {
	t := terms()
	t.Tutor, t.ReferentTeacher, t.Activities, t.BothGuardians = nil, nil, "", false
	t.Drafted.Guardians, t.Drafted.GuardianCount, t.Drafted.DailyHours, t.Drafted.ClassName = nil, 0, nil, ""
	t.Drafted.CoHosts = []domain.CoHost{{EmployerID: "emp-2", Name: "Mairie de Créteil"}, {EmployerID: "emp-3", Name: "Médiathèque Nelson-Mandela"}}
	return t
}

// long is a convention whose texts run over three pages, with what the
// fonts lack: a combining accent, narrow no-break spaces, Chinese and
// letters of Latin Extended-B and Additional, tabs and line breaks.
func long() domain.ConventionTerms {
	t := terms()
	t.Drafted.PupilLastName = "Lefe\u0300vre 王 ẞ ǅ Łukasz Dvořák"
	t.Drafted.Description = strings.Repeat("Accueil du public, état civil\u202f; préparation des élections « municipales ».\t", 40) +
		"\r\n\r\nSecond paragraphe : " + strings.Repeat("œ", 200)
	t.Activities = strings.Repeat("Observer le pétrissage, la cuisson et la vente ; goûter la brioche à l’œuf. ", 30)
	return t
}

// golden are the SHA-256 of the documents of fixed terms, pinned when
// each version was released (pdf-1's also rendered by its code before
// pdf-2). They change only when the rendering does (this package, fpdf,
// the fonts): conventions in progress would then be served a PDF their
// document_hash is not of. Such a change is a new Version, the old one
// still rendered for the conventions whose hash is of it, never a new
// golden value for the same version.
var golden = []struct {
	name          string
	terms         func() domain.ConventionTerms
	pdf1, current string
}{
	{"complete", terms, "1427d7a7f249b2680bcbd5b0892daf28d5c3286b646b6b7aac3d2785c9e23bf3", "6ee90b4b9d5c08fbf5c80c4d68c71718aa9355ee626bda570f3fda40d27ec2a7"},
	{"draft", draft, "b181051f24d8e7058854ce457c39073f9d8ea90d8d802a4a26853cfee6876bb0", "e946bb1dc254022840d1110cb87c84408569b27ac644d45b082f675fb17b7fa8"},
	{"long", long, "4b491d4a90957db33f37177cb15912eac9db0f8f23d45f710e49f95da92f4d2d", "9482c9f24b66b879a16acab78c3c8e3fb8e50afd2a3660a1096d2ef232227965"},
}

func hashOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// The document is a function of the terms and the version alone:
// rendered twice here, in another process, and as pinned when the
// version was released, the bytes are the same; Sum is their SHA-256,
// Hash the current version's.
func TestDeterministic(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "CONVDOC_CHILD=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	child := strings.Fields(string(out))
	if len(child) != 2*len(golden) {
		t.Fatalf("the child printed %q", out)
	}
	for i, g := range golden {
		for j, v := range []struct{ version, golden string }{{convdoc.VersionPDF1, g.pdf1}, {convdoc.Version, g.current}} {
			first, second := convdoc.Render(v.version, g.terms()), convdoc.Render(v.version, g.terms())
			hash := hashOf(first)
			switch {
			case !bytes.Equal(first, second):
				t.Fatalf("%s %s: two renderings of the same terms differ", g.name, v.version)
			case convdoc.Sum(v.version, g.terms()) != hash:
				t.Fatalf("%s %s: Sum = %s, the bytes' %s", g.name, v.version, convdoc.Sum(v.version, g.terms()), hash)
			case child[2*i+j] != hash:
				t.Fatalf("%s %s: another process rendered %s, this one %s", g.name, v.version, child[2*i+j], hash)
			case hash != v.golden:
				t.Fatalf("%s %s: the rendering changed: %s, pinned %s", g.name, v.version, hash, v.golden)
			}
		}
	}
	if version, hash := convdoc.Hash(terms()); version != convdoc.VersionPDF2 || hash != golden[0].current {
		t.Fatalf("Hash = %s %s, want %s %s", version, hash, convdoc.VersionPDF2, golden[0].current)
	}
	if convdoc.Sum("", terms()) != golden[0].current {
		t.Fatal("a convention hashed from its terms is not served the current rendering")
	}
	other := terms()
	other.Drafted.PupilFirstName = "Chloe" // one accent less
	for _, v := range []string{convdoc.VersionPDF1, convdoc.Version} {
		if convdoc.Sum(v, other) == golden[0].pdf1 || convdoc.Sum(v, other) == golden[0].current {
			t.Fatalf("%s: a change of a name leaves the hash unchanged", v)
		}
	}
}

// TestMain prints the documents' hashes instead of testing in the
// process TestDeterministic starts.
func TestMain(m *testing.M) {
	if os.Getenv("CONVDOC_CHILD") == "1" {
		for _, g := range golden {
			_, _ = os.Stdout.WriteString(convdoc.Sum(convdoc.VersionPDF1, g.terms()) + " " + convdoc.Sum(convdoc.Version, g.terms()) + "\n")
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// No clock: the document's dates are the convention's first day.
func TestDates(t *testing.T) {
	for _, v := range []string{convdoc.VersionPDF1, convdoc.Version} {
		b := convdoc.Render(v, terms())
		if !bytes.Contains(b, []byte("/CreationDate (D:20270111000000")) || !bytes.Contains(b, []byte("/ModDate (D:20270111000000")) {
			t.Fatalf("%s: the document's dates are not the convention's start date", v)
		}
	}
}

// poppler runs one of poppler-utils' commands on the current version's
// document of t, its standard output.
func poppler(t *testing.T, terms domain.ConventionTerms, tool string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing: .ci/run installs poppler-utils", tool)
		}
		t.Skipf("%s is not installed (apt-get install poppler-utils)", tool)
	}
	pdf := filepath.Join(t.TempDir(), "convention.pdf")
	if err := os.WriteFile(pdf, convdoc.Render(convdoc.Version, terms), 0o600); err != nil {
		t.Fatal(err)
	}
	args = append(args, pdf)
	if tool == "pdftotext" {
		args = append(args, "-") // to the standard output
	}
	var stderr strings.Builder
	cmd := exec.Command(path, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 { // poppler reports what it had to repair
		t.Fatalf("%s: %v %s", tool, err, stderr.String())
	}
	return string(out)
}

// words is s with its runs of white space made one space.
func words(s string) string { return strings.Join(strings.Fields(s), " ") }

// A reader's text of the document is the terms', accents and all, in
// reading order.
func TestText(t *testing.T) {
	const want = "Convention de stage d’observation en milieu professionnel " +
		"Référence 5b0c7c1e-2f43-5d7a-9a51-0d8e3c2b1a44 · candidature app-1 · offre off-1 " +
		"1. L’organisme d’accueil Raison sociale Boulangerie Lefèvre & Fils SIRET 73282932000074 " +
		"Adresse du stage 12 rue de l’Église, Créteil · 94028 Tuteur ou tutrice Jérôme Lefèvre · jerome@boulangerie-lefevre.fr · 0145678901 " +
		"2. L’établissement scolaire Établissement Collège Françoise-Dolto · 0941234A Professeur référent Agnès Çelik · agnes.celik@ac-creteil.fr " +
		"3. L’élève Élève Chloé Bœuf-Gaëlle Classe 3e B Représentant légal 1 Hélène Bœuf · helene@example.fr · 0612345678 " +
		"Représentant légal 2 François Bœuf · francois@example.fr " +
		"4. Le stage Intitulé Découverte du fournil Description Pétrissage, façonnage et cuisson du pain ; accueil des clients à la boutique. " +
		"Activités prévues Observer le pétrissage, la cuisson et la vente ; goûter la brioche à l’œuf. Semaines 2027-W02 " +
		"Dates du 11/01/2027 au 15/01/2027 Horaires quotidiens de 08:30 à 16:30, pause déjeuner de 60 minutes " +
		"5. Signatures Chaque partie signe ce document sous sa forme électronique : sa signature nomme l’empreinte SHA-256 de ce fichier PDF. " +
		"Toute modification des termes produit un nouveau document et rend caduques les signatures données. " +
		"Pour l’organisme d’accueil Nom, date et signature : Le chef d’établissement Nom, date et signature : L’élève Nom, date et signature : " +
		"Le représentant légal Nom, date et signature : Le second représentant légal Nom, date et signature : " +
		"Convention 5b0c7c1e-2f43-5d7a-9a51-0d8e3c2b1a44 · page 1/1"
	if got := words(poppler(t, terms(), "pdftotext", "-raw", "-enc", "UTF-8")); got != want {
		t.Fatalf("the text of the document:\n%s\nwant\n%s", got, want)
	}
	info := poppler(t, terms(), "pdfinfo")
	for _, line := range []string{"Title: Convention de stage d’observation 5b0c7c1e-2f43-5d7a-9a51-0d8e3c2b1a44", "Producer: Passerelle pdf-2", "Pages: 1", "Page size: 595.28 x 841.89 pts (A4)"} {
		if !strings.Contains(words(info), line) {
			t.Fatalf("pdfinfo: no %q in\n%s", line, info)
		}
	}
}

// Long texts break pages, each with its footer; what the fonts lack is
// drawn as a box but read as itself.
func TestLongText(t *testing.T) {
	if info := words(poppler(t, long(), "pdfinfo")); !strings.Contains(info, "Pages: 3") {
		t.Fatalf("pdfinfo: %s", info)
	}
	var text, pages []string
	for _, line := range strings.Split(poppler(t, long(), "pdftotext", "-raw", "-enc", "UTF-8"), "\n") {
		if p, ok := strings.CutPrefix(line, "Convention 5b0c7c1e-2f43-5d7a-9a51-0d8e3c2b1a44 · "); ok {
			pages = append(pages, p)
			continue
		}
		text = append(text, line)
	}
	if got := strings.Join(pages, ", "); got != "page 1/3, page 2/3, page 3/3" {
		t.Fatalf("the footers: %s", got)
	}
	// a word longer than a line is cut: compare without white space
	squash := func(s string) string { return strings.Join(strings.Fields(s), "") }
	got, l := squash(strings.Join(text, "\n")), long()
	for _, want := range []string{
		"Élève Chloé Lefèvre 王 ẞ ǅ Łukasz Dvořák Classe", // the combining grave composed
		"Description " + l.Drafted.Description + " Activités prévues " + l.Activities + " Semaines",
	} {
		if !strings.Contains(got, squash(want)) {
			t.Fatalf("no %q in the text of the document:\n%s", want, got)
		}
	}
}

// The file's cross-reference table gives each object's offset and each
// stream's length is its own: a reader need not repair the file.
func TestStructure(t *testing.T) {
	for _, g := range golden {
		b := convdoc.Render(convdoc.Version, g.terms())
		m := regexp.MustCompile(`startxref\n(\d+)\n%%EOF\n$`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("%s: no startxref at the end", g.name)
		}
		xref, _ := strconv.Atoi(string(m[1]))
		head := regexp.MustCompile(`^xref\n0 (\d+)\n0000000000 65535 f \n`).FindSubmatch(b[xref:])
		if head == nil {
			t.Fatalf("%s: no xref table at %d", g.name, xref)
		}
		size, _ := strconv.Atoi(string(head[1]))
		entries := b[xref+len(head[0]):]
		for n := 1; n < size; n++ {
			off, err := strconv.Atoi(string(entries[20*(n-1) : 20*(n-1)+10]))
			if err != nil || !bytes.HasPrefix(b[off:], fmt.Appendf(nil, "%d 0 obj\n", n)) {
				t.Fatalf("%s: object %d is not at %d", g.name, n, off)
			}
		}
		streams := regexp.MustCompile(`/Length (\d+)[^>]*>>\nstream\n`)
		for _, loc := range streams.FindAllSubmatchIndex(b, -1) {
			n, _ := strconv.Atoi(string(b[loc[2]:loc[3]]))
			if !bytes.HasPrefix(b[loc[1]+n:], []byte("\nendstream\n")) {
				t.Fatalf("%s: a stream at %d is not %d bytes long", g.name, loc[1], n)
			}
		}
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
	if err := os.WriteFile(pdf, convdoc.Render(convdoc.Version, terms()), 0o600); err != nil {
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

// BenchmarkPDF is the cost of one document as the read side serves it
// (its parts, written one after the other), BenchmarkHash as the command
// side pays it on each draft and each completed part; BenchmarkPDF1 and
// BenchmarkHashPDF1 are the same for pdf-1, the version before.
func BenchmarkPDF(b *testing.B) { benchParts(b, convdoc.Version) }

func BenchmarkPDF1(b *testing.B) { benchParts(b, convdoc.VersionPDF1) }

func benchParts(b *testing.B, version string) {
	t := terms()
	for b.Loop() {
		convdoc.Parts(version, t)
	}
}

func BenchmarkHash(b *testing.B) {
	t := terms()
	for b.Loop() {
		convdoc.Hash(t)
	}
}

func BenchmarkHashPDF1(b *testing.B) {
	t := terms()
	for b.Loop() {
		convdoc.Sum(convdoc.VersionPDF1, t)
	}
}
