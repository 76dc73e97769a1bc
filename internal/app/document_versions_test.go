package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"passerelle/convdoc"
	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/eventstore/chain"
	"passerelle/internal/app"
	"passerelle/internal/testsupport/httpclient"
	"passerelle/internal/testsupport/redistest"
)

// A convention whose document was hashed under pdf-1, by a release from
// before pdf-2, keeps its document: the route serves the very bytes
// pdf-1 renders, the page says they are the ones to sign, the parties
// sign them, and the same terms' pdf-2 document is refused as another.
func TestConventionDocumentPDF1(t *testing.T) {
	a, c, conv := employerCompleted(t)
	pdf1Hasher := func(t domain.ConventionTerms) (string, string) {
		return convdoc.VersionPDF1, convdoc.Sum(convdoc.VersionPDF1, t)
	}
	terms := completeAs(t, a, conv, domain.CompleteInput{Party: "school", ReferentTeacher: &domain.Person{Name: "Mme Çelik", Email: "celik@college.fr"}, Document: pdf1Hasher})
	pdf1 := string(convdoc.Render(convdoc.VersionPDF1, terms))
	hash := sha(pdf1)

	path := "/v1/conventions/" + conv + "/document"
	doc := c.Must(200, "GET", path, nil)
	if str(doc, "document_version") != convdoc.VersionPDF1 || str(doc, "document_hash") != hash {
		t.Fatalf("document %v (version %v), want the pdf-1 document's %s", doc["document_hash"], doc["document_version"], hash)
	}
	if pdf := c.Do("GET", path+"?format=pdf", nil); pdf.Status != 200 || pdf.Raw != pdf1 {
		t.Fatalf("?format=pdf: %d, %d bytes of SHA-256 %s; pdf-1 rendered %d bytes of %s", pdf.Status, len(pdf.Raw), sha(pdf.Raw), len(pdf1), hash)
	}
	if html := c.Do("GET", path+"?format=html", nil); html.Status != 200 || !contains(html.Raw, hash, "le SHA-256 du PDF") {
		t.Fatalf("the page of a pdf-1 document: %d %s", html.Status, html.Raw)
	}

	pdf2 := sha(string(convdoc.Render(convdoc.VersionPDF2, terms)))
	r := c.Do("POST", "/v1/conventions/"+conv+"/signatures", map[string]any{"role": "employer", "signer_name": "Jérôme Lefèvre", "document_hash": pdf2})
	if r.Status != 409 || str(r.Body["error"].(map[string]any), "rule") != "outdated_document" {
		t.Fatalf("signing the pdf-2 rendering of a pdf-1 convention: %d %s", r.Status, r.Raw)
	}
	last := signAll(c, conv, hash)
	if read := c.Must(200, "GET", "/v1/conventions/"+conv+"?min_position="+str(last, "position"), nil); str(read, "status") != "signed" || str(read, "document_hash") != hash {
		t.Fatalf("after the signatures of the pdf-1 document: %v", read)
	}
	if after := c.Do("GET", path+"?format=pdf", nil); after.Raw != pdf1 {
		t.Fatal("the signed pdf-1 document is served other bytes")
	}
}

