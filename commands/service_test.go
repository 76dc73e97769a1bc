package commands_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"passerelle/commands"
	"passerelle/domain"
	"passerelle/domain/refdata"
	"passerelle/eventstore"
	"passerelle/eventstore/embedded"
)

type fixture struct {
	t     *testing.T
	store eventstore.Store
	svc   *commands.Service
	n     int
	mu    sync.Mutex
}

func newFixture(t *testing.T) *fixture {
	s, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &fixture{t: t, store: s, svc: commands.NewService(s, refdata.MustLoad())}
}

func (f *fixture) meta() commands.Meta {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	return commands.Meta{CommandID: fmt.Sprintf("cmd-%d", f.n), Actor: eventstore.Actor{Role: "backoffice"}, Now: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
}

func (f *fixture) ok(r commands.Result, err error) commands.Result {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

// offerWithPupils posts an offer of seats seats in one week and registers
// pupils applications to it; it returns the offer and application ids.
func (f *fixture) offerWithPupils(seats, pupils int) (string, []string) {
	ctx := context.Background()
	emp := f.ok(f.svc.RegisterEmployer(ctx, f.meta(), domain.RegisterEmployerInput{
		Name: "Garage Dupont", SIRET: "73282932000074", Kind: "company", CommuneCode: "94028", Address: "3 rue",
	}))
	f.ok(f.svc.RegisterSchool(ctx, f.meta(), domain.RegisterSchoolInput{
		UAI: "0941234A", Name: "Collège", Kind: "college", CommuneCode: "94028", EducationPriority: "none",
	}))
	offer := f.ok(f.svc.PostOffer(ctx, f.meta(), commands.PostOfferInput{EmployerID: emp.ID, PostOfferInput: domain.PostOfferInput{
		Title: "Mécanique", Description: "Atelier", Sector: "s1", Grades: []string{"3e"}, Weeks: []string{"2026-W50"},
		Seats: seats, CommuneCode: "94028", Address: "3 rue", Lat: 48.79, Lon: 2.45,
	}}))
	var apps []string
	for i := 0; i < pupils; i++ {
		p := f.ok(f.svc.RegisterPupil(ctx, f.meta(), domain.RegisterPupilInput{
			SchoolUAI: "0941234A", Grade: "3e", ClassName: "3eA", FirstName: "Élève", LastName: fmt.Sprint(i), BirthDate: "2012-05-01",
			Guardians: []domain.Guardian{{Name: "Parent", Email: "p@example.fr", Phone: "0600000000"}},
		}))
		a := f.ok(f.svc.Apply(ctx, f.meta(), commands.ApplyInput{OfferID: offer.ID, PupilID: p.ID,
			SubmitInput: domain.SubmitInput{Weeks: []string{"2026-W50"}, Motivation: "motivé"}}))
		apps = append(apps, a.ID)
	}
	return offer.ID, apps
}

func (f *fixture) offer(id string) *domain.Offer {
	o := &domain.Offer{}
	f.load(domain.OfferStream(id), o)
	return o
}

func (f *fixture) application(id string) *domain.Application {
	a := &domain.Application{}
	f.load(domain.ApplicationStream(id), a)
	return a
}

// load applies a stream's events to agg.
func (f *fixture) load(stream string, agg interface{ Apply(domain.Event) }) {
	f.t.Helper()
	evs, err := f.store.ReadStream(context.Background(), stream, eventstore.Forwards, 0, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, e := range evs {
		d, err := domain.Decode(e.Type, e.Data)
		if err != nil {
			f.t.Fatal(err)
		}
		agg.Apply(d)
	}
}

// Never more held seats than seats, whatever the interleaving.
func TestConcurrentAcceptsNeverOverbook(t *testing.T) {
	f := newFixture(t)
	const seats, pupils = 3, 12
	offerID, apps := f.offerWithPupils(seats, pupils)
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted, conflicts := 0, 0
	for _, id := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.svc.Accept(context.Background(), f.meta(), id)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				accepted++
			case errors.Is(err, domain.ErrConflict):
				conflicts++
			default:
				t.Errorf("accept: %v", err)
			}
		}()
	}
	wg.Wait()
	if accepted != seats || conflicts != pupils-seats {
		t.Fatalf("accepted %d, conflicts %d; want %d and %d", accepted, conflicts, seats, pupils-seats)
	}
	if free := f.offer(offerID).Free("2026-W50"); free != 0 {
		t.Fatalf("free seats %d, want 0", free)
	}
}

// A double click on accept holds one seat and answers both clicks.
func TestDoubleAcceptHoldsOneSeat(t *testing.T) {
	f := newFixture(t)
	offerID, apps := f.offerWithPupils(2, 1)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.svc.Accept(context.Background(), f.meta(), apps[0])
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("double accept: %v", err)
		}
	}
	if free := f.offer(offerID).Free("2026-W50"); free != 1 {
		t.Fatalf("free seats %d after a double accept of one application, want 1", free)
	}
}

