package app_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"passerelle/convdoc"
	"passerelle/internal/app"
	"passerelle/internal/testsupport/redistest"
)

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// The document a convention's parties sign is the PDF the document route
// serves: its SHA-256 is the document_hash the convention's read model and
// the JSON document show, a signature naming it is accepted, one naming
// any other document refused.
func TestConventionDocumentPDF(t *testing.T) {
	_, c := bootWith(t, app.Config{DataDir: t.TempDir(), RedisURL: redistest.Mini(t).URL, Clock: newClock(time.Now().UTC()).Now, ExpiryEvery: -1})
	l := setup(t, c)
	appID := l.apply(l.pupil2, weekAhead(10))
	c.Must(200, "POST", "/v1/applications/"+appID+"/accept", nil)
	conv := str(c.Must(200, "POST", "/v1/applications/"+appID+"/confirm", nil), "convention_id")
	c.Must(200, "POST", "/v1/conventions/"+conv+"/complete", map[string]any{
		"party": "employer", "tutor": map[string]string{"name": "Jérôme Lefèvre", "email": "lefevre@vitry.fr"}, "activities": "Accueil du public, état civil",
	})
	done := c.Must(200, "POST", "/v1/conventions/"+conv+"/complete", map[string]any{
		"party": "school", "referent_teacher": map[string]string{"name": "Mme Çelik", "email": "celik@college.fr"},
	})
	path := "/v1/conventions/" + conv + "/document"
	doc := c.Must(200, "GET", path, nil)
	read := c.Must(200, "GET", "/v1/conventions/"+conv+"?min_position="+str(done, "position"), nil)
	hash := str(doc, "document_hash")
	if str(doc, "document_version") != convdoc.Version || str(read, "document_hash") != hash {
		t.Fatalf("document %s (version %v), read model %s", hash, doc["document_version"], str(read, "document_hash"))
	}

	pdf := c.Do("GET", path+"?format=pdf", nil)
	if pdf.Status != 200 || pdf.Header.Get("Content-Type") != "application/pdf" || !strings.HasPrefix(pdf.Raw, "%PDF-") {
		t.Fatalf("?format=pdf: %d %s %.40q", pdf.Status, pdf.Header.Get("Content-Type"), pdf.Raw)
	}
	if got := sha(pdf.Raw); got != hash {
		t.Fatalf("the PDF's SHA-256 is %s, the document_hash %s", got, hash)
	}
	if pdf.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("the PDF names the pupil and may be kept: Cache-Control %q", pdf.Header.Get("Cache-Control"))
	}
	if again := c.Do("GET", path, nil, "Accept", "text/html;q=0.5, application/pdf"); again.Raw != pdf.Raw {
		t.Fatalf("Accept: application/pdf served another document: %d %s", again.Status, again.Header.Get("Content-Type"))
	}
	html := c.Do("GET", path, nil, "Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	if html.Status != 200 || !strings.HasPrefix(html.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(html.Raw, hash) || !strings.Contains(html.Raw, "Inès") || !strings.Contains(html.Raw, "le SHA-256 du PDF") {
		t.Fatalf("the page's document: %d %s", html.Status, html.Raw)
	}

	// a signature of another document: the PDF with one byte changed
	other := sha(pdf.Raw[:len(pdf.Raw)-1] + "x")
	r := c.Do("POST", "/v1/conventions/"+conv+"/signatures", map[string]any{"role": "employer", "signer_name": "Jérôme Lefèvre", "document_hash": other})
	if r.Status != 409 || str(r.Body["error"].(map[string]any), "rule") != "outdated_document" {
		t.Fatalf("signing another document: %d %s", r.Status, r.Raw)
	}
	var last map[string]any
	for _, role := range []string{"employer", "school_head", "pupil", "guardian"} {
		last = c.Must(201, "POST", "/v1/conventions/"+conv+"/signatures", map[string]any{"role": role, "signer_name": "S " + role, "document_hash": sha(pdf.Raw)})
	}
	if read = c.Must(200, "GET", "/v1/conventions/"+conv+"?min_position="+str(last, "position"), nil); str(read, "status") != "signed" {
		t.Fatalf("after the signatures of the PDF: %v", read)
	}
	// signatures are not part of the document: the signed PDF is the same
	if after := c.Do("GET", path+"?format=pdf", nil); after.Raw != pdf.Raw {
		t.Fatal("the PDF changed with the signatures")
	}
}

// The document's representations: a format not served is a clear error.
func TestConventionDocumentFormats(t *testing.T) {
	_, c := bootWith(t, app.Config{DataDir: t.TempDir(), RedisURL: redistest.Mini(t).URL, Clock: newClock(time.Now().UTC()).Now, ExpiryEvery: -1})
	l := setup(t, c)
	appID := l.apply(l.pupil, weekAhead(10))
	c.Must(200, "POST", "/v1/applications/"+appID+"/accept", nil)
	path := "/v1/conventions/" + str(c.Must(200, "POST", "/v1/applications/"+appID+"/confirm", nil), "convention_id") + "/document"
	for _, tt := range []struct {
		query, accept, want string
		status              int
	}{
		{"", "", "application/json", 200},
		{"", "*/*", "application/json", 200},
		{"", "application/json, application/pdf", "application/json", 200},
		{"", "application/pdf;q=0.9, text/html", "text/html", 200},
		{"?format=json", "application/pdf", "application/json", 200},
		{"?format=pdf", "", "application/pdf", 200},
		{"?format=html", "", "text/html", 200},
		{"?format=xml", "", "application/json", 400},
		{"?format=", "", "application/json", 400},
		{"", "image/png", "application/json", 406},
		{"", "application/pdf;q=0", "application/json", 406},
	} {
		var r = c.Do("GET", path+tt.query, nil)
		if tt.accept != "" {
			r = c.Do("GET", path+tt.query, nil, "Accept", tt.accept)
		}
		if r.Status != tt.status || !strings.HasPrefix(r.Header.Get("Content-Type"), tt.want) {
			t.Errorf("%s Accept %q: %d %s, want %d %s", tt.query, tt.accept, r.Status, r.Header.Get("Content-Type"), tt.status, tt.want)
		}
	}
}
