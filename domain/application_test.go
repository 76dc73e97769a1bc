package domain_test

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"passerelle/domain"
)

func TestApplicationSubmit(t *testing.T) {
	offer := newOffer(t, "off-1", collegeOfferInput())
	pupil := pupil3e(t)
	var a domain.Application
	in := domain.SubmitInput{Weeks: []string{week26}, Motivation: "  J'aime le pain.\n"}
	local := now.In(time.FixedZone("CEST", 2*3600))
	ev := only[*domain.ApplicationSubmitted](t, must(t)(a.Submit("app-1", offer, pupil, schoolFor(t, pupil), in, local)))
	want := domain.ApplicationSubmitted{
		ApplicationID: "app-1", OfferID: "off-1", EmployerID: "emp-1", PupilID: "pupil-3e",
		SchoolUAI: "0941234A", Grade: domain.Grade3e, Weeks: []string{week26},
		Motivation: "J'aime le pain.", SubmittedAt: now,
	}
	if !reflect.DeepEqual(*ev, want) {
		t.Fatalf("event = %+v\nwant    %+v", *ev, want)
	}
	if ev.SubmittedAt.Location() != time.UTC {
		t.Errorf("SubmittedAt is in %v, want UTC", ev.SubmittedAt.Location())
	}
	if a.Exists() || a.Status != "" {
		t.Fatal("deciding changed the aggregate")
	}
	a.Apply(ev)
	if !a.Exists() || a.Status != domain.StatusSubmitted || !reflect.DeepEqual(a.Submitted, want) {
		t.Fatalf("after Apply: exists=%v status=%q %+v", a.Exists(), a.Status, a.Submitted)
	}
}

func TestApplicationSubmitWeeks(t *testing.T) {
	college := newOffer(t, "off-college", collegeOfferInput()) // 4e, 3e; weeks 25, 26
	lyceeIn := lyceeOfferInput()
	lyceeIn.Weeks = []string{week25, week26, week27, week28, "2026-W53", "2027-W01"}
	lycee := newOffer(t, "off-lycee", lyceeIn) // 2de
	p3e, p2de := pupil3e(t), pupil2de(t)
	p4e := newPupil(t, "pupil-4e", newSchool(t, collegeInput()), "4e")
	tests := []struct {
		name  string
		offer *domain.Offer
		pupil *domain.Pupil
		weeks []string
		want  []string // the weeks decided; nil when "weeks" is refused
	}{
		{"3e one week", college, p3e, []string{week25}, []string{week25}},
		{"4e one week", college, p4e, []string{week26}, []string{week26}},
		{"3e two weeks", college, p3e, []string{week25, week26}, nil},
		{"4e two weeks", college, p4e, []string{week26, week25}, nil},
		{"3e week not offered", college, p3e, []string{week27}, nil},
		{"2de one week", lycee, p2de, []string{week27}, []string{week27}},
		{"2de two consecutive weeks", lycee, p2de, []string{week26, week25}, []string{week25, week26}},
		{"2de across the new year", lycee, p2de, []string{"2027-W01", "2026-W53"}, []string{"2026-W53", "2027-W01"}},
		{"2de two weeks apart", lycee, p2de, []string{week25, week27}, nil},
		{"2de three weeks", lycee, p2de, []string{week25, week26, week27}, nil},
		{"2de week not offered", lycee, p2de, []string{week28, "2026-W29"}, nil},
		{"no week", lycee, p2de, nil, nil},
		{"bad week", lycee, p2de, []string{"2026-W25x"}, nil},
		{"week twice", lycee, p2de, []string{week25, week25}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a domain.Application
			evs, err := a.Submit("app", tt.offer, tt.pupil, schoolFor(t, tt.pupil), domain.SubmitInput{Weeks: tt.weeks, Motivation: "Curieux."}, now)
			if tt.want == nil {
				if len(evs) != 0 {
					t.Fatalf("events %v", types(evs))
				}
				wantFields(t, err, "weeks")
				return
			}
			ev := only[*domain.ApplicationSubmitted](t, must(t)(evs, err))
			if !reflect.DeepEqual(ev.Weeks, tt.want) || ev.Grade != tt.pupil.Registered.Grade {
				t.Fatalf("weeks %v grade %s, want %v %s", ev.Weeks, ev.Grade, tt.want, tt.pupil.Registered.Grade)
			}
		})
	}
}

