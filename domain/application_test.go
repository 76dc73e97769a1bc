package domain_test

import (
	"reflect"
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
	ev := only[*domain.ApplicationSubmitted](t, must(t)(a.Submit("app-1", offer, pupil, in, local)))
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
			evs, err := a.Submit("app", tt.offer, tt.pupil, domain.SubmitInput{Weeks: tt.weeks, Motivation: "Curieux."}, now)
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
			evs, err := a.Submit("app", tt.offer, tt.pupil, tt.in, now)
			if len(evs) != 0 {
				t.Fatalf("events %v", types(evs))
			}
			wantFields(t, err, tt.fields...)
		})
	}

	var a domain.Application
	evs, err := a.Submit("app", nil, p3e, ok, now)
	wantIs(t, evs, err, domain.ErrNotFound)
	evs, err = a.Submit("app", &domain.Offer{}, p3e, ok, now)
	wantIs(t, evs, err, domain.ErrNotFound)
	evs, err = a.Submit("app", withdrawn, p3e, ok, now)
	wantIs(t, evs, err, domain.ErrConflict)
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
	wantNothing(t)(a.Submit("app-1", offer, pupil, domain.SubmitInput{Weeks: []string{week25, week26}, Motivation: "Autre."}, now.Add(time.Minute)))
	wantNothing(t)(a.Submit("app-1", offer, pupil, domain.SubmitInput{Weeks: []string{week26, week25}, Motivation: "Autre."}, now))
	// It is a no-op even once the offer is withdrawn.
	closed := newOffer(t, "off-lycee", offerIn)
	apply(closed, must(t)(closed.Withdraw(""))...)
	wantNothing(t)(a.Submit("app-1", closed, pupil, domain.SubmitInput{Weeks: []string{week25, week26}, Motivation: "x"}, now))

	// Other weeks are a conflict.
	for _, weeks := range [][]string{{week25}, {week26, week27}, {week27}} {
		evs, err := a.Submit("app-1", offer, pupil, domain.SubmitInput{Weeks: weeks, Motivation: "x"}, now)
		wantIs(t, evs, err, domain.ErrConflict)
	}
	if !reflect.DeepEqual(*a, before) {
		t.Fatal("deciding changed the aggregate")
	}

	// Once the application moved on, submitting it again cannot bring it
	// back to submitted.
	for _, next := range []domain.Event{
		&domain.ApplicationAccepted{ApplicationID: "app-1"},
		&domain.ApplicationRejected{ApplicationID: "app-1", Reason: "complet"},
		&domain.ApplicationWithdrawn{ApplicationID: "app-1"},
	} {
		b := before
		b.Apply(next)
		evs, err := b.Submit("app-1", offer, pupil, domain.SubmitInput{Weeks: []string{week25, week26}, Motivation: "x"}, now)
		wantIs(t, evs, err, domain.ErrConflict)
	}
}

// inStatus returns an application that went through the given events
// after its submission; "" means one that does not exist.
func inStatus(t *testing.T, status string) *domain.Application {
	t.Helper()
	if status == "" {
		return &domain.Application{}
	}
	offer := newOffer(t, "off-1", collegeOfferInput())
	a := submitted(t, "app-1", offer, pupil3e(t), week25)
	switch status {
	case domain.StatusSubmitted:
	case domain.StatusAccepted:
		a.Apply(&domain.ApplicationAccepted{ApplicationID: "app-1"})
	case domain.StatusRejected:
		a.Apply(&domain.ApplicationRejected{ApplicationID: "app-1", Reason: "complet"})
	case domain.StatusWithdrawn:
		a.Apply(&domain.ApplicationWithdrawn{ApplicationID: "app-1"})
	case domain.StatusConfirmed:
		a.Apply(&domain.ApplicationAccepted{ApplicationID: "app-1"})
		a.Apply(&domain.ApplicationConfirmed{ApplicationID: "app-1", ConventionID: "conv-1"})
	default:
		t.Fatalf("unknown status %q", status)
	}
	if a.Status != status {
		t.Fatalf("status = %q, want %q", a.Status, status)
	}
	return a
}

