package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"passerelle/commands"
	"passerelle/domain"
	"passerelle/domain/refdata"
	"passerelle/eventstore"
	"passerelle/eventstore/embedded"
	"passerelle/eventstore/personal"
	"passerelle/reconcile"
)

// crashing is a store that dies after a number of appends: every append
// after them fails without writing, as if the process had been killed
// between two steps of a command.
type crashing struct {
	eventstore.Store
	left atomic.Int64
}

var errCrash = errors.New("crashed")

func (c *crashing) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, evs ...eventstore.EventData) (eventstore.AppendResult, error) {
	if c.left.Add(-1) < 0 {
		return eventstore.AppendResult{}, errCrash
	}
	return c.Store.Append(ctx, stream, expected, evs...)
}

var now = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// world is a log with a school, an employer, an offer of two seats in one
// week and pupils, and a service over it.
type world struct {
	t      *testing.T
	store  eventstore.Store
	keys   *personal.DirKeys
	n      int
	offer  string
	pupils []string
	places domain.Places
}

func newWorld(t *testing.T, pupils int) *world {
	t.Helper()
	dir := t.TempDir()
	s, err := embedded.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	keys, err := personal.OpenDir(dir + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, store: s, keys: keys, places: refdata.MustLoad()}
	ctx, svc := context.Background(), w.service(s)
	emp := w.ok(svc.RegisterEmployer(ctx, w.meta(), domain.RegisterEmployerInput{
		Name: "Garage Dupont", SIRET: "73282932000074", Kind: "company", CommuneCode: "94028", Address: "3 rue",
	}))
	w.ok(svc.RegisterSchool(ctx, w.meta(), domain.RegisterSchoolInput{
		UAI: "0941234A", Name: "Collège", Kind: "college", CommuneCode: "94028", EducationPriority: "none",
	}))
	w.offer = w.ok(svc.PostOffer(ctx, w.meta(), commands.PostOfferInput{EmployerID: emp.ID, PostOfferInput: domain.PostOfferInput{
		Title: "Mécanique", Description: "Atelier", Sector: "s1", Grades: []string{"3e"}, Weeks: []string{"2026-W50"},
		Seats: 2, CommuneCode: "94028", Address: "3 rue", Lat: 48.79, Lon: 2.45,
	}})).ID
	for i := range pupils {
		p := w.ok(svc.RegisterPupil(ctx, w.meta(), domain.RegisterPupilInput{
			SchoolUAI: "0941234A", Grade: "3e", ClassName: "3eA", FirstName: "Élève", LastName: fmt.Sprint(i), BirthDate: "2012-05-01",
			Guardians: []domain.Guardian{{Name: "Parent", Email: "p@example.fr", Phone: "0600000000"}},
		}))
		w.pupils = append(w.pupils, p.ID)
	}
	return w
}

// service is a fresh command layer over s: a restarted process has no
// cache.
func (w *world) service(s eventstore.Store) *commands.Service {
	return commands.NewService(s, w.places).WithPersonalData(personal.NewCipher(w.keys))
}

func (w *world) meta() commands.Meta {
	w.n++
	return commands.Meta{CommandID: fmt.Sprintf("cmd-%d", w.n), Actor: eventstore.Actor{Role: "backoffice"}, Now: now}
}