func TestApplicationSubmitRefused(t *testing.T) {
	college := newOffer(t, "off-college", collegeOfferInput())
	lycee := newOffer(t, "off-lycee", lyceeOfferInput())
	withdrawn := newOffer(t, "off-closed", collegeOfferInput())
	apply(withdrawn, must(t)(withdrawn.Withdraw(""))...)
	p3e, p2de := pupil3e(t), pupil2de(t)
	ok := domain.SubmitInput{Weeks: []string{week25}, Motivation: "Curieux."}

	fieldTests := []struct {
		name   string
		offer  *domain.Offer
		pupil  *domain.Pupil
		in     domain.SubmitInput
		fields []string
	}{
		{"no pupil", college, nil, ok, []string{"pupil_id"}},
		{"unregistered pupil", college, &domain.Pupil{}, ok, []string{"pupil_id"}},
		{"3e to a 2de offer", lycee, p3e, ok, []string{"pupil_id"}},
		{"2de to a collège offer", college, p2de, ok, []string{"pupil_id"}},
		{"no motivation", college, p3e, domain.SubmitInput{Weeks: ok.Weeks, Motivation: " "}, []string{"motivation"}},
		{"long motivation", college, p3e, domain.SubmitInput{Weeks: ok.Weeks, Motivation: strings.Repeat("m", 5001)}, []string{"motivation"}},
		{"wrong grade and week", lycee, p3e, domain.SubmitInput{Weeks: []string{week28}, Motivation: "x"}, []string{"pupil_id", "weeks"}},
		{"nothing", nil, nil, domain.SubmitInput{}, []string{"pupil_id", "weeks", "motivation"}},
	}
	for _, tt := range fieldTests {
		t.Run(tt.name, func(t *testing.T) {
			var a domain.Application
			evs, err := a.Submit("app", tt.offer, tt.pupil, schoolFor(t, tt.pupil), tt.in, now)
			if len(evs) != 0 {
				t.Fatalf("events %v", types(evs))
			}
			wantFields(t, err, tt.fields...)
		})
	}

	college3e := schoolFor(t, p3e)
	var a domain.Application
	evs, err := a.Submit("app", nil, p3e, college3e, ok, now)
	wantIs(t, evs, err, domain.ErrNotFound)
	evs, err = a.Submit("app", &domain.Offer{}, p3e, college3e, ok, now)
	wantIs(t, evs, err, domain.ErrNotFound)
	evs, err = a.Submit("app", withdrawn, p3e, college3e, ok, now)
	wantRule(t, evs, err, "offer_withdrawn")

	// Once the first week has started, it is too late to apply.
	start, _ := domain.ParseWeek(week25)
	evs, err = a.Submit("app", college, p3e, college3e, ok, start)
	wantRule(t, evs, err, "internship_started")
	evs, err = a.Submit("app", college, p3e, college3e, ok, start.Add(72*time.Hour))
	wantRule(t, evs, err, "internship_started")
	only[*domain.ApplicationSubmitted](t, must(t)(a.Submit("app", college, p3e, college3e, ok, start.Add(-time.Second))))
}

