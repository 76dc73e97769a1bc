package commands

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"passerelle/domain"
	"passerelle/domain/refdata"
	"passerelle/eventstore"
	"passerelle/eventstore/chain"
	"passerelle/eventstore/embedded"
	"passerelle/eventstore/personal"
)

// Every test of the package checks that no command changes an aggregate
// the cache lent it.
func init() { CheckCache = true }

// A copy shares nothing the original could see change: folding more
// events into the copy leaves the original as it was.
func TestDeepCopySharesNothing(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name        string
		new         func() aggregate
		past, later []domain.Event
	}{
		{"offer", func() aggregate { return &domain.Offer{} },
			[]domain.Event{&domain.OfferPosted{OfferID: "o", Weeks: []string{"2026-W50", "2026-W51"}, Seats: 3},
				&domain.SeatHeld{ApplicationID: "a1", Weeks: []string{"2026-W50"}}},
			[]domain.Event{&domain.SeatHeld{ApplicationID: "a2", Weeks: []string{"2026-W50"}}, &domain.SeatReleased{ApplicationID: "a1"}}},
		{"pupil", func() aggregate { return &domain.Pupil{} },
			[]domain.Event{&domain.PupilRegistered{PupilID: "p", FirstName: "Lina", Guardians: []domain.Guardian{{Name: "K"}}},
				&domain.PupilApplied{ApplicationID: "a1", Weeks: []string{"2026-W50"}},
				&domain.PupilWeeksReserved{ApplicationID: "a1", Weeks: []string{"2026-W50"}}},
			[]domain.Event{&domain.PupilApplied{ApplicationID: "a2", Weeks: []string{"2026-W51"}},
				&domain.PupilWeeksReleased{ApplicationID: "a1"}, &domain.PupilForgotten{PupilID: "p"}}},
		{"convention", func() aggregate { return &domain.Convention{} },
			[]domain.Event{&domain.ConventionDrafted{ConventionID: "c", RequiredRoles: []domain.Role{domain.RoleEmployer, domain.RolePupil}},
				&domain.ConventionSignatureAdded{Role: domain.RoleEmployer, SignedAt: at}},
			[]domain.Event{&domain.ConventionSignatureAdded{Role: domain.RolePupil, SignedAt: at}}},
		{"application", func() aggregate { return &domain.Application{} },
			[]domain.Event{&domain.ApplicationSubmitted{ApplicationID: "a", Weeks: []string{"2026-W50"}}},
			[]domain.Event{&domain.ApplicationAccepted{ApplicationID: "a", AcceptedAt: at}}},
		{"target", func() aggregate { return &domain.Target{} },
			[]domain.Event{&domain.TargetSet{Target: 10, SetAt: at}}, []domain.Event{&domain.TargetSet{Target: 20, SetAt: at}}},
	}
	for _, c := range cases {
		orig, want := c.new(), c.new()
		for _, e := range c.past {
			orig.Apply(e)
			want.Apply(e)
		}
		cp := deepCopy(orig)
		if !reflect.DeepEqual(cp, orig) {
			t.Fatalf("%s: copy %+v differs from %+v", c.name, cp, orig)
		}
		if where := shared(reflect.ValueOf(cp), reflect.ValueOf(orig), c.name); where != "" {
			t.Errorf("the copy shares %s with the original", where)
		}
		for _, e := range c.later {
			cp.Apply(e)
		}
		if !reflect.DeepEqual(orig, want) {
			t.Errorf("%s: folding into the copy changed the original: %+v, want %+v", c.name, orig, want)
		}
		if reflect.DeepEqual(cp, want) {
			t.Errorf("%s: the later events changed nothing: the case tests nothing", c.name)
		}
	}
}

