package desk_test

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/go-chi/chi/v5"

	"passerelle/desk"
	"passerelle/domain"
	"passerelle/domain/refdata"
	"passerelle/eventstore"
	"passerelle/internal/route"
	"passerelle/internal/testsupport/heapcost"
)

// The scale of the benchmarks: a national campaign's order of magnitude
// by default (go test -bench . ./desk -args -pupils 1000000 for more).
var (
	benchOffers = flag.Int("offers", 70_000, "offers of the benchmarks' campaign")
	benchPupils = flag.Int("pupils", 100_000, "pupils of the benchmarks' campaign")
)

var (
	benchOnce  sync.Once
	benchWorld world
	benchIndex *desk.Index
	benchMux   http.Handler
)

// benchSetup generates the campaign, folds it into an index and reports
// how long that took and how much memory the index holds.
func benchSetup(b *testing.B) {
	benchOnce.Do(func() {
		t0 := time.Now()
		benchWorld = generate(7, *benchOffers, *benchPupils)
		gen := time.Since(t0)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		t1 := time.Now()
		ix := desk.New(refdata.MustLoad(), func() time.Time { return worldNow })
		ix.Apply(benchWorld.events...)
		fold := time.Since(t1)
		t2 := time.Now()
		ix.CountAll()
		count := time.Since(t2)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.Logf("generated %d events (%d schools, %d pupils, %d offers) in %v; folded in %v, eligible offers counted in %v; index heap %.1f MiB",
			len(benchWorld.events), len(benchWorld.schools), len(benchWorld.pupils), len(benchWorld.offers), gen.Round(time.Millisecond),
			fold.Round(time.Millisecond), count.Round(time.Millisecond), float64(after.HeapAlloc-before.HeapAlloc)/(1<<20))
		runtime.KeepAlive(ix)
		benchIndex = ix
		mux := chi.NewRouter()
		route.Mount(mux, desk.NewAPI(ix).Routes())
		benchMux = mux
	})
}