func TestApplicationSubmitAgain(t *testing.T) {
	offerIn := lyceeOfferInput()
	offerIn.Seats = 3
	offer := newOffer(t, "off-lycee", offerIn)
	pupil := pupil2de(t)
	a := submitted(t, "app-1", offer, pupil, week26, week25)
	before := *a

	// The same application again (a double click) is no change, in any
	// order of weeks and with any motivation.
	school := schoolFor(t, pupil)
	wantNothing(t)(a.Submit("app-1", offer, pupil, school, domain.SubmitInput{Weeks: []string{week25, week26}, Motivation: "Autre."}, now.Add(time.Minute)))
	wantNothing(t)(a.Submit("app-1", offer, pupil, school, domain.SubmitInput{Weeks: []string{week26, week25}, Motivation: "Autre."}, now))
	// It is a no-op even once the offer is withdrawn.
	closed := newOffer(t, "off-lycee", offerIn)
	apply(closed, must(t)(closed.Withdraw(""))...)
	wantNothing(t)(a.Submit("app-1", closed, pupil, school, domain.SubmitInput{Weeks: []string{week25, week26}, Motivation: "x"}, now))

	// Other weeks are refused: one application per pupil per offer.
	for _, weeks := range [][]string{{week25}, {week26, week27}, {week27}} {
		evs, err := a.Submit("app-1", offer, pupil, school, domain.SubmitInput{Weeks: weeks, Motivation: "x"}, now)
		wantRule(t, evs, err, "one_application_per_offer")
	}
	if !reflect.DeepEqual(*a, before) {
		t.Fatal("deciding changed the aggregate")
	}

	// Once the application moved on, submitting it again cannot bring it
	// back to submitted.
	for _, next := range []domain.Event{
		&domain.ApplicationRead{ApplicationID: "app-1"},
		&domain.ApplicationAccepted{ApplicationID: "app-1", AcceptedAt: now},
		&domain.ApplicationRejected{ApplicationID: "app-1", Reason: "complet"},
		&domain.ApplicationWithdrawn{ApplicationID: "app-1"},
		&domain.ApplicationCancelled{ApplicationID: "app-1", Reason: "fermeture"},
		&domain.ApplicationExpired{ApplicationID: "app-1", Rule: "no_employer_answer"},
	} {
		b := before
		b.Apply(next)
		evs, err := b.Submit("app-1", offer, pupil, school, domain.SubmitInput{Weeks: []string{week25, week26}, Motivation: "x"}, now)
		wantRule(t, evs, err, "one_application_per_offer")
	}
}

// inStatus returns an application of pupil-3e to off-1 for week 25,
// submitted at now, that went through the events leading to status (an
// acceptance is at now too); "" means one that does not exist.
func inStatus(t *testing.T, status string) *domain.Application {
	t.Helper()
	if status == "" {
		return &domain.Application{}
	}
	offer := newOffer(t, "off-1", collegeOfferInput())
	a := submitted(t, "app-1", offer, pupil3e(t), week25)
	accepted := &domain.ApplicationAccepted{ApplicationID: "app-1", AcceptedAt: now}
	switch status {
	case domain.StatusSubmitted:
	case domain.StatusRead:
		a.Apply(&domain.ApplicationRead{ApplicationID: "app-1"})
	case domain.StatusAccepted:
		a.Apply(accepted)
	case domain.StatusRejected:
		a.Apply(&domain.ApplicationRejected{ApplicationID: "app-1", Reason: "complet"})
	case domain.StatusWithdrawn:
		a.Apply(&domain.ApplicationWithdrawn{ApplicationID: "app-1"})
	case domain.StatusConfirmed:
		a.Apply(accepted)
		a.Apply(&domain.ApplicationConfirmed{ApplicationID: "app-1", ConventionID: "conv-1"})
	case domain.StatusCancelled:
		a.Apply(accepted)
		a.Apply(&domain.ApplicationCancelled{ApplicationID: "app-1", Reason: "fermeture"})
	case domain.StatusExpired:
		a.Apply(&domain.ApplicationExpired{ApplicationID: "app-1", Rule: "no_employer_answer"})
	default:
		t.Fatalf("unknown status %q", status)
	}
	if a.Status != status {
		t.Fatalf("status = %q, want %q", a.Status, status)
	}
	return a
}

// allStatuses lists every application status, "" (no application) first.
var allStatuses = []string{
	"", domain.StatusSubmitted, domain.StatusRead, domain.StatusAccepted, domain.StatusRejected,
	domain.StatusWithdrawn, domain.StatusConfirmed, domain.StatusCancelled, domain.StatusExpired,
}