func TestApplicationTransitions(t *testing.T) {
	type outcome int
	const (
		event    outcome = iota // one event, then the status is next
		nothing                 // no change
		conflict                // ErrConflict
		notFound                // ErrNotFound
	)
	actions := map[string]func(*domain.Application) ([]domain.Event, error){
		"accept":   (*domain.Application).Accept,
		"reject":   func(a *domain.Application) ([]domain.Event, error) { return a.Reject("  Plus de place. ") },
		"withdraw": (*domain.Application).Withdraw,
		"confirm":  func(a *domain.Application) ([]domain.Event, error) { return a.Confirm("conv-1") },
	}
	const (
		sub = domain.StatusSubmitted
		acc = domain.StatusAccepted
		rej = domain.StatusRejected
		wdr = domain.StatusWithdrawn
		con = domain.StatusConfirmed
	)
	tests := []struct {
		from, action string
		want         outcome
		next         string
	}{
		{sub, "accept", event, acc},
		{acc, "accept", nothing, acc},
		{rej, "accept", conflict, rej},
		{wdr, "accept", conflict, wdr},
		{con, "accept", conflict, con},
		{"", "accept", notFound, ""},

		{sub, "reject", event, rej},
		{rej, "reject", nothing, rej},
		{acc, "reject", conflict, acc},
		{wdr, "reject", conflict, wdr},
		{con, "reject", conflict, con},
		{"", "reject", notFound, ""},

		{sub, "withdraw", event, wdr},
		{acc, "withdraw", event, wdr},
		{con, "withdraw", event, wdr},
		{wdr, "withdraw", nothing, wdr},
		{rej, "withdraw", conflict, rej},
		{"", "withdraw", notFound, ""},

		{acc, "confirm", event, con},
		{con, "confirm", nothing, con},
		{sub, "confirm", conflict, sub},
		{rej, "confirm", conflict, rej},
		{wdr, "confirm", conflict, wdr},
		{"", "confirm", notFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.action+" when "+tt.from, func(t *testing.T) {
			a := inStatus(t, tt.from)
			before := *a
			evs, err := actions[tt.action](a)
			if !reflect.DeepEqual(*a, before) {
				t.Fatal("deciding changed the aggregate")
			}
			switch tt.want {
			case event:
				if err != nil || len(evs) != 1 {
					t.Fatalf("got %v, %v; want one event", types(evs), err)
				}
				apply(a, evs...)
			case nothing:
				wantNothing(t)(evs, err)
			case conflict:
				wantIs(t, evs, err, domain.ErrConflict)
				if !strings.Contains(err.Error(), tt.from) {
					t.Errorf("error %q does not name the status %s", err, tt.from)
				}
			case notFound:
				wantIs(t, evs, err, domain.ErrNotFound)
			}
			if a.Status != tt.next {
				t.Fatalf("status = %q, want %q", a.Status, tt.next)
			}
			canErr := a.CanAccept()
			if ok := a.Status == sub || a.Status == acc; ok != (canErr == nil) {
				t.Fatalf("CanAccept() = %v when %q", canErr, a.Status)
			}
		})
	}
}

func TestApplicationEvents(t *testing.T) {
	accepted := only[*domain.ApplicationAccepted](t, must(t)(inStatus(t, domain.StatusSubmitted).Accept()))
	if *accepted != (domain.ApplicationAccepted{ApplicationID: "app-1"}) {
		t.Errorf("accepted = %+v", *accepted)
	}
	rejected := only[*domain.ApplicationRejected](t, must(t)(inStatus(t, domain.StatusSubmitted).Reject(" Plus de place.\n")))
	if *rejected != (domain.ApplicationRejected{ApplicationID: "app-1", Reason: "Plus de place."}) {
		t.Errorf("rejected = %+v", *rejected)
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

	// Withdrawing releases a seat only when one may be held.
	for _, tt := range []struct {
		from     string
		released bool
	}{
		{domain.StatusSubmitted, false},
		{domain.StatusAccepted, true},
		{domain.StatusConfirmed, true},
	} {
		ev := only[*domain.ApplicationWithdrawn](t, must(t)(inStatus(t, tt.from).Withdraw()))
		if *ev != (domain.ApplicationWithdrawn{ApplicationID: "app-1", SeatReleased: tt.released}) {
			t.Errorf("withdraw when %s = %+v, want SeatReleased %v", tt.from, *ev, tt.released)
		}
	}
}

func TestApplicationReject(t *testing.T) {
	for _, reason := range []string{"", "  ", strings.Repeat("r", 1001)} {
		a := inStatus(t, domain.StatusSubmitted)
		evs, err := a.Reject(reason)
		if len(evs) != 0 {
			t.Fatalf("events %v", types(evs))
		}
		wantFields(t, err, "reason")
	}
}