func (w *world) ok(r commands.Result, err error) commands.Result {
	w.t.Helper()
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

func applyInput(w *world, pupil int) commands.ApplyInput {
	return commands.ApplyInput{OfferID: w.offer, PupilID: w.pupils[pupil],
		SubmitInput: domain.SubmitInput{Weeks: []string{"2026-W50"}, Motivation: "motivé"}}
}

func (w *world) apply(pupil int, week string) string {
	w.t.Helper()
	return w.ok(w.service(w.store).Apply(context.Background(), w.meta(), commands.ApplyInput{OfferID: w.offer, PupilID: w.pupils[pupil],
		SubmitInput: domain.SubmitInput{Weeks: []string{week}, Motivation: "motivé"}})).ID
}

// view folds the whole log afresh.
func (w *world) view() *reconcile.View {
	w.t.Helper()
	v := reconcile.NewView()
	evs, err := w.store.ReadAll(context.Background(), eventstore.Start, 0)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, re := range evs {
		v.Apply(re)
	}
	return v
}

// count is how many events of type typ the log holds.
func (w *world) count(typ string) int {
	evs, _ := w.store.ReadAll(context.Background(), eventstore.Start, 0)
	n := 0
	for _, re := range evs {
		if re.Type == typ {
			n++
		}
	}
	return n
}

// settle runs a reconciler over the log, alone, as after a restart.
func (w *world) settle() int {
	w.t.Helper()
	n, err := reconcile.New(w.store, w.service(w.store), "", nil).SettleAll(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return n
}

// step is a multi-step command to interrupt.
type scenario struct {
	name string
	// prepare brings a fresh world to where the command applies and
	// returns the application it is about.
	prepare func(w *world) string
	run     func(ctx context.Context, w *world, svc *commands.Service, app string) error
	// after checks the settled outcome; held says whether the command's
	// decision was written before the crash.
	after func(t *testing.T, w *world, app string, decided bool)
}

func status(t *testing.T, w *world, app string) string {
	t.Helper()
	return w.view().State(app).Status
}

func accepted(w *world) string {
	app := w.apply(0, "2026-W50")
	w.ok(w.service(w.store).Accept(context.Background(), w.meta(), app))
	return app
}

func confirmed(w *world) string {
	app := accepted(w)
	w.ok(w.service(w.store).Confirm(context.Background(), w.meta(), app))
	return app
}

var scenarios = []scenario{
	{name: "apply", prepare: func(w *world) string { return commands.ApplicationID(w.offer, w.pupils[0]) },
		run: func(ctx context.Context, w *world, svc *commands.Service, _ string) error {
			_, err := svc.Apply(ctx, w.meta(), commands.ApplyInput{OfferID: w.offer, PupilID: w.pupils[0],
				SubmitInput: domain.SubmitInput{Weeks: []string{"2026-W50"}, Motivation: "motivé"}})
			return err
		},
		after: func(t *testing.T, w *world, app string, decided bool) {
			if st := w.view().State(app); decided && !st.Tracked {
				t.Errorf("submitted application not listed on the pupil's record: %+v", st)
			}
		}},
	{name: "accept", prepare: func(w *world) string { return w.apply(0, "2026-W50") },
		run: func(ctx context.Context, w *world, svc *commands.Service, app string) error {
			_, err := svc.Accept(ctx, w.meta(), app)
			return err
		},
		after: func(t *testing.T, w *world, app string, decided bool) {
			want := map[bool]string{true: domain.StatusAccepted, false: domain.StatusSubmitted}[decided]
			if s := status(t, w, app); s != want {
				t.Errorf("status %s, want %s (seat held before the crash: %v)", s, want, decided)
			}
		}},
	{name: "confirm", prepare: func(w *world) string {
		app := accepted(w)
		// another pending application of the pupil for the same week
		other := w.ok(w.service(w.store).PostOffer(context.Background(), w.meta(), commands.PostOfferInput{EmployerID: employerOf(w), PostOfferInput: domain.PostOfferInput{
			Title: "Boulangerie", Description: "Fournil", Sector: "s2", Grades: []string{"3e"}, Weeks: []string{"2026-W50"},
			Seats: 1, CommuneCode: "94028", Address: "5 rue", Lat: 48.79, Lon: 2.45,
		}})).ID
		w.ok(w.service(w.store).Apply(context.Background(), w.meta(), commands.ApplyInput{OfferID: other, PupilID: w.pupils[0],
			SubmitInput: domain.SubmitInput{Weeks: []string{"2026-W50"}, Motivation: "aussi"}}))
		return app
	},
		run: func(ctx context.Context, w *world, svc *commands.Service, app string) error {
			_, err := svc.Confirm(ctx, w.meta(), app)
			return err
		},
		after: func(t *testing.T, w *world, app string, decided bool) {
			v := w.view()
			st := v.State(app)
			if decided && (st.Status != domain.StatusConfirmed || st.Convention != domain.PlacementConventionLive) {
				t.Errorf("weeks reserved before the crash, placement %+v", st)
			}
			if !decided && st.Status != domain.StatusAccepted {
				t.Errorf("nothing decided, placement %+v", st)
			}
			if decided && len(v.Unsettled()) > 0 {
				t.Errorf("unsettled: %v", v.Unsettled())
			}
			withdrawn := w.count("ApplicationWithdrawn")
			if decided != (withdrawn == 1) {
				t.Errorf("the pupil's other application for that week: %d withdrawals", withdrawn)
			}
		}},
	{name: "withdraw", prepare: confirmed,
		run: func(ctx context.Context, w *world, svc *commands.Service, app string) error {
			_, err := svc.Withdraw(ctx, w.meta(), app, "autre stage")
			return err
		},
		after: endedOr(domain.StatusWithdrawn)},
	{name: "cancel", prepare: confirmed,
		run: func(ctx context.Context, w *world, svc *commands.Service, app string) error {
			_, err := svc.Cancel(ctx, w.meta(), app, "fermeture")
			return err
		},
		after: endedOr(domain.StatusCancelled)},
	{name: "cancel-convention", prepare: confirmed,
		run: func(ctx context.Context, w *world, svc *commands.Service, app string) error {
			_, err := svc.CancelConvention(ctx, w.meta(), commands.ConventionID(app), "fermeture")
			return err
		},
		after: endedOr(domain.StatusCancelled)},
	{name: "withdraw-offer", prepare: func(w *world) string {
		accepted(w)
		return w.apply(1, "2026-W50")
	},
		run: func(ctx context.Context, w *world, svc *commands.Service, _ string) error {
			_, err := svc.WithdrawOffer(ctx, w.meta(), w.offer, "plus de stage")
			return err
		},
		after: func(t *testing.T, w *world, app string, decided bool) {
			want := map[bool]string{true: domain.StatusOfferWithdrawn, false: domain.StatusSubmitted}[decided]
			if s := status(t, w, app); s != want {
				t.Errorf("pending application %s, want %s", s, want)
			}
		}},
	{name: "expire", prepare: accepted,
		run: func(ctx context.Context, w *world, svc *commands.Service, app string) error {
			m := w.meta()
			m.Now = now.Add(domain.ConfirmWithin + time.Hour)
			_, err := svc.Expire(ctx, m, app)
			return err
		},
		after: endedOr(domain.StatusExpired)},
}

func employerOf(w *world) string {
	evs, err := w.store.ReadStream(context.Background(), domain.OfferStream(w.offer), eventstore.Forwards, 0, 1)
	if err != nil {
		w.t.Fatal(err)
	}
	e, _ := domain.Decode(evs[0].Type, evs[0].Data)
	return e.(*domain.OfferPosted).EmployerID
}

// endedOr: the application ended with status, or, when the crash came
// before the decision, kept its placement whole.
func endedOr(status string) func(*testing.T, *world, string, bool) {
	return func(t *testing.T, w *world, app string, decided bool) {
		st := w.view().State(app)
		if decided && st.Status != status {
			t.Errorf("status %s, want %s", st.Status, status)
		}
		if !decided && domain.Ended(st.Status) {
			t.Errorf("ended (%s) with nothing decided", st.Status)
		}
	}
}

// TestInterruptedCommandsSettle stops each multi-step command after each
// of its appends, then restarts: the reconciler alone brings every
// placement to settled, forwards from the command's decision or back
// from nothing, and no invariant of the log is left broken.
func TestInterruptedCommandsSettle(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			for n := 0; ; n++ {
				w := newWorld(t, 2)
				app := sc.prepare(w)
				before, _ := w.store.Head(context.Background())
				cs := &crashing{Store: w.store}
				cs.left.Store(int64(n))
				err := sc.run(context.Background(), w, w.service(cs), app)
				if err != nil && !errors.Is(err, errCrash) {
					t.Fatalf("after %d appends: %v", n, err)
				}
				after, _ := w.store.Head(context.Background())
				decided := after > before
				unsettled := w.view().Unsettled()
				repaired := w.settle()
				if len(unsettled) != repaired {
					t.Errorf("after %d appends: %d unsettled (%v), %d settled", n, len(unsettled), unsettled, repaired)
				}
				if broken := w.view().Broken(); len(broken) > 0 {
					t.Fatalf("after %d appends, settled: broken %v", n, broken)
				}
				sc.after(t, w, app, decided)
				if err == nil {
					t.Logf("%s: %d appends, interrupted after each of 0..%d", sc.name, n, n-1)
					if n < 2 && sc.name != "expire" && sc.name != "withdraw-offer" {
						t.Errorf("%s finished in %d appends: not a multi-step command?", sc.name, n)
					}
					return
				}
			}
		})
	}
}

