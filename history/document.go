package history

import (
	"bytes"
	"html/template"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"passerelle/convdoc"
	"passerelle/domain"
	"passerelle/internal/api"
)

// The representations of a convention's document.
const (
	formatJSON = "json" // the terms, the parties and the hash (the default)
	formatPDF  = "pdf"  // the document signers sign
	formatHTML = "html" // the same, as a fragment the dashboard page shows
)

// mediaFormats map the media types a client may accept to a representation;
// a wildcard gets JSON, as before the others existed.
var mediaFormats = map[string]string{
	"application/json": formatJSON, "application/pdf": formatPDF, "text/html": formatHTML,
	"*/*": formatJSON, "application/*": formatJSON, "text/*": formatHTML,
}

// documentFormat is the representation asked for: ?format= first, then
// the Accept header; JSON when neither says.
func documentFormat(r *http.Request) (string, error) {
	if q := r.URL.Query(); q.Has("format") {
		switch f := q.Get("format"); f {
		case formatJSON, formatPDF, formatHTML:
			return f, nil
		}
		return "", api.Invalid("format", "must be json, pdf or html")
	}
	accept := strings.TrimSpace(r.Header.Get("Accept"))
	if accept == "" {
		return formatJSON, nil
	}
	if f := negotiate(accept); f != "" {
		return f, nil
	}
	return "", api.Errorf(http.StatusNotAcceptable, "not_acceptable", "the document is served as application/json, application/pdf or text/html")
}

// negotiate picks from an Accept header the representation of highest q,
// an exact type before a wildcard of the same q; "" when none is accepted.
func negotiate(accept string) string {
	best, bestQ, bestExact := "", 0.0, false
	for _, part := range strings.Split(accept, ",") {
		typ, params, err := mime.ParseMediaType(part)
		if err != nil || mediaFormats[typ] == "" {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if q, err = strconv.ParseFloat(v, 64); err != nil || q > 1 {
				continue
			}
		}
		exact := !strings.HasSuffix(typ, "*")
		if q > 0 && (q > bestQ || q == bestQ && exact && !bestExact) {
			best, bestQ, bestExact = mediaFormats[typ], q, exact
		}
	}
	return best
}

// writeDocument writes the document in the format asked for. The PDF and
// the page are rendered on every request and never kept: they name the
// pupil, whose forget must leave no copy behind. The PDF is rendered by
// the version the convention's hash is of, so that its signers read the
// bytes they sign.
func writeDocument(w http.ResponseWriter, format string, c *domain.Convention, doc ConventionDocument) {
	h := w.Header()
	h.Set("Vary", "Accept")
	h.Set("Cache-Control", "no-store")
	switch format {
	case formatPDF:
		h.Set("Content-Type", "application/pdf")
		h.Set("Content-Disposition", `inline; filename="convention-`+doc.ID+`.pdf"`)
		body, size := convdoc.Parts(c.Version, termsOf(c, doc)), 0
		for _, part := range body {
			size += len(part)
		}
		h.Set("Content-Length", strconv.Itoa(size))
		w.WriteHeader(http.StatusOK)
		for _, part := range body {
			if _, err := w.Write(part); err != nil {
				return // the client went away: nothing left to do
			}
		}
	case formatHTML:
		var b bytes.Buffer
		if err := page.Execute(&b, pageOf(c, doc)); err != nil {
			panic("history: the document's template: " + err.Error()) // fixed template over plain values
		}
		h.Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(b.Bytes())
	default:
		api.WriteJSON(w, http.StatusOK, doc)
	}
}

// termsOf are the terms as this reader may see them: the names withheld
// from doc are withheld from the PDF too.
func termsOf(c *domain.Convention, doc ConventionDocument) domain.ConventionTerms {
	t := c.Terms
	t.Drafted.PupilFirstName, t.Drafted.PupilLastName = doc.Pupil.FirstName, doc.Pupil.LastName
	if len(doc.Guardians) == 0 {
		t.Drafted.Guardians = nil
	}
	return t
}