// A convention whose hash is of its terms, from before the PDF, is still
// read: the route serves the current rendering of its terms, the page
// says it is not the document the hash names, and the parties sign the
// hash they were given.
func TestConventionDocumentBeforePDF(t *testing.T) {
	a, c, conv := employerCompleted(t)
	terms := completeAs(t, a, conv, domain.CompleteInput{Party: "school", ReferentTeacher: &domain.Person{Name: "Mme Çelik", Email: "celik@college.fr"}})
	hash := domain.DocumentHash(terms)

	path := "/v1/conventions/" + conv + "/document"
	doc := c.Must(200, "GET", path, nil)
	if _, ok := doc["document_version"]; ok || str(doc, "document_hash") != hash {
		t.Fatalf("document %v (version %v), want the terms' digest %s and no version", doc["document_hash"], doc["document_version"], hash)
	}
	if pdf := c.Do("GET", path+"?format=pdf", nil); pdf.Status != 200 || pdf.Raw != string(convdoc.Render(convdoc.Version, terms)) {
		t.Fatalf("?format=pdf: %d, %d bytes, not the current rendering of the terms", pdf.Status, len(pdf.Raw))
	}
	if html := c.Do("GET", path+"?format=html", nil); html.Status != 200 || !contains(html.Raw, hash, "antérieure au PDF") {
		t.Fatalf("the page of a convention from before the PDF: %d %s", html.Status, html.Raw)
	}
	last := signAll(c, conv, hash)
	if read := c.Must(200, "GET", "/v1/conventions/"+conv+"?min_position="+str(last, "position"), nil); str(read, "status") != "signed" {
		t.Fatalf("after the signatures of the terms' digest: %v", read)
	}
}

// employerCompleted boots a service and brings a convention to its
// employer's part, the school's still to come.
func employerCompleted(t *testing.T) (*app.App, httpclient.Client, string) {
	t.Helper()
	a, c := bootWith(t, app.Config{DataDir: t.TempDir(), RedisURL: redistest.Mini(t).URL, Clock: newClock(time.Now().UTC()).Now, ExpiryEvery: -1})
	l := setup(t, c)
	appID := l.apply(l.pupil2, weekAhead(10))
	c.Must(200, "POST", "/v1/applications/"+appID+"/accept", nil)
	conv := str(c.Must(200, "POST", "/v1/applications/"+appID+"/confirm", nil), "convention_id")
	c.Must(200, "POST", "/v1/conventions/"+conv+"/complete", map[string]any{
		"party": "employer", "tutor": map[string]string{"name": "Jérôme Lefèvre", "email": "lefevre@vitry.fr"}, "activities": "Accueil du public, état civil",
	})
	return a, c, conv
}

// signAll signs the convention's document hash in every required role and
// returns the last signature's answer.
func signAll(c httpclient.Client, conv, hash string) (last map[string]any) {
	for _, role := range []string{"employer", "school_head", "pupil", "guardian"} {
		last = c.Must(201, "POST", "/v1/conventions/"+conv+"/signatures", map[string]any{"role": role, "signer_name": "S " + role, "document_hash": hash})
	}
	return last
}

// completeAs records a party's part as an earlier release did: the
// domain's decision, its document hashed by in.Document (nil: the terms'
// digest, before the PDF), appended to the convention's stream and
// chained to it. It returns the new terms.
func completeAs(t *testing.T, a *app.App, conv string, in domain.CompleteInput) domain.ConventionTerms {
	t.Helper()
	ctx := context.Background()
	stream := domain.ConventionStream(conv)
	recs, err := a.Store.ReadStream(ctx, stream, eventstore.Forwards, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var cv domain.Convention
	for _, re := range recs {
		e, err := domain.Decode(re.Type, re.Data)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Cipher.Open(e); err != nil {
			t.Fatal(err)
		}
		cv.Apply(e)
	}
	evs, err := cv.CompleteParty(in)
	if err != nil || len(evs) != 1 {
		t.Fatalf("the %s part: %v %v", in.Party, evs, err)
	}
	data, err := domain.Encode(evs[0])
	if err != nil {
		t.Fatal(err)
	}
	prev := recs[len(recs)-1]
	md := eventstore.Metadata{CommandID: "earlier-" + in.Party, Actor: eventstore.Actor{Role: in.Party}, OccurredAt: time.Now().UTC(), PrevHash: chain.Of(prev)}.Encode()
	ev := eventstore.EventData{ID: eventstore.EventID("earlier-"+in.Party+"/"+stream, 0), Type: evs[0].EventType(), Data: data, Metadata: md}
	if _, err := a.Store.Append(ctx, stream, eventstore.Exact(prev.Revision), ev); err != nil {
		t.Fatal(err)
	}
	cv.Apply(evs[0])
	return cv.Terms
}

func contains(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