// TestApplicationTransitions runs every command of the application state
// machine from every status: an allowed transition decides exactly one
// event of the expected type and leads to the expected status; a retry
// decides nothing; a refused one is a wrong_status rule (or
// internship_started), a validation error or not found, and decides
// nothing.
func TestApplicationTransitions(t *testing.T) {
	const (
		sub = domain.StatusSubmitted
		red = domain.StatusRead
		acc = domain.StatusAccepted
		rej = domain.StatusRejected
		wdr = domain.StatusWithdrawn
		con = domain.StatusConfirmed
		can = domain.StatusCancelled
		exp = domain.StatusExpired
	)
	start, _ := domain.ParseWeek(week25)
	late := now.Add(30 * 24 * time.Hour) // past both deadlines, before the internship
	commands := map[string]func(*domain.Application) ([]domain.Event, error){
		"mark_read":         (*domain.Application).MarkRead,
		"accept":            func(a *domain.Application) ([]domain.Event, error) { return a.Accept(now) },
		"reject":            func(a *domain.Application) ([]domain.Event, error) { return a.Reject("  Plus de place. ") },
		"reject_no_reason":  func(a *domain.Application) ([]domain.Event, error) { return a.Reject(" ") },
		"withdraw":          func(a *domain.Application) ([]domain.Event, error) { return a.Withdraw("autre stage", now) },
		"withdraw_started":  func(a *domain.Application) ([]domain.Event, error) { return a.Withdraw("autre stage", start) },
		"cancel":            func(a *domain.Application) ([]domain.Event, error) { return a.Cancel("Fermeture exceptionnelle") },
		"cancel_no_reason":  func(a *domain.Application) ([]domain.Event, error) { return a.Cancel("") },
		"confirm":           func(a *domain.Application) ([]domain.Event, error) { return a.Confirm("conv-1") },
		"expire_before_due": func(a *domain.Application) ([]domain.Event, error) { return a.Expire(now.Add(time.Hour)), nil },
		"expire_when_due":   func(a *domain.Application) ([]domain.Event, error) { return a.Expire(late), nil },
	}
	type want struct {
		event string // the event type decided, "" for none
		next  string // the status after applying it
		rule  string // a RuleError; "fields" a ValidationError; "not_found"
	}
	ev := func(event, next string) want { return want{event: event, next: next} }
	none := func(status string) want { return want{next: status} }
	refused := func(rule string) want { return want{rule: rule} }
	notFound := refused("not_found")
	invalid := refused("fields")
	wrong := refused("wrong_status")

	table := map[string]map[string]want{
		"mark_read": {
			"": notFound, sub: ev("ApplicationRead", red), red: none(red), acc: none(acc), rej: none(rej),
			wdr: none(wdr), con: none(con), can: none(can), exp: none(exp),
		},
		"accept": {
			"": notFound, sub: ev("ApplicationAccepted", acc), red: ev("ApplicationAccepted", acc), acc: none(acc),
			rej: wrong, wdr: wrong, con: wrong, can: wrong, exp: wrong,
		},
		"reject": {
			"": notFound, sub: ev("ApplicationRejected", rej), red: ev("ApplicationRejected", rej), rej: none(rej),
			acc: wrong, wdr: wrong, con: wrong, can: wrong, exp: wrong,
		},
		"reject_no_reason": {
			"": invalid, sub: invalid, red: invalid, acc: invalid, rej: invalid, wdr: invalid, con: invalid, can: invalid, exp: invalid,
		},
		"withdraw": {
			"": notFound, sub: ev("ApplicationWithdrawn", wdr), red: ev("ApplicationWithdrawn", wdr),
			acc: ev("ApplicationWithdrawn", wdr), con: ev("ApplicationWithdrawn", wdr), wdr: none(wdr),
			rej: wrong, can: wrong, exp: wrong,
		},
		"withdraw_started": {
			"": notFound, sub: refused("internship_started"), red: refused("internship_started"),
			acc: refused("internship_started"), con: refused("internship_started"), wdr: none(wdr),
			rej: wrong, can: wrong, exp: wrong,
		},
		"cancel": {
			"": notFound, acc: ev("ApplicationCancelled", can), con: ev("ApplicationCancelled", can), can: none(can),
			sub: wrong, red: wrong, rej: wrong, wdr: wrong, exp: wrong,
		},
		"cancel_no_reason": {
			"": invalid, sub: invalid, red: invalid, acc: invalid, rej: invalid, wdr: invalid, con: invalid, can: invalid, exp: invalid,
		},
		"confirm": {
			"": notFound, acc: ev("ApplicationConfirmed", con), con: none(con),
			sub: wrong, red: wrong, rej: wrong, wdr: wrong, can: wrong, exp: wrong,
		},
		"expire_before_due": {
			"": none(""), sub: none(sub), red: none(red), acc: none(acc), rej: none(rej), wdr: none(wdr),
			con: none(con), can: none(can), exp: none(exp),
		},
		"expire_when_due": {
			"": none(""), sub: ev("ApplicationExpired", exp), red: ev("ApplicationExpired", exp), acc: ev("ApplicationExpired", exp),
			rej: none(rej), wdr: none(wdr), con: none(con), can: none(can), exp: none(exp),
		},
	}
	if len(table) != len(commands) {
		t.Fatalf("%d commands, %d in the table", len(commands), len(table))
	}
	for _, name := range slices.Sorted(maps.Keys(table)) {
		row := table[name]
		if len(row) != len(allStatuses) {
			t.Fatalf("%s: %d statuses in the table, want %d", name, len(row), len(allStatuses))
		}
		for _, from := range allStatuses {
			w, ok := row[from]
			if !ok {
				t.Fatalf("%s: no outcome for status %q", name, from)
			}
			label := from
			if label == "" {
				label = "missing"
			}
			t.Run(name+"/from_"+label, func(t *testing.T) {
				a := inStatus(t, from)
				before := *a
				evs, err := commands[name](a)
				if !reflect.DeepEqual(*a, before) {
					t.Fatal("deciding changed the aggregate")
				}
				switch {
				case w.rule == "not_found":
					wantIs(t, evs, err, domain.ErrNotFound)
					return
				case w.rule == "fields":
					if len(evs) != 0 {
						t.Fatalf("events %v", types(evs))
					}
					wantFields(t, err, "reason")
					return
				case w.rule != "":
					wantRule(t, evs, err, w.rule)
					if w.rule == "wrong_status" && !strings.Contains(err.Error(), from) {
						t.Errorf("error %q does not name the status %s", err, from)
					}
					if a.Status != from {
						t.Fatalf("status = %q after a refusal", a.Status)
					}
					return
				case w.event == "":
					wantNothing(t)(evs, err)
				default:
					if err != nil || len(evs) != 1 || evs[0].EventType() != w.event {
						t.Fatalf("got %v, %v; want one %s", types(evs), err, w.event)
					}
					apply(a, evs...)
				}
				if a.Status != w.next {
					t.Fatalf("status = %q, want %q", a.Status, w.next)
				}
				canErr := a.CanAccept()
				switch a.Status {
				case sub, red, acc:
					if canErr != nil {
						t.Fatalf("CanAccept() = %v when %q", canErr, a.Status)
					}
				case "":
					wantIs(t, nil, canErr, domain.ErrNotFound)
				default:
					wantRule(t, nil, canErr, "wrong_status")
				}
				if pending := a.Status == sub || a.Status == red || a.Status == acc; a.Pending() != pending {
					t.Errorf("Pending() = %v when %q", a.Pending(), a.Status)
				}
				if holds := a.Status == acc || a.Status == con; a.HoldsSeat() != holds {
					t.Errorf("HoldsSeat() = %v when %q", a.HoldsSeat(), a.Status)
				}
			})
		}
	}
}