// documentPage is what the HTML fragment shows.
type documentPage struct {
	Doc ConventionDocument
	// PDFHash is the SHA-256 of the PDF this reader gets; Signable: it is
	// the hash the current version's signatures name.
	PDFHash    string
	Signable   bool
	Signatures []pageSignature
}

type pageSignature struct {
	Role, Signer, SignedAt string
	Signed                 bool
}

func pageOf(c *domain.Convention, doc ConventionDocument) documentPage {
	p := documentPage{Doc: doc, PDFHash: convdoc.Sum(c.Version, termsOf(c, doc))}
	p.Signable = p.PDFHash == doc.DocumentHash
	for _, r := range c.Roles {
		s, ok := c.Signatures[r]
		ps := pageSignature{Role: string(r), Signed: ok}
		if ok {
			ps.Signer, ps.SignedAt = "signé", s.SignedAt.UTC().Format("02/01/2006 15:04 UTC")
			if !r.Personal() { // the pupil's side's names are in the terms, for the readers allowed them
				ps.Signer = s.SignerName
			}
		}
		p.Signatures = append(p.Signatures, ps)
	}
	return p
}

var page = template.Must(template.New("document").Parse(`<article class="convention" lang="fr" data-convention="{{.Doc.ID}}">
<h3>Convention de stage d’observation</h3>
<p class="hint">Référence {{.Doc.ID}} · statut <strong>{{.Doc.Status}}</strong></p>
<dl class="terms">
<dt>Organisme d’accueil</dt><dd>{{.Doc.Employer.Name}} (SIRET {{.Doc.Employer.SIRET}})</dd>
{{with .Doc.CoHosts}}<dt>Programme partagé avec</dt><dd>{{range $i, $c := .}}{{if $i}}, {{end}}{{$c.Name}}{{end}}</dd>
{{end}}<dt>Tuteur ou tutrice</dt><dd>{{with .Doc.Tutor}}{{.Name}} · {{.Email}}{{else}}—{{end}}</dd>
<dt>Établissement</dt><dd>{{.Doc.School.Name}} ({{.Doc.School.UAI}})</dd>
<dt>Professeur référent</dt><dd>{{with .Doc.ReferentTeacher}}{{.Name}} · {{.Email}}{{else}}—{{end}}</dd>
<dt>Élève</dt><dd>{{.Doc.Pupil.FirstName}} {{.Doc.Pupil.LastName}}{{with .Doc.Pupil.ClassName}} ({{.}}){{end}}</dd>
{{range .Doc.Guardians}}<dt>Représentant légal</dt><dd>{{.Name}}</dd>
{{end}}<dt>Stage</dt><dd>{{.Doc.OfferTitle}}, {{.Doc.Address}}</dd>
<dt>Dates</dt><dd>du {{.Doc.StartDate}} au {{.Doc.EndDate}}</dd>
<dt>Activités</dt><dd>{{with .Doc.Activities}}{{.}}{{else}}—{{end}}</dd>
</dl>
<table class="signatures"><caption>Signatures de cette version</caption>
<thead><tr><th scope="col">Rôle</th><th scope="col">Signataire</th><th scope="col">Signé le</th></tr></thead>
<tbody>{{range .Signatures}}<tr><td>{{.Role}}</td><td>{{if .Signed}}{{.Signer}}{{else}}en attente{{end}}</td><td>{{.SignedAt}}</td></tr>{{end}}</tbody>
</table>
<p class="hash">Empreinte à signer (document_hash) : <code>{{.Doc.DocumentHash}}</code>{{if .Signable}}, le SHA-256 du PDF.{{else}} ; le PDF servi ici n’est pas ce document (convention antérieure au PDF, ou données personnelles retirées).{{end}}</p>
</article>
`))
