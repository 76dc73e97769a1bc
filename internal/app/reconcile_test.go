package app_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"passerelle/commands"
	"passerelle/domain/refdata"
	"passerelle/eventstore"
	"passerelle/internal/app"
	"passerelle/internal/testsupport/httpclient"
)

// stopsAfter is the log as a process sees it that dies after n appends.
type stopsAfter struct {
	eventstore.Store
	n int
}

var errStopped = errors.New("stopped")

func (s *stopsAfter) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, evs ...eventstore.EventData) (eventstore.AppendResult, error) {
	if s.n == 0 {
		return eventstore.AppendResult{}, errStopped
	}
	s.n--
	return s.Store.Append(ctx, stream, expected, evs...)
}

// waitStatus polls an application until it has status, for at most 5 s.
func waitStatus(t *testing.T, c httpclient.Client, app, status string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		// the read model may not show the application just made yet
		r := c.Do("GET", "/v1/applications/"+app, nil)
		if r.Status != 200 && r.Status != 404 {
			t.Fatalf("GET /v1/applications/%s: status %d: %s", app, r.Status, r.Raw)
		}
		got := str(r.Body, "status")
		if r.Status == 200 && got == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("application %s is %s after 5 s, want %s", app, got, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// An acceptance interrupted after the seat was held is finished by the
// reconciler running in the service, without any retry, and the audit
// trail shows the interrupted command, the repair and its reason.
func TestReconcilerFinishesAnInterruptedAcceptance(t *testing.T) {
	a, c := bootWith(t, app.Config{DataDir: t.TempDir(), ReconcileGrace: 200 * time.Millisecond})
	l := setup(t, c)
	id := l.apply(l.pupil, weekAhead(10))
	interrupted := commands.NewService(&stopsAfter{Store: a.Store, n: 1}, refdata.MustLoad())
	m := commands.Meta{CommandID: "interrupted-accept", Actor: eventstore.Actor{Role: "employer", Subject: l.employer}, Now: time.Now()}
	if _, err := interrupted.Accept(context.Background(), m, id); !errors.Is(err, errStopped) {
		t.Fatalf("accept: %v", err)
	}
	waitStatus(t, c, id, "accepted")

	trail := c.Must(200, "GET", "/v1/audit/applications/"+id, nil)
	var held, repaired bool
	for _, e := range trail["events"].([]any) {
		ev := e.(map[string]any)
		actor := ev["actor"].(map[string]any)
		switch ev["type"] {
		case "SeatHeld":
			held = ev["command_id"] == "interrupted-accept" && actor["role"] == "employer"
		case "ApplicationAccepted":
			repaired = actor["role"] == "system" && actor["subject"] == "reconciler" &&
				strings.Contains(str(ev, "reason"), "acceptance finished")
		}
	}
	if !held || !repaired {
		t.Fatalf("audit trail: interrupted command shown %v, repair shown %v: %v", held, repaired, trail["events"])
	}
	if st := trail["state"].(map[string]any); st["seat_held"] != true {
		t.Fatalf("state %v", st)
	}
	if done, _ := a.Reconciler.Repairs(); done < 1 {
		t.Fatalf("repairs %d", done)
	}
}

// Withdrawing an offer closes its unanswered applications and lists the
// accepted ones, which keep their seats.
func TestWithdrawOfferClosesUnansweredApplications(t *testing.T) {
	_, c := bootWith(t, app.Config{DataDir: t.TempDir(), ReconcileGrace: 100 * time.Millisecond})
	l := setup(t, c)
	week := weekAhead(10)
	accepted, unanswered := l.apply(l.pupil, week), l.apply(l.pupil2, week)
	c.Must(200, "POST", "/v1/applications/"+accepted+"/accept", nil)
	res := c.Must(200, "POST", "/v1/offers/"+l.offer+"/withdraw", map[string]any{"reason": "fermeture"})
	list, _ := res["placements_to_cancel"].([]any)
	if len(list) != 1 || list[0] != accepted {
		t.Fatalf("placements_to_cancel %v, want [%s]", res["placements_to_cancel"], accepted)
	}
	waitStatus(t, c, unanswered, "offer_withdrawn")
	if s := str(c.Must(200, "GET", "/v1/applications/"+accepted, nil), "status"); s != "accepted" {
		t.Fatalf("an accepted placement ended silently: %s", s)
	}
	inbox := c.Must(200, "GET", "/v1/employers/"+l.employer+"/applications?status=offer_withdrawn", nil)
	if n := num(inbox, "total"); n != 1 {
		t.Fatalf("inbox of closed applications: %v", inbox)
	}
}

// An application shows its deadline and what happens then, in its own
// answer, the employer's inbox and the pupil's list.
func TestApplicationsShowTheirDeadline(t *testing.T) {
	_, c := bootWith(t, app.Config{DataDir: t.TempDir()})
	l := setup(t, c)
	applied := c.Must(201, "POST", "/v1/offers/"+l.offer+"/applications", map[string]any{
		"pupil_id": l.pupil, "weeks": []string{weekAhead(10)}, "motivation": "Je veux découvrir le service public.",
	})
	id := str(applied, "id")
	one := c.Must(200, "GET", "/v1/applications/"+id+"?min_position="+str(applied, "position"), nil)
	submitted, _ := time.Parse(time.RFC3339Nano, str(one, "submitted_at"))
	expires, err := time.Parse(time.RFC3339Nano, str(one, "expires_at"))
	if err != nil || !expires.Equal(submitted.Add(15*24*time.Hour)) || str(one, "on_expiry") != "no_employer_answer" {
		t.Fatalf("submitted application: expires_at %q on_expiry %q (submitted %s)", str(one, "expires_at"), str(one, "on_expiry"), submitted)
	}
	pos := str(c.Must(200, "POST", "/v1/applications/"+id+"/accept", nil), "position")
	one = c.Must(200, "GET", "/v1/applications/"+id+"?min_position="+pos, nil)
	if str(one, "on_expiry") != "not_confirmed_in_time" {
		t.Fatalf("accepted application: %v", one)
	}
	for _, path := range []string{"/v1/employers/" + l.employer + "/applications", "/v1/pupils/" + l.pupil + "/applications"} {
		items := c.Must(200, "GET", path, nil)["items"].([]any)
		if len(items) != 1 || str(items[0].(map[string]any), "expires_at") != str(one, "expires_at") {
			t.Fatalf("%s: %v", path, items)
		}
	}
	pos = str(c.Must(200, "POST", "/v1/applications/"+id+"/confirm", nil), "position")
	one = c.Must(200, "GET", "/v1/applications/"+id+"?min_position="+pos, nil)
	if _, ok := one["expires_at"]; ok || !slices.Contains([]string{"confirmed"}, str(one, "status")) {
		t.Fatalf("a confirmed application has no deadline: %v", one)
	}
}