func TestApplicationEvents(t *testing.T) {
	local := now.In(time.FixedZone("CEST", 2*3600))
	accepted := only[*domain.ApplicationAccepted](t, must(t)(inStatus(t, domain.StatusSubmitted).Accept(local)))
	if *accepted != (domain.ApplicationAccepted{ApplicationID: "app-1", AcceptedAt: now}) || accepted.AcceptedAt.Location() != time.UTC {
		t.Errorf("accepted = %+v", *accepted)
	}
	read := only[*domain.ApplicationRead](t, must(t)(inStatus(t, domain.StatusSubmitted).MarkRead()))
	if *read != (domain.ApplicationRead{ApplicationID: "app-1"}) {
		t.Errorf("read = %+v", *read)
	}
	rejected := only[*domain.ApplicationRejected](t, must(t)(inStatus(t, domain.StatusRead).Reject(" Plus de place.\n")))
	if *rejected != (domain.ApplicationRejected{ApplicationID: "app-1", Reason: "Plus de place."}) {
		t.Errorf("rejected = %+v", *rejected)
	}
	cancelled := only[*domain.ApplicationCancelled](t, must(t)(inStatus(t, domain.StatusConfirmed).Cancel(" Fermeture ")))
	if *cancelled != (domain.ApplicationCancelled{ApplicationID: "app-1", Reason: "Fermeture"}) {
		t.Errorf("cancelled = %+v", *cancelled)
	}
	confirmed := only[*domain.ApplicationConfirmed](t, must(t)(inStatus(t, domain.StatusAccepted).Confirm("conv-9")))
	if *confirmed != (domain.ApplicationConfirmed{ApplicationID: "app-1", ConventionID: "conv-9"}) {
		t.Errorf("confirmed = %+v", *confirmed)
	}
	a := inStatus(t, domain.StatusAccepted)
	a.Apply(confirmed)
	if a.ConventionID != "conv-9" || a.Status != domain.StatusConfirmed {
		t.Errorf("after Apply(confirmed): %q %q", a.Status, a.ConventionID)
	}
	b := inStatus(t, domain.StatusRead)
	b.Apply(accepted)
	if b.Status != domain.StatusAccepted || !b.AcceptedAt.Equal(now) {
		t.Errorf("read then accepted: %q at %v", b.Status, b.AcceptedAt)
	}

	// Withdrawing releases a seat only when one may be held.
	for _, tt := range []struct {
		from     string
		released bool
	}{
		{domain.StatusSubmitted, false},
		{domain.StatusRead, false},
		{domain.StatusAccepted, true},
		{domain.StatusConfirmed, true},
	} {
		ev := only[*domain.ApplicationWithdrawn](t, must(t)(inStatus(t, tt.from).Withdraw("autre stage", now)))
		if *ev != (domain.ApplicationWithdrawn{ApplicationID: "app-1", SeatReleased: tt.released, Reason: "autre stage", PupilID: "pupil-3e"}) {
			t.Errorf("withdraw when %s = %+v, want SeatReleased %v", tt.from, *ev, tt.released)
		}
	}
}