// An acceptance interrupted after the seat was held, then rejected by the
// employer: the rejection gives the seat back, even with no reconciler.
func TestInterruptedAcceptThenReject(t *testing.T) {
	w := newWorld(t, 3)
	app := w.apply(0, "2026-W50")
	cs := &crashing{Store: w.store}
	cs.left.Store(1)
	if _, err := w.service(cs).Accept(context.Background(), w.meta(), app); !errors.Is(err, errCrash) {
		t.Fatalf("accept: %v", err)
	}
	if st := w.view().State(app); !st.SeatHeld || st.Status != domain.StatusSubmitted {
		t.Fatalf("not interrupted after the hold: %+v", st)
	}
	w.ok(w.service(w.store).Reject(context.Background(), w.meta(), app, "complet"))
	if st := w.view().State(app); st.SeatHeld || st.Status != domain.StatusRejected {
		t.Fatalf("rejected, the seat is still held: %+v", st)
	}
	// both seats are free: two other pupils are accepted
	for i := 1; i <= 2; i++ {
		w.ok(w.service(w.store).Accept(context.Background(), w.meta(), w.apply(i, "2026-W50")))
	}
	if broken := w.view().Broken(); len(broken) > 0 {
		t.Fatal(broken)
	}
}

// Two reconcilers, and a client retrying the interrupted command with its
// command ID, all at once: each effect is written once.
func TestRepairsNeverDouble(t *testing.T) {
	for trial := range 10 {
		w := newWorld(t, 1)
		app := w.apply(0, "2026-W50")
		w.ok(w.service(w.store).Accept(context.Background(), w.meta(), app))
		cs := &crashing{Store: w.store}
		cs.left.Store(1) // the weeks are reserved, the confirmation not written
		m := w.meta()
		if _, err := w.service(cs).Confirm(context.Background(), m, app); !errors.Is(err, errCrash) {
			t.Fatalf("confirm: %v", err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 3)
		for range 2 {
			wg.Go(func() {
				_, err := reconcile.New(w.store, w.service(w.store), "", nil).SettleAll(context.Background())
				errs <- err
			})
		}
		wg.Go(func() {
			_, err := w.service(w.store).Confirm(context.Background(), m, app) // the client's retry
			errs <- err
		})
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("trial %d: %v", trial, err)
			}
		}
		for typ, want := range map[string]int{"PupilWeeksReserved": 1, "ApplicationConfirmed": 1, "ConventionDrafted": 1} {
			if n := w.count(typ); n != want {
				t.Fatalf("trial %d: %d %s, want %d", trial, n, typ, want)
			}
		}
		if broken := w.view().Broken(); len(broken) > 0 {
			t.Fatal(broken)
		}
	}
}