// shared names the first pointer, map or slice array that a and b, of
// the same type, both hold ("" when none).
func shared(a, b reflect.Value, path string) string {
	switch a.Kind() {
	case reflect.Pointer, reflect.Map:
		if a.IsNil() || b.IsNil() {
			return ""
		}
		if a.UnsafePointer() == b.UnsafePointer() {
			return path
		}
		if a.Kind() == reflect.Pointer {
			return shared(a.Elem(), b.Elem(), path)
		}
		for it := a.MapRange(); it.Next(); {
			if w := shared(it.Value(), b.MapIndex(it.Key()), fmt.Sprintf("%s[%v]", path, it.Key())); w != "" {
				return w
			}
		}
	case reflect.Slice:
		if a.Cap() > 0 && b.Cap() > 0 && a.UnsafePointer() == b.UnsafePointer() {
			return path
		}
		for i := range min(a.Len(), b.Len()) {
			if w := shared(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i)); w != "" {
				return w
			}
		}
	case reflect.Interface:
		if !a.IsNil() && !b.IsNil() {
			return shared(a.Elem(), b.Elem(), path)
		}
	case reflect.Struct:
		for i := range a.NumField() {
			if w := shared(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); w != "" {
				return w
			}
		}
	}
	return ""
}

func newCachedService(t *testing.T, store eventstore.Store) *Service {
	keys, err := personal.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return NewService(store, refdata.MustLoad()).WithPersonalData(personal.NewCipher(keys))
}