// A retried command (same command id) appends nothing new.
func TestRetriedCommandAppendsNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	m := f.meta()
	in := domain.RegisterEmployerInput{Name: "Asso", SIRET: "73282932000074", Kind: "association", CommuneCode: "13055", Address: "Vieux-Port"}
	first := f.ok(f.svc.RegisterEmployer(ctx, m, in))
	head, _ := f.store.Head(ctx)
	again := f.ok(f.svc.RegisterEmployer(ctx, m, in))
	head2, _ := f.store.Head(ctx)
	if !reflect.DeepEqual(first, again) || head != head2 {
		t.Fatalf("retry: %+v vs %+v, head %d -> %d", first, again, head, head2)
	}
}

// Accept and withdraw racing on the same application end consistent: the
// seats the offer holds are exactly those of the applications that hold
// one, each aggregate read back from the log. The withdrawal always wins in
// the end (it is allowed before and after an acceptance), so nothing stays
// held.
func TestAcceptWithdrawRace(t *testing.T) {
	f := newFixture(t)
	const seats, week = 40, "2026-W50"
	offerID, apps := f.offerWithPupils(seats, seats)
	ctx := context.Background()
	var wg sync.WaitGroup
	for _, id := range apps {
		wg.Add(2)
		go func() {
			defer wg.Done()
			// refused once withdrawn, or given up on the contended offer
			_, err := f.svc.Accept(ctx, f.meta(), id)
			if err != nil && !errors.Is(err, domain.ErrConflict) && !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
				t.Errorf("accept %s: %v", id, err)
			}
		}()
		go func() {
			defer wg.Done()
			if _, err := f.svc.Withdraw(ctx, f.meta(), id, ""); err != nil {
				t.Errorf("withdraw %s: %v", id, err)
			}
		}()
	}
	wg.Wait()
	o := f.offer(offerID)
	holding := 0
	for _, id := range apps {
		a := f.application(id)
		if a.Status != domain.StatusWithdrawn {
			t.Errorf("application %s is %s after its withdrawal", id, a.Status)
		}
		if o.Holds(id) != a.HoldsSeat() {
			t.Errorf("application %s (%s): the offer holds its seat: %v", id, a.Status, o.Holds(id))
		}
		if a.HoldsSeat() {
			holding++
		}
	}
	if held := seats - o.Free(week); held != holding {
		t.Fatalf("the offer holds %d seats, the applications %d", held, holding)
	}
}

// A pupil applies once per offer: a second application is the same one.
func TestApplyTwiceIsOneApplication(t *testing.T) {
	f := newFixture(t)
	offerID, apps := f.offerWithPupils(1, 1)
	ctx := context.Background()
	evs, _ := f.store.ReadStream(ctx, domain.ApplicationStream(apps[0]), eventstore.Forwards, 0, 0)
	var sub domain.ApplicationSubmitted
	d, _ := domain.Decode(evs[0].Type, evs[0].Data)
	sub = *d.(*domain.ApplicationSubmitted)
	again, err := f.svc.Apply(ctx, f.meta(), commands.ApplyInput{OfferID: offerID, PupilID: sub.PupilID,
		SubmitInput: domain.SubmitInput{Weeks: []string{"2026-W50"}, Motivation: "encore"}})
	if err != nil || again.ID != apps[0] {
		t.Fatalf("second apply: %+v, %v", again, err)
	}
	evs2, _ := f.store.ReadStream(ctx, domain.ApplicationStream(apps[0]), eventstore.Forwards, 0, 0)
	if len(evs2) != 1 {
		t.Fatalf("%d events in the application stream, want 1", len(evs2))
	}
}