func TestApplicationReasons(t *testing.T) {
	for _, reason := range []string{"", "  ", strings.Repeat("r", 1001)} {
		evs, err := inStatus(t, domain.StatusSubmitted).Reject(reason)
		if len(evs) != 0 {
			t.Fatalf("reject: events %v", types(evs))
		}
		wantFields(t, err, "reason")
		evs, err = inStatus(t, domain.StatusAccepted).Cancel(reason)
		if len(evs) != 0 {
			t.Fatalf("cancel: events %v", types(evs))
		}
		wantFields(t, err, "reason")
	}
}

// A pupil may withdraw until the internship's first week starts, and not
// from its first Monday on (for a 2de, not during the second week either).
func TestApplicationWithdrawUntilStart(t *testing.T) {
	offer := newOffer(t, "off-2de", lyceeOfferInput())
	start, _ := domain.ParseWeek(week25)
	tests := []struct {
		name string
		at   time.Time
		ok   bool
	}{
		{"months before", now, true},
		{"the Sunday before, last second", start.Add(-time.Second), true},
		{"the first Monday at midnight", start, false},
		{"during the first week", start.Add(3 * 24 * time.Hour), false},
		{"during the second week", start.Add(8 * 24 * time.Hour), false},
		{"after the internship", start.Add(60 * 24 * time.Hour), false},
		{"a second before, in Paris time", start.Add(-time.Second).In(time.FixedZone("CEST", 2*3600)), true},
	}
	for _, status := range []string{domain.StatusSubmitted, domain.StatusRead, domain.StatusAccepted, domain.StatusConfirmed} {
		for _, tt := range tests {
			t.Run(status+"/"+tt.name, func(t *testing.T) {
				a := submitted(t, "app-1", offer, pupil2de(t), week25, week26)
				switch status {
				case domain.StatusRead:
					a.Apply(&domain.ApplicationRead{ApplicationID: "app-1"})
				case domain.StatusAccepted:
					a.Apply(&domain.ApplicationAccepted{ApplicationID: "app-1", AcceptedAt: now})
				case domain.StatusConfirmed:
					a.Apply(&domain.ApplicationAccepted{ApplicationID: "app-1", AcceptedAt: now})
					a.Apply(&domain.ApplicationConfirmed{ApplicationID: "app-1", ConventionID: "c"})
				}
				evs, err := a.Withdraw("", tt.at)
				if !tt.ok {
					wantRule(t, evs, err, "internship_started")
					return
				}
				ev := only[*domain.ApplicationWithdrawn](t, must(t)(evs, err))
				if ev.SeatReleased != a.HoldsSeat() {
					t.Fatalf("SeatReleased = %v when %s", ev.SeatReleased, status)
				}
			})
		}
	}
}