func meta(id string) Meta {
	return Meta{CommandID: id, Actor: eventstore.Actor{Role: "backoffice"}, Now: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
}

func must(t *testing.T) func(Result, error) Result {
	return func(r Result, err error) Result {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
}

// Forget empties the cache: no application keeps the forgotten pupil's
// motivation in memory, and the next load finds it erased.
func TestForgetEvictsPersonalData(t *testing.T) {
	store, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc := newCachedService(t, store)
	ctx := context.Background()
	emp := must(t)(svc.RegisterEmployer(ctx, meta("e"), domain.RegisterEmployerInput{
		Name: "Garage Dupont", SIRET: "73282932000074", Kind: "company", CommuneCode: "94028", Address: "3 rue"}))
	must(t)(svc.RegisterSchool(ctx, meta("s"), domain.RegisterSchoolInput{
		UAI: "0941234A", Name: "Collège", Kind: "college", CommuneCode: "94028", EducationPriority: "none"}))
	offer := must(t)(svc.PostOffer(ctx, meta("o"), PostOfferInput{EmployerID: emp.ID, PostOfferInput: domain.PostOfferInput{
		Title: "Mécanique", Description: "Atelier", Sector: "s1", Grades: []string{"3e"}, Weeks: []string{"2026-W50"},
		Seats: 2, CommuneCode: "94028", Address: "3 rue", Lat: 48.79, Lon: 2.45}}))
	pupil := must(t)(svc.RegisterPupil(ctx, meta("p"), domain.RegisterPupilInput{
		SchoolUAI: "0941234A", Grade: "3e", ClassName: "3eA", FirstName: "Lina", LastName: "Benali", BirthDate: "2012-05-01",
		Guardians: []domain.Guardian{{Name: "Parent", Email: "p@example.fr", Phone: "0600000000"}}}))
	app := must(t)(svc.Apply(ctx, meta("a"), ApplyInput{OfferID: offer.ID, PupilID: pupil.ID,
		SubmitInput: domain.SubmitInput{Weeks: []string{"2026-W50"}, Motivation: "J'aime les moteurs"}}))
	if _, err := svc.loadApplication(ctx, app.ID); err != nil {
		t.Fatal(err)
	}
	cached, _, ok := svc.repo.cache.get(domain.ApplicationStream(app.ID))
	if !ok || cached.(*domain.Application).Submitted.Motivation != "J'aime les moteurs" {
		t.Fatalf("the application is not cached with its motivation: %v %+v", ok, cached)
	}

	must(t)(svc.Forget(ctx, meta("f"), pupil.ID))
	if n := svc.repo.cache.len(); n != 0 {
		t.Fatalf("%d aggregates cached after a forget", n)
	}
	got, err := svc.loadApplication(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Submitted.Motivation != "" || !got.Submitted.Erased {
		t.Fatalf("after the forget the application reads %+v", got.Submitted)
	}
}

// A load that began before a forget does not put its state in the cache.
func TestPutAfterForgetIsRefused(t *testing.T) {
	c := newAggregateCache(10)
	epoch := c.begin()
	c.forgetAll()
	c.put(&domain.Employer{}, loaded{stream: "employer-1"}, epoch)
	if _, _, ok := c.get("employer-1"); ok {
		t.Fatal("a state loaded before the forget was cached")
	}
	c.put(&domain.Employer{}, loaded{stream: "employer-1"}, c.begin())
	if _, _, ok := c.get("employer-1"); !ok {
		t.Fatal("a state loaded after the forget was not cached")
	}
}

// The cache holds at most its size, dropping the least recently used.
func TestCacheIsBounded(t *testing.T) {
	c := newAggregateCache(2)
	for _, s := range []string{"employer-1", "employer-2", "employer-1", "employer-3"} {
		c.put(&domain.Employer{}, loaded{stream: s}, c.begin())
	}
	if n := c.len(); n != 2 {
		t.Fatalf("%d cached, want 2", n)
	}
	if _, _, ok := c.get("employer-2"); ok {
		t.Fatal("the least recently used aggregate was kept")
	}
}

// Two services (two instances of Passerelle) over one store: a cached
// aggregate behind the log is brought up to date, never decided on stale.
func TestCacheCatchesUpWithOtherWriters(t *testing.T) {
	store, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	a, b := newCachedService(t, store), newCachedService(t, store)
	ctx := context.Background()
	emp := must(t)(a.RegisterEmployer(ctx, meta("e"), domain.RegisterEmployerInput{
		Name: "Garage Dupont", SIRET: "73282932000074", Kind: "company", CommuneCode: "94028", Address: "3 rue"}))
	offer := must(t)(a.PostOffer(ctx, meta("o"), PostOfferInput{EmployerID: emp.ID, PostOfferInput: domain.PostOfferInput{
		Title: "Mécanique", Description: "Atelier", Sector: "s1", Grades: []string{"3e"}, Weeks: []string{"2026-W50"},
		Seats: 2, CommuneCode: "94028", Address: "3 rue", Lat: 48.79, Lon: 2.45}}))
	title := func(s string) domain.AmendOfferInput { return domain.AmendOfferInput{Title: &s} }
	must(t)(a.AmendOffer(ctx, meta("a1"), offer.ID, title("un")))
	must(t)(b.AmendOffer(ctx, meta("b1"), offer.ID, title("deux")))
	must(t)(a.AmendOffer(ctx, meta("a2"), offer.ID, title("trois")))
	must(t)(b.AmendOffer(ctx, meta("b2"), offer.ID, title("quatre")))
	o, err := read[domain.Offer](ctx, a.repo, domain.OfferStream(offer.ID))
	if err != nil {
		t.Fatal(err)
	}
	if o.Posted.Title != "quatre" {
		t.Fatalf("title %q, want quatre", o.Posted.Title)
	}
	// each event chains to the one before it: the hash a cached state
	// carries is the log's
	evs, err := store.ReadStream(ctx, domain.OfferStream(offer.ID), eventstore.Forwards, 0, 0)
	if err != nil || len(evs) != 5 {
		t.Fatalf("%d events, %v; want 5", len(evs), err)
	}
	for i := 1; i < len(evs); i++ {
		md, err := eventstore.DecodeMetadata(evs[i].Metadata)
		if err != nil || md.PrevHash != chain.Of(evs[i-1]) {
			t.Fatalf("event %d: prev hash %q, want %q (%v)", i, md.PrevHash, chain.Of(evs[i-1]), err)
		}
	}
}

// A command that only consults an aggregate gets the cached one itself
// while nothing is new, and a copy brought up to date once the stream
// moved on, which leaves what earlier readers hold as it was; the guard
// the tests run under catches a reader that changes what it was lent.
func TestReadSharesTheCachedAggregate(t *testing.T) {
	store, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc := newCachedService(t, store)
	ctx := context.Background()
	emp := must(t)(svc.RegisterEmployer(ctx, meta("e"), domain.RegisterEmployerInput{
		Name: "Garage Dupont", SIRET: "73282932000074", Kind: "company", CommuneCode: "94028", Address: "3 rue"}))
	offer := must(t)(svc.PostOffer(ctx, meta("o"), PostOfferInput{EmployerID: emp.ID, PostOfferInput: domain.PostOfferInput{
		Title: "Mécanique", Description: "Atelier", Sector: "s1", Grades: []string{"3e"}, Weeks: []string{"2026-W50"},
		Seats: 2, CommuneCode: "94028", Address: "3 rue", Lat: 48.79, Lon: 2.45}}))
	stream := domain.OfferStream(offer.ID)
	first, err := read[domain.Offer](ctx, svc.repo, stream)
	if err != nil {
		t.Fatal(err)
	}
	again, err := read[domain.Offer](ctx, svc.repo, stream)
	if err != nil || again != first {
		t.Fatalf("a second read while nothing is new: %p, %v; want the cached %p", again, err, first)
	}
	title := "Carrosserie"
	must(t)(svc.AmendOffer(ctx, meta("a1"), offer.ID, domain.AmendOfferInput{Title: &title}))
	now, err := read[domain.Offer](ctx, svc.repo, stream)
	if err != nil || now == first || now.Posted.Title != title {
		t.Fatalf("a read after an amendment: %+v, %v", now, err)
	}
	if first.Posted.Title != "Mécanique" {
		t.Fatalf("an earlier reader sees the title change to %q", first.Posted.Title)
	}

	now.Posted.Title = "changed by a reader"
	defer func() {
		if recover() == nil {
			t.Fatal("a reader changed a cached aggregate unnoticed")
		}
	}()
	_, _ = read[domain.Offer](ctx, svc.repo, stream)
}

// A command decides on the cached aggregate itself, folds its decision
// into one copy, and the cache keeps that copy: the state a command
// returned, the one it decided on and the one an earlier reader holds
// never change afterwards.
func TestUpdateDecidesOnTheCachedAggregate(t *testing.T) {
	store, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc := newCachedService(t, store)
	ctx := context.Background()
	emp := must(t)(svc.RegisterEmployer(ctx, meta("e"), domain.RegisterEmployerInput{
		Name: "Garage Dupont", SIRET: "73282932000074", Kind: "company", CommuneCode: "94028", Address: "3 rue"}))
	offer := must(t)(svc.PostOffer(ctx, meta("o"), PostOfferInput{EmployerID: emp.ID, PostOfferInput: domain.PostOfferInput{
		Title: "Mécanique", Description: "Atelier", Sector: "s1", Grades: []string{"3e"}, Weeks: []string{"2026-W50"},
		Seats: 2, CommuneCode: "94028", Address: "3 rue", Lat: 48.79, Lon: 2.45}}))
	stream := domain.OfferStream(offer.ID)
	cached, err := read[domain.Offer](ctx, svc.repo, stream)
	if err != nil {
		t.Fatal(err)
	}
	amend := func(id, title string) (decidedOn, after *domain.Offer) {
		after, _, err := update(ctx, svc.repo, meta(id), stream, func(o *domain.Offer) ([]domain.Event, error) {
			decidedOn = o
			return o.Amend(domain.AmendOfferInput{Title: &title}, time.Now())
		})
		if err != nil {
			t.Fatal(err)
		}
		return decidedOn, after
	}
	decidedOn, first := amend("a1", "Carrosserie")
	if decidedOn != cached {
		t.Fatalf("decided on %p, not on the cached %p", decidedOn, cached)
	}
	if first == cached || first.Posted.Title != "Carrosserie" || cached.Posted.Title != "Mécanique" {
		t.Fatalf("after the amendment: returned %p %q, cached before %p %q", first, first.Posted.Title, cached, cached.Posted.Title)
	}
	if now, err := read[domain.Offer](ctx, svc.repo, stream); err != nil || now != first {
		t.Fatalf("a read after the amendment: %p, %v; want the state the command kept, %p", now, err, first)
	}
	decidedOn, second := amend("a2", "Peinture")
	if decidedOn != first || second == first || second.Posted.Title != "Peinture" || first.Posted.Title != "Carrosserie" {
		t.Fatalf("a second amendment: decided on %p (want %p), returned %q, the first command's state now %q",
			decidedOn, first, second.Posted.Title, first.Posted.Title)
	}
}