// benchQueries answers n requests of path(i) through the desk's routes
// (JSON included, no network) and reports p50, p99 and the largest.
func benchQueries(b *testing.B, path func(r *rand.Rand) string) {
	benchSetup(b)
	r := rand.New(rand.NewPCG(11, 13))
	// the machine is shared: besides the time each answer took, the CPU
	// time its thread spent on it tells the cost of the query itself
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var took, cpu []time.Duration
	for b.Loop() {
		req := httptest.NewRequestWithContext(context.Background(), http.MethodGet, path(r), nil)
		rec := httptest.NewRecorder()
		t0, c0 := time.Now(), threadCPU()
		benchMux.ServeHTTP(rec, req)
		took, cpu = append(took, time.Since(t0)), append(cpu, threadCPU()-c0)
		if rec.Code != http.StatusOK {
			b.Fatalf("%s: %d %s", req.URL, rec.Code, rec.Body)
		}
	}
	b.ReportMetric(ms(percentile(took, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(took, 0.99)), "p99-ms")
	b.ReportMetric(ms(percentile(took, 1)), "max-ms")
	b.ReportMetric(ms(percentile(cpu, 0.50)), "cpu-p50-ms")
	b.ReportMetric(ms(percentile(cpu, 0.99)), "cpu-p99-ms")
}

// threadCPU is the CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID).
func threadCPU() time.Duration {
	var ts syscall.Timespec
	const clockThreadCPUTime = 3
	_, _, _ = syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano())
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BenchmarkSuggestions: GET /v1/pupils/{id}/suggestions of random pupils.
func BenchmarkSuggestions(b *testing.B) {
	benchQueries(b, func(r *rand.Rand) string {
		return "/v1/pupils/" + benchWorld.pupils[r.IntN(len(benchWorld.pupils))] + "/suggestions"
	})
}

// BenchmarkCandidates: GET /v1/offers/{id}/candidates of random offers.
func BenchmarkCandidates(b *testing.B) {
	benchQueries(b, func(r *rand.Rand) string {
		return "/v1/offers/" + benchWorld.offers[r.IntN(len(benchWorld.offers))] + "/candidates"
	})
}

// BenchmarkUnplaced: GET /v1/desk/pupils, the first page of the pupils
// without a placement, fewest eligible offers first: of the whole country
// and of one département.
func BenchmarkUnplaced(b *testing.B) {
	for _, scope := range []struct{ name, query string }{{"country", ""}, {"departement-75", "?department=75"}} {
		b.Run(scope.name, func(b *testing.B) {
			benchQueries(b, func(*rand.Rand) string { return "/v1/desk/pupils" + scope.query })
		})
	}
}

// BenchmarkFollowOffer: the index following an offer posted in Paris and a
// seat held on it, with the eligible offers of every pupil counted (as
// the serving process keeps them). Both walk the cohorts of the schools
// within reach of the offer, so their cost grows with the schools around
// it: report the pupils the posted offer counted for (pupils-reached).
// Then the same once a pupil looks 200 km away (the farthest wishes
// allow): that pupil's school alone is added to the walk, and the index
// keeps that pupil afterwards.
func BenchmarkFollowOffer(b *testing.B) {
	benchSetup(b)
	n := 0
	follow := func(b *testing.B) {
		pos := benchIndex.Position()
		first := ""
		for b.Loop() {
			n++
			id := fmt.Sprintf("bench-offer-%d", n)
			first = cmp.Or(first, id)
			pos++
			posted := &domain.OfferPosted{OfferID: id, EmployerID: "emp-bench", EmployerName: "Employeur", EmployerKind: "company",
				Title: "Offre", Sector: "s12", Seats: 2, CommuneCode: "75056", Department: "75", Lat: 48.8566, Lon: 2.3522,
				Grades: []domain.Grade{domain.Grade4e, domain.Grade3e}, Weeks: collegeWeeks[4:6]}
			pos++
			held := &domain.SeatHeld{OfferID: id, ApplicationID: id + "-app", PupilID: benchWorld.pupils[n%len(benchWorld.pupils)],
				Weeks: collegeWeeks[4:5]}
			benchIndex.Apply(desk.Event{Position: pos - 1, Data: posted}, desk.Event{Position: pos, Data: held})
		}
		if _, total, ok := benchIndex.Candidates(first, 0, 1); ok {
			b.ReportMetric(float64(total), "pupils-reached")
		}
	}
	b.Run("pupils-nearby", follow)
	b.Run("a-pupil-looking-200km-away", func(b *testing.B) {
		far := farPupil(b, 100, 190)
		pos := benchIndex.Position() + 1
		benchIndex.Apply(desk.Event{Position: pos, Data: &domain.PupilWishesRecorded{PupilID: far, MaxDistanceKM: domain.MaxDistanceKM}})
		follow(b)
	})
}

// farPupil is a pupil of the campaign whose school is between min and max
// km from the offers BenchmarkFollowOffer posts.
func farPupil(b *testing.B, min, max float64) string {
	ref := refdata.MustLoad()
	schools := map[string]bool{}
	for _, e := range benchWorld.events {
		switch ev := e.Data.(type) {
		case *domain.SchoolRegistered:
			if lat, lon, ok := ref.CommuneCentre(ev.CommuneCode); ok {
				if d := domain.DistanceKM(48.8566, 2.3522, lat, lon); d > min && d < max {
					schools[ev.UAI] = true
				}
			}
		case *domain.PupilRegistered:
			if schools[ev.SchoolUAI] {
				return ev.PupilID
			}
		}
	}
	b.Fatalf("no pupil between %v and %v km from Paris", min, max)
	return ""
}

// BenchmarkFollowApplication: the index following a pupil's application
// to an offer, with the eligible offers of every pupil counted.
func BenchmarkFollowApplication(b *testing.B) {
	benchSetup(b)
	r := rand.New(rand.NewPCG(17, 19))
	pos := benchIndex.Position()
	n := 0
	for b.Loop() {
		n++
		pos++
		benchIndex.Apply(desk.Event{Position: pos, Data: &domain.PupilApplied{PupilID: benchWorld.pupils[r.IntN(len(benchWorld.pupils))],
			ApplicationID: fmt.Sprintf("bench-app-%d", n), OfferID: benchWorld.offers[r.IntN(len(benchWorld.offers))], Weeks: collegeWeeks[4:5]}})
	}
}

// BenchmarkWeekStarts: weeks of the campaign start, so the counts follow
// (Tick). Each round two weeks start, the first with nothing else running
// (count-ms: what the index spends), the second while a client asks for
// pupils' suggestions back to back; it reports how long that count took
// (busy-count-ms) and how long the queries made meanwhile waited (p99
// and the longest).
func BenchmarkWeekStarts(b *testing.B) {
	w := generate(7, *benchOffers, *benchPupils)
	now := worldNow
	var clock sync.Mutex
	ix := desk.New(refdata.MustLoad(), func() time.Time { clock.Lock(); defer clock.Unlock(); return now })
	ix.Apply(w.events...)
	ix.CountAll()
	monday, _ := time.Parse(time.DateOnly, "2027-01-11") // 2027-W02, the first of the campaign
	nextWeek := func() {
		clock.Lock()
		now, monday = monday.Add(9*time.Hour), monday.AddDate(0, 0, 7)
		clock.Unlock()
	}
	var took, alone, busy []time.Duration
	r := rand.New(rand.NewPCG(3, 5))
	for b.Loop() {
		nextWeek()
		t0 := time.Now()
		ix.Tick()
		alone = append(alone, time.Since(t0))
		nextWeek()
		done := make(chan struct{})
		t0 = time.Now()
		go func() { ix.Tick(); close(done) }()
		for counting := true; counting; {
			select {
			case <-done:
				counting = false
			default:
				t := time.Now()
				ix.Suggestions(w.pupils[r.IntN(len(w.pupils))], 0, 20)
				took = append(took, time.Since(t))
			}
		}
		busy = append(busy, time.Since(t0))
	}
	b.ReportMetric(ms(percentile(alone, 0.5)), "count-ms")
	b.ReportMetric(ms(percentile(busy, 0.5)), "busy-count-ms")
	b.ReportMetric(float64(len(took))/float64(len(busy)), "queries/count")
	b.ReportMetric(ms(percentile(took, 0.99)), "query-p99-ms")
	b.ReportMetric(ms(percentile(took, 1)), "query-max-ms")
}

// BenchmarkIndexHeap folds a campaign of benchmark size decoded from
// JSON, as Follow does (each event's strings its own), and reports what
// the index keeps for the collector to mark at each cycle: live objects
// and bytes, and a full collection's time with the index (gc-ms, and
// gc-cpu-ms of processor time) and without it (gc-base-ms, the events'
// bytes only).
func BenchmarkIndexHeap(b *testing.B) {
	type raw struct {
		typ  string
		data []byte
	}
	w := generate(7, *benchOffers, *benchPupils)
	raws := make([]raw, len(w.events))
	for i, e := range w.events {
		data, err := json.Marshal(e.Data)
		if err != nil {
			b.Fatal(err)
		}
		raws[i] = raw{e.Data.EventType(), data}
	}
	w = world{}
	places := refdata.MustLoad()
	for b.Loop() {
		heapcost.Report(b, func() any {
			ix := desk.New(places, func() time.Time { return worldNow })
			batch := make([]desk.Event, 0, 512)
			for i, r := range raws {
				e, err := domain.Decode(r.typ, r.data)
				if err != nil {
					b.Fatal(err)
				}
				if batch = append(batch, desk.Event{Position: eventstore.Position(i + 1), Data: e}); len(batch) == cap(batch) || i == len(raws)-1 {
					ix.Apply(batch...)
					batch = batch[:0]
				}
			}
			ix.CountAll()
			return ix
		})
	}
}