// A forget interrupted before the pupil's key was destroyed: the
// reconciler destroys it.
func TestInterruptedForgetDestroysTheKey(t *testing.T) {
	w := newWorld(t, 1)
	// a service with no key store records the forget and stops there, as
	// a command interrupted between its two steps
	svc := commands.NewService(w.store, w.places)
	if _, err := svc.Forget(context.Background(), w.meta(), w.pupils[0]); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := w.keys.Key(w.pupils[0], false); !ok {
		t.Fatal("the key is gone before the reconciler ran")
	}
	w.settle()
	if _, ok, _ := w.keys.Key(w.pupils[0], false); ok {
		t.Fatal("the reconciler left a forgotten pupil's key")
	}
}

// An application whose listing on the pupil's record was interrupted is
// not seen by a confirmation of another one for the same week: once
// listed, it withdraws itself.
func TestLateRivalWithdrawsItself(t *testing.T) {
	w := newWorld(t, 1)
	ctx := context.Background()
	other := w.ok(w.service(w.store).PostOffer(ctx, w.meta(), commands.PostOfferInput{EmployerID: employerOf(w), PostOfferInput: domain.PostOfferInput{
		Title: "Boulangerie", Description: "Fournil", Sector: "s2", Grades: []string{"3e"}, Weeks: []string{"2026-W50"},
		Seats: 1, CommuneCode: "94028", Address: "5 rue", Lat: 48.79, Lon: 2.45,
	}})).ID
	cs := &crashing{Store: w.store}
	cs.left.Store(1) // submitted, not listed
	late, err := w.service(cs).Apply(ctx, w.meta(), commands.ApplyInput{OfferID: other, PupilID: w.pupils[0],
		SubmitInput: domain.SubmitInput{Weeks: []string{"2026-W50"}, Motivation: "aussi"}})
	if !errors.Is(err, errCrash) {
		t.Fatalf("apply: %v %v", late, err)
	}
	confirmed(w)
	lateID := commands.ApplicationID(other, w.pupils[0])
	if s := status(t, w, lateID); s != domain.StatusSubmitted {
		t.Fatalf("the late application is %s before the reconciler", s)
	}
	w.settle()
	if s := status(t, w, lateID); s != domain.StatusWithdrawn {
		t.Fatalf("the late application is %s, want withdrawn", s)
	}
	if broken, unsettled := w.view().Broken(), w.view().Unsettled(); len(broken)+len(unsettled) > 0 {
		t.Fatal(broken, unsettled)
	}
}
