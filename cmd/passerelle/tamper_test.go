package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"passerelle/domain"
	"passerelle/eventstore/embedded"
	"passerelle/internal/app"
	"passerelle/internal/testsupport/httpclient"
	"passerelle/internal/testsupport/redistest"
)

// sealingService runs the service on dir with sealing on, but no periodic
// seal within the test: only those of the start-up and of the shutdown.
func sealingService(t *testing.T, dir string) (httpclient.Client, func()) {
	t.Helper()
	a, err := app.Open(app.Config{DataDir: dir, RedisURL: redistest.Mini(t).URL, ExpiryEvery: -1, SealEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		a.Close()
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	stop := func() {
		srv.Close()
		if err := a.Close(); err != nil {
			t.Error(err)
		}
	}
	return httpclient.New(t, srv.URL), stop
}

// The last event written before a graceful stop has no successor: the seal
// written at shutdown vouches for it, so an edit of it afterwards is named
// by verify, and the audit marks it.
func TestTamperWithTheLastEventBeforeAStop(t *testing.T) {
	const marker = "LAST-EVENT-MARKER"
	dir := t.TempDir()
	c, stop := sealingService(t, dir)
	id := placementThroughAPI(t, c)
	c.Must(200, "POST", "/v1/applications/"+id+"/reject", map[string]any{"reason": marker}) // the log's last event
	stop()

	code, out, errOut := cli("verify", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, `"unsealed": 0`) {
		t.Fatalf("verify after a graceful stop: %d %s %s", code, out, errOut)
	}
	path := filepath.Join(dir, embedded.FileName)
	b, err := os.ReadFile(path)
	if err != nil || !bytes.Contains(b, []byte(marker)) {
		t.Fatalf("%s holds no %s: %v", path, marker, err)
	}
	if err := os.WriteFile(path, bytes.ReplaceAll(b, []byte(marker), []byte("XAST-EVENT-MARKER")), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = cli("verify", "--data-dir", dir)
	if code == 0 || !strings.Contains(errOut, "application-"+id+"@") || !strings.Contains(errOut, "ApplicationRejected") {
		t.Fatalf("verify after editing the last event: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = cli("audit", "application", id, "--data-dir", dir, "--format", "csv")
	if code != 0 || !strings.Contains(out, "ApplicationRejected") || strings.Count(out, "its hash no longer matches") != 1 {
		t.Fatalf("audit after editing the last event:\n%s", out)
	}

	// the service started again does not seal over the edit, and its
	// audit marks the event
	c, stop = sealingService(t, dir)
	trail := c.Must(200, "GET", "/v1/audit/applications/"+id, nil)
	var marked []string
	for _, e := range trail["events"].([]any) {
		if ev := e.(map[string]any); ev["tampered"] != nil {
			marked = append(marked, ev["type"].(string))
		}
	}
	if trail["intact"] != false || len(marked) != 1 || marked[0] != "ApplicationRejected" {
		t.Fatalf("audit over HTTP: intact %v, marked %v", trail["intact"], marked)
	}
	stop()
	if code, _, errOut := cli("verify", "--data-dir", dir); code == 0 || !strings.Contains(errOut, "application-"+id+"@") {
		t.Fatalf("verify after a restart over the edit: %d %s", code, errOut)
	}
}

// placementThroughAPI registers what an application needs and submits one.
func placementThroughAPI(t *testing.T, c httpclient.Client) string {
	t.Helper()
	emp := c.Must(201, "POST", "/v1/employers", map[string]any{"name": "Boulangerie Martin", "siret": "73282932000074", "kind": "company", "commune_code": "94028", "address": "1 rue de Paris"})
	c.Must(201, "POST", "/v1/schools", map[string]any{"uai": "0941234A", "name": "Collège Jean Macé", "kind": "college", "commune_code": "94028", "education_priority": "rep", "qpv": true})
	pupil := c.Must(201, "POST", "/v1/pupils", map[string]any{"school_uai": "0941234A", "grade": "3e", "class_name": "3eB", "first_name": "Lina",
		"last_name": "Benali", "birth_date": "2010-03-14", "guardians": []map[string]string{{"name": "Karim Benali", "email": "k@example.fr", "phone": "0612345678"}}})
	week := weekIn(2)
	offer := c.Must(201, "POST", "/v1/offers", map[string]any{"employer_id": emp["id"], "title": "Fournil", "description": "Pétrissage",
		"sector": "s1", "grades": []string{"3e"}, "weeks": []string{week}, "seats": 2, "commune_code": "94028",
		"address": "1 rue de Paris", "lat": 48.79, "lon": 2.455})
	return c.Must(201, "POST", "/v1/offers/"+offer["id"].(string)+"/applications", map[string]any{
		"pupil_id": pupil["id"], "weeks": []string{week}, "motivation": "J'aime le pain."})["id"].(string)
}

func weekIn(months int) string { return domain.WeekOf(time.Now().AddDate(0, months, 0)) }