// Expiry: an application the employer has not answered expires 15 days
// after its submission (reading it is no answer); an accepted one the
// pupil has not confirmed expires 7 days after the acceptance, whatever
// the submission date. Nothing else ever expires.
func TestApplicationExpire(t *testing.T) {
	const day = 24 * time.Hour
	accept := func(at time.Duration) domain.Event {
		return &domain.ApplicationAccepted{ApplicationID: "app-1", AcceptedAt: now.Add(at)}
	}
	tests := []struct {
		name     string
		events   []domain.Event
		deadline time.Duration // after now; 0: none
		at       time.Duration // when Expire runs, after now
		rule     string        // "" when it decides nothing
	}{
		{"submitted, just submitted", nil, 15 * day, 0, ""},
		{"submitted, a nanosecond before 15 days", nil, 15 * day, 15*day - 1, ""},
		{"submitted, at 15 days", nil, 15 * day, 15 * day, "no_employer_answer"},
		{"submitted, at 40 days", nil, 15 * day, 40 * day, "no_employer_answer"},
		{"read, before 15 days", []domain.Event{&domain.ApplicationRead{ApplicationID: "app-1"}}, 15 * day, 14 * day, ""},
		{"read, at 15 days", []domain.Event{&domain.ApplicationRead{ApplicationID: "app-1"}}, 15 * day, 15 * day, "no_employer_answer"},
		{"accepted at once, before 7 days", []domain.Event{accept(0)}, 7 * day, 7*day - time.Second, ""},
		{"accepted at once, at 7 days", []domain.Event{accept(0)}, 7 * day, 7 * day, "not_confirmed_in_time"},
		{"accepted late, past 15 days from submission", []domain.Event{accept(14 * day)}, 21 * day, 16 * day, ""},
		{"accepted late, at 7 days from acceptance", []domain.Event{accept(14 * day)}, 21 * day, 21 * day, "not_confirmed_in_time"},
		{"read then accepted, at 7 days", []domain.Event{&domain.ApplicationRead{ApplicationID: "app-1"}, accept(2 * day)}, 9 * day, 9 * day, "not_confirmed_in_time"},
		{"confirmed, long after", []domain.Event{accept(0), &domain.ApplicationConfirmed{ApplicationID: "app-1", ConventionID: "c"}}, 0, 90 * day, ""},
		{"rejected, long after", []domain.Event{&domain.ApplicationRejected{ApplicationID: "app-1", Reason: "x"}}, 0, 90 * day, ""},
		{"withdrawn, long after", []domain.Event{&domain.ApplicationWithdrawn{ApplicationID: "app-1"}}, 0, 90 * day, ""},
		{"cancelled, long after", []domain.Event{accept(0), &domain.ApplicationCancelled{ApplicationID: "app-1", Reason: "x"}}, 0, 90 * day, ""},
		{"expired, long after", []domain.Event{&domain.ApplicationExpired{ApplicationID: "app-1", Rule: "no_employer_answer"}}, 0, 90 * day, ""},
	}
	offer := newOffer(t, "off-1", collegeOfferInput())
	pupil := pupil3e(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := submitted(t, "app-1", offer, pupil, week25)
			apply(a, tt.events...)
			d, ok := a.Deadline()
			if ok != (tt.deadline != 0) || (ok && !d.Equal(now.Add(tt.deadline))) {
				t.Fatalf("Deadline() = %v, %v; want now+%v", d, ok, tt.deadline)
			}
			status := a.Status
			evs := a.Expire(now.Add(tt.at).In(time.FixedZone("CEST", 2*3600)))
			if tt.rule == "" {
				if len(evs) != 0 {
					t.Fatalf("events %v", types(evs))
				}
				return
			}
			ev := only[*domain.ApplicationExpired](t, evs)
			want := domain.ApplicationExpired{ApplicationID: "app-1", SeatReleased: status == domain.StatusAccepted, Rule: tt.rule}
			if *ev != want {
				t.Fatalf("event = %+v, want %+v", *ev, want)
			}
			a.Apply(ev)
			if a.Status != domain.StatusExpired || a.Pending() {
				t.Fatalf("after Apply: %q", a.Status)
			}
			if _, ok := a.Deadline(); ok {
				t.Fatal("an expired application still has a deadline")
			}
			if evs := a.Expire(now.Add(tt.at + 365*day)); len(evs) != 0 {
				t.Fatalf("expired twice: %v", types(evs))
			}
		})
	}
}
