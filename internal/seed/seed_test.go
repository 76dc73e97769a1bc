package seed_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"passerelle/commands"
	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/eventstore/embedded"
	"passerelle/eventstore/personal"
	"passerelle/internal/app"
	"passerelle/internal/seed"
	"passerelle/internal/testsupport/redistest"
)

// Every command the tests play checks that the states its service
// caches are what the log holds.
func init() { commands.CheckCache = true }

// small is a campaign small enough for tests: Creuse, a tenth of it.
var small = seed.Options{Departments: []string{"23"}, Scale: 0.1, Seed: 7}

// seedInto plays a plan into a fresh embedded store in dir; every command
// must be accepted.
func seedInto(t *testing.T, dir string, opt seed.Options) (*seed.Plan, seed.Report) {
	t.Helper()
	plan, store, keys, done := seedTarget(t, dir, opt)
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := seed.Run(ctx, plan, seed.RunConfig{Store: store, Keys: keys, Workers: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Sync(); err != nil {
		t.Fatal(err)
	}
	if rep.Failed > 0 {
		t.Fatalf("%d of %d commands failed: %v, first: %v", rep.Failed, rep.Total, rep.Failures, rep.First)
	}
	if rep.Done != len(plan.Commands) || rep.Events < int64(rep.Done) {
		t.Fatalf("%d of %d commands done, %d events", rep.Done, len(plan.Commands), rep.Events)
	}
	return plan, rep
}

// seedTarget plans opt and opens, in dir, the store and the keys a seed
// writes; closing them is the caller's (done returns once both are).
func seedTarget(t *testing.T, dir string, opt seed.Options) (plan *seed.Plan, store *embedded.Store, keys *seed.BulkKeys, done func()) {
	t.Helper()
	var err error
	if plan, err = seed.NewPlan(opt); err != nil {
		t.Fatal(err)
	}
	if store, err = embedded.Open(dir, seed.StoreOptions...); err != nil {
		t.Fatal(err)
	}
	keys, err = seed.OpenBulkKeys(filepath.Join(dir, "keys"))
	if err != nil {
		_ = store.Close()
		t.Fatal(err)
	}
	return plan, store, keys, func() { _ = keys.Close(); _ = store.Close() }
}

// logOf renders a store's log stream by stream, personal data opened and
// without what differs between two runs of the same commands: the time the
// store recorded each event, the random nonces of the sealed data and so
// the hashes chained over them.
func logOf(t *testing.T, dir string) map[string][]string {
	t.Helper()
	store, err := embedded.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close() }()
	keys, err := personal.OpenDir(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	cipher := personal.NewCipher(keys)
	evs, err := store.ReadAll(context.Background(), eventstore.Start, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, re := range evs {
		e, err := domain.Decode(re.Type, re.Data)
		if err != nil {
			t.Fatal(err)
		}
		if err := cipher.Open(e); err != nil {
			t.Fatal(err)
		}
		data, err := domain.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		var md eventstore.Metadata
		if err := json.Unmarshal(re.Metadata, &md); err != nil {
			t.Fatal(err)
		}
		md.PrevHash = ""
		out[re.Stream] = append(out[re.Stream], fmt.Sprintf("%d %s %s %s %s", re.Revision, re.ID, re.Type, data, md.Encode()))
	}
	return out
}

// The same seed issues the same commands: the two logs hold the same
// streams with the same events, field for field.
func TestSameSeedSameLog(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	seedInto(t, a, small)
	seedInto(t, b, small)
	la, lb := logOf(t, a), logOf(t, b)
	if len(la) == 0 || len(la) != len(lb) {
		t.Fatalf("%d streams, then %d", len(la), len(lb))
	}
	for stream, evs := range la {
		if !slices.Equal(evs, lb[stream]) {
			t.Fatalf("stream %s differs:\n%v\n%v", stream, evs, lb[stream])
		}
	}
	other := small
	other.Seed++
	p1, _ := seed.NewPlan(small)
	p2, _ := seed.NewPlan(other)
	if slices.Equal(p1.Commands, p2.Commands) {
		t.Fatal("another seed planned the same commands")
	}
}

// The plan decides the same commands from the same options.
func TestSamePlan(t *testing.T) {
	opt := seed.Options{Departments: []string{"94", "93"}, Scale: 0.05, Seed: 3}
	p1, err := seed.NewPlan(opt)
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := seed.NewPlan(opt)
	if len(p1.Commands) == 0 || !slices.Equal(p1.Commands, p2.Commands) || p1.Stats != p2.Stats {
		t.Fatalf("two plans differ: %d and %d commands", len(p1.Commands), len(p2.Commands))
	}
}

func within(t *testing.T, name string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.3f, want %.3f ± %.3f", name, got, want, tol)
	} else {
		t.Logf("%s = %.3f (want %.3f ± %.3f)", name, got, want, tol)
	}
}

// At a small national scale the campaign keeps the season's shape: places
// per pupil, the share of collèges in éducation prioritaire, applications
// per pupil, and every step of the placement played.
func TestShape(t *testing.T) {
	p, err := seed.NewPlan(seed.Options{Scale: 0.05, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	s := p.Stats
	pupils := float64(s.PupilsTotal())
	within(t, "pupils (3e + 2de)", float64(s.Pupils[1]+s.Pupils[2]), 0.05*(seed.National3e+seed.National2de), 100)
	within(t, "places per pupil", float64(s.PlacesPosted)/pupils, float64(seed.NationalPlaces)/(seed.National3e+seed.National2de), 0.015)
	within(t, "REP and REP+ share of collèges", float64(s.CollegesREP+s.CollegesRP)/float64(s.Colleges), seed.ShareREP, 0.05)
	within(t, "applications per pupil", float64(s.Commands[seed.Apply])/pupils, seed.ApplicationsPerPupil, 0.5)
	for _, k := range []seed.Kind{seed.Accept, seed.Reject, seed.Withdraw, seed.Expire, seed.Confirm, seed.CompleteEmployer,
		seed.CompleteSchool, seed.Sign, seed.WithdrawOffer} {
		if s.Commands[k] == 0 {
			t.Errorf("no %s in the season", k)
		}
	}
	if s.Employers[0] <= s.Employers[1] || s.Employers[1] == 0 || s.Employers[2] == 0 {
		t.Errorf("employers by kind %v: companies first, then public administrations and associations", s.Employers)
	}
	// offers are denser in cities: Paris has more places per pupil than Creuse
	paris, _ := seed.NewPlan(seed.Options{Departments: []string{"75"}, Scale: 0.05, Seed: 1})
	creuse, _ := seed.NewPlan(seed.Options{Departments: []string{"23"}, Scale: 0.05, Seed: 1})
	rate := func(p *seed.Plan) float64 { return float64(p.Stats.PlacesPosted) / float64(p.Stats.PupilsTotal()) }
	if rate(paris) <= rate(creuse) {
		t.Errorf("places per pupil: Paris %.3f, Creuse %.3f", rate(paris), rate(creuse))
	}
}

// --until stops the season: nothing after the date, and earlier dates
// play less of it.
func TestUntil(t *testing.T) {
	opt := small
	opt.Until = time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)
	early, _ := seed.NewPlan(opt)
	full, _ := seed.NewPlan(small)
	if n := len(early.Commands); n == 0 || n >= len(full.Commands) {
		t.Fatalf("%d commands until December, %d for the season", n, len(full.Commands))
	}
	if last := early.Commands[len(early.Commands)-1].At; last > opt.Until.Unix() {
		t.Fatalf("a command at %s, after --until", time.Unix(last, 0).UTC())
	}
}

// A seeded instance serves what was seeded: the statistics count the open
// offers and their seats as planned, and offers are found near the
// schools.
func TestSeededInstanceServes(t *testing.T) {
	dir := t.TempDir()
	opt := seed.Options{Departments: []string{"75"}, Scale: 0.01, Seed: 5}
	plan, rep := seedInto(t, dir, opt)
	t.Logf("seeded %d events", rep.Events)
	want := plan.Expected()
	redistest.EachRedis(t, func(t *testing.T, r redistest.Redis) {
		a, err := app.Open(app.Config{DataDir: dir, RedisURL: r.URL, SealEvery: -1, ExpiryEvery: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = a.Close() }()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := a.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := a.WaitCaughtUp(ctx); err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(a.Handler())
		defer srv.Close()
		var stats struct {
			OffersOpen     int `json:"offers_open"`
			SeatsTotal     int `json:"seats_total"`
			SeatsAvailable int `json:"seats_available"`
		}
		get(t, srv.URL+"/v1/stats/offers", &stats)
		if stats.OffersOpen != want.OffersOpen || stats.SeatsTotal != want.SeatsTotal || stats.SeatsAvailable != want.SeatsAvailable {
			t.Errorf("stats %+v, seeded %+v", stats, want)
		}
		if want.SeatsAvailable >= want.SeatsTotal {
			t.Errorf("no seat taken: %+v", want)
		}
		var found struct {
			Total int `json:"total"`
			Items []struct {
				DistanceKm float64  `json:"distance_km"`
				Grades     []string `json:"grades"`
			} `json:"items"`
		}
		get(t, srv.URL+"/v1/offers?near=48.8566,2.3522&radius_km=20&grade=3e", &found)
		if found.Total == 0 || len(found.Items) == 0 {
			t.Fatalf("no 3e offer within 20 km of Paris: %+v", found)
		}
		for _, it := range found.Items {
			if it.DistanceKm > 20 || !slices.Contains(it.Grades, "3e") {
				t.Errorf("found %+v", it)
			}
		}
	})
}

func get(t *testing.T, url string, v any) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// A seed's keys are personal.DirKeys' files: a key created by BulkKeys is
// the key DirKeys reads for the subject, and Destroy erases it there.
func TestBulkKeysAreDirKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	bulk, err := seed.OpenBulkKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = bulk.Close() }()
	k, ok, err := bulk.Key("pupil-1", true)
	if err != nil || !ok || len(k) != 32 {
		t.Fatalf("created key %x, %v, %v", k, ok, err)
	}
	if again, _, _ := bulk.Key("pupil-1", true); string(again) != string(k) {
		t.Fatal("a second creation changed the key")
	}
	if err := bulk.Sync(); err != nil {
		t.Fatal(err)
	}
	d, err := personal.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := d.Key("pupil-1", false)
	if err != nil || !ok || string(got) != string(k) {
		t.Fatalf("DirKeys read %x, %v, %v; want %x", got, ok, err, k)
	}
	if _, ok, err := d.Key("pupil-2", false); ok || err != nil {
		t.Fatalf("a key never created: %v, %v", ok, err)
	}
	if err := bulk.Destroy("pupil-1"); err != nil {
		t.Fatal(err)
	}
	fresh, err := personal.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := fresh.Key("pupil-1", false); ok || err != nil {
		t.Fatalf("destroyed key still read: %v, %v", ok, err)
	}
}

// cutting is a store that an interrupt reaches after a number of appends:
// from then on its appends answer the cancelled context's error, as a
// remote store's would.
type cutting struct {
	eventstore.Store
	after  atomic.Int64
	cancel context.CancelFunc
}

func (c *cutting) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if c.after.Add(-1) == 0 {
		c.cancel()
	}
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, err
	}
	return c.Store.Append(ctx, stream, expected, events...)
}

// TestInterruptIsNotRefusal: the commands an interrupt cuts short are
// counted apart, not as refused, and not as done.
func TestInterruptIsNotRefusal(t *testing.T) {
	plan, inner, keys, done := seedTarget(t, t.TempDir(), small)
	defer done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := &cutting{Store: inner, cancel: cancel}
	store.after.Store(int64(len(plan.Commands) / 3))
	rep, err := seed.Run(ctx, plan, seed.RunConfig{Store: store, Keys: keys, Workers: 256})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("run error %v, want the interrupt's", err)
	}
	if rep.Failed != 0 || len(rep.Failures) != 0 {
		t.Fatalf("%d commands counted as refused after an interrupt: %v %v", rep.Failed, rep.Failures, rep.First)
	}
	if rep.Cut == 0 || rep.Done == 0 || rep.Done+rep.Cut >= rep.Total {
		t.Fatalf("done %d, cut %d of %d: want some of each and not all commands run", rep.Done, rep.Cut, rep.Total)
	}
}