// 50 goroutines race to accept on an offer with one seat left: exactly one
// wins.
func TestLastSeatRace(t *testing.T) {
	f := newFixture(t)
	_, apps := f.offerWithPupils(2, 51)
	f.ok(f.svc.Accept(context.Background(), f.meta(), apps[0]))
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for _, id := range apps[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.svc.Accept(context.Background(), f.meta(), id)
			var rule *domain.RuleError
			switch {
			case err == nil:
				mu.Lock()
				wins++
				mu.Unlock()
			case errors.As(err, &rule) && rule.Rule == "no_seat_left":
			default:
				t.Errorf("accept: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d acceptances won the last seat, want 1", wins)
	}
}

// A pupil confirming two overlapping applications at the same instant:
// exactly one wins, and the other application ends withdrawn.
func TestOverlappingConfirmationsRace(t *testing.T) {
	for round := 0; round < 10; round++ {
		f := newFixture(t)
		ctx := context.Background()
		_, apps := f.offerWithPupils(1, 1)
		pupilID := f.pupilOf(apps[0])
		emp := f.ok(f.svc.RegisterEmployer(ctx, f.meta(), domain.RegisterEmployerInput{
			Name: "Mairie", SIRET: "44201123456701", Kind: "public", CommuneCode: "94028", Address: "place",
		}))
		offerB := f.ok(f.svc.PostOffer(ctx, f.meta(), commands.PostOfferInput{EmployerID: emp.ID, PostOfferInput: domain.PostOfferInput{
			Title: "Accueil", Description: "Services", Sector: "s2", Grades: []string{"3e"}, Weeks: []string{"2026-W50"},
			Seats: 1, CommuneCode: "94028", Address: "place", Lat: 48.79, Lon: 2.45,
		}}))
		appB := f.ok(f.svc.Apply(ctx, f.meta(), commands.ApplyInput{OfferID: offerB.ID, PupilID: pupilID,
			SubmitInput: domain.SubmitInput{Weeks: []string{"2026-W50"}, Motivation: "aussi"}}))
		f.ok(f.svc.Accept(ctx, f.meta(), apps[0]))
		f.ok(f.svc.Accept(ctx, f.meta(), appB.ID))
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, id := range []string{apps[0], appB.ID} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = f.svc.Confirm(ctx, f.meta(), id)
			}()
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			var rule *domain.RuleError
			switch {
			case err == nil:
				won++
			case errors.As(err, &rule) && (rule.Rule == "overlapping_placement" || rule.Rule == "wrong_status"):
			default:
				t.Fatalf("confirm: %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d confirmations won, want 1 (%v)", round, won, errs)
		}
		statuses := map[string]int{}
		for _, id := range []string{apps[0], appB.ID} {
			statuses[f.application(id).Status]++
		}
		if statuses[domain.StatusConfirmed] != 1 || statuses[domain.StatusWithdrawn] != 1 {
			t.Fatalf("round %d: statuses %v", round, statuses)
		}
	}
}

func (f *fixture) pupilOf(applicationID string) string {
	return f.application(applicationID).Submitted.PupilID
}

// One employer per SIRET, under concurrency: registrations racing with the
// same body all get the one id and position; racing with different bodies,
// exactly one wins and the others are refused naming its id. The stream
// holds one registration either way.
func TestRegisterEmployerOncePerSIRETConcurrently(t *testing.T) {
	const racers = 12
	for _, same := range []bool{true, false} {
		t.Run(fmt.Sprintf("same body %v", same), func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			results := make([]commands.Result, racers)
			errs := make([]error, racers)
			var wg sync.WaitGroup
			for i := range racers {
				in := domain.RegisterEmployerInput{Name: "Garage Dupont", SIRET: "73282932000074", Kind: "company", CommuneCode: "94028", Address: "3 rue"}
				if !same {
					in.Name = fmt.Sprintf("Garage %d", i)
				}
				m := f.meta()
				wg.Go(func() { results[i], errs[i] = f.svc.RegisterEmployer(ctx, m, in) })
			}
			wg.Wait()
			var winner commands.Result
			wins := 0
			for i := range racers {
				if errs[i] == nil {
					winner = results[i]
					wins++
				}
			}
			switch {
			case same && wins != racers:
				t.Fatalf("%d of %d identical registrations succeeded: %v", wins, racers, errs)
			case !same && wins != 1:
				t.Fatalf("%d of %d different registrations of one SIRET succeeded, want 1: %v", wins, racers, errs)
			}
			for i := range racers {
				var rule *domain.RuleError
				switch {
				case errs[i] == nil && !reflect.DeepEqual(results[i], winner):
					t.Errorf("racer %d got %+v, another %+v", i, results[i], winner)
				case errs[i] != nil && (!errors.As(errs[i], &rule) || rule.Rule != "siret_registered" || rule.Fields["siret"] != "already registered as employer "+winner.ID):
					t.Errorf("racer %d: %v, want a refusal naming %s", i, errs[i], winner.ID)
				}
			}
			evs, err := f.store.ReadStream(ctx, domain.EmployerStream(winner.ID), eventstore.Forwards, 0, 0)
			if err != nil || len(evs) != 1 {
				t.Fatalf("the employer's stream holds %d events (%v), want 1", len(evs), err)
			}
			// a retry later, under another command id, is answered alike
			again, err := f.svc.RegisterEmployer(ctx, f.meta(), domain.RegisterEmployerInput{Name: "Garage Dupont", SIRET: "73282932000074", Kind: "company", CommuneCode: "94028", Address: "3 rue"})
			if same && (err != nil || !reflect.DeepEqual(again, winner)) {
				t.Errorf("a retry: %+v %v, want %+v", again, err, winner)
			}
		})
	}
}
