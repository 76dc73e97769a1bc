package projections_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/internal/testsupport/redistest"
	"passerelle/projections"
)

// campaign appends a random but coherent season of placements, at least
// minEvents events, each stream's events of one step in one append, from
// several writers at once.
func campaign(t testing.TB, s eventstore.Store, seed uint64, minEvents int) int {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed+1))
	ctx := context.Background()
	now := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	id := func() string { return uuid.NewString() }
	type batch struct {
		stream string
		evs    []domain.Event
	}
	var mu sync.Mutex
	total := 0
	jobs := make(chan []batch, 64)
	var wg sync.WaitGroup
	var failed error
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for steps := range jobs {
				// the steps of one placement are written in order
				for _, b := range steps {
					data := make([]eventstore.EventData, len(b.evs))
					for i, e := range b.evs {
						raw, _ := domain.Encode(e)
						md := eventstore.Metadata{CommandID: id(), Actor: eventstore.Actor{Role: "backoffice"}, OccurredAt: now}.Encode()
						data[i] = eventstore.EventData{ID: uuid.New(), Type: e.EventType(), Data: raw, Metadata: md}
					}
					if _, err := s.Append(ctx, b.stream, eventstore.Any, data...); err != nil {
						mu.Lock()
						failed = err
						mu.Unlock()
						return
					}
				}
			}
		}()
	}
	send := func(steps ...batch) {
		for _, b := range steps {
			total += len(b.evs)
		}
		jobs <- steps
	}

	schools := []string{"0941234A", "0751234B", "0691234C", "1301234D", "5931234E"}
	deps := []string{"94", "75", "69", "13", "59"}
	for i, u := range schools {
		send(batch{domain.SchoolStream(u), []domain.Event{&domain.SchoolRegistered{UAI: u, Name: u, Kind: "college", CommuneCode: "94028", Department: deps[i], EducationPriority: "rep"}}})
	}
	employers := make([]string, 40)
	for i := range employers {
		employers[i] = id()
		send(batch{domain.EmployerStream(employers[i]), []domain.Event{&domain.EmployerRegistered{EmployerID: employers[i], Name: "E", Kind: "company", Department: deps[i%5]}}})
	}
	pupils := make([]string, 3000)
	pupilSchool := map[string]string{}
	for i := range pupils {
		pupils[i] = id()
		pupilSchool[pupils[i]] = schools[i%5]
		send(batch{domain.PupilStream(pupils[i]), []domain.Event{&domain.PupilRegistered{PupilID: pupils[i], SchoolUAI: schools[i%5], Grade: domain.Grade3e, ClassName: "3e", GuardianCount: 1}}})
	}
	weeks := []string{"2027-W05", "2027-W06", "2027-W07", "2027-W08"}
	for total < minEvents {
		offer, emp := id(), employers[rng.IntN(len(employers))]
		seats := 1 + rng.IntN(4)
		ws := weeks[:1+rng.IntN(len(weeks))]
		send(batch{domain.OfferStream(offer), []domain.Event{&domain.OfferPosted{OfferID: offer, EmployerID: emp, Title: "t", Description: "d",
			Sector: fmt.Sprintf("s%d", 1+rng.IntN(51)), Grades: []domain.Grade{domain.Grade3e}, Weeks: ws, Seats: seats,
			CommuneCode: "94028", Department: deps[rng.IntN(5)], Lat: 48 + rng.Float64(), Lon: 2 + rng.Float64()}}})
		held := 0
		for a := 0; a < 2+rng.IntN(6); a++ {
			pupil, app, week := pupils[rng.IntN(len(pupils))], id(), ws[rng.IntN(len(ws))]
			steps := []batch{
				{domain.ApplicationStream(app), []domain.Event{&domain.ApplicationSubmitted{ApplicationID: app, OfferID: offer, EmployerID: emp, PupilID: pupil,
					SchoolUAI: pupilSchool[pupil], Grade: domain.Grade3e, Weeks: []string{week}, Motivation: "m", SubmittedAt: now}}},
				{domain.PupilStream(pupil), []domain.Event{&domain.PupilApplied{PupilID: pupil, ApplicationID: app, OfferID: offer, Weeks: []string{week}}}},
			}
			switch k := rng.IntN(10); {
			case k < 2:
				steps = append(steps, batch{domain.ApplicationStream(app), []domain.Event{&domain.ApplicationRead{ApplicationID: app}, &domain.ApplicationRejected{ApplicationID: app, Reason: "r"}}})
			case k < 3 || held >= seats:
				steps = append(steps, batch{domain.ApplicationStream(app), []domain.Event{&domain.ApplicationExpired{ApplicationID: app, Rule: "no_employer_answer"}}})
			default:
				held++
				conv := id()
				steps = append(steps,
					batch{domain.OfferStream(offer), []domain.Event{&domain.SeatHeld{OfferID: offer, ApplicationID: app, PupilID: pupil, Weeks: []string{week}}}},
					batch{domain.ApplicationStream(app), []domain.Event{&domain.ApplicationAccepted{ApplicationID: app, AcceptedAt: now}}},
				)
				if k < 5 {
					held--
					steps = append(steps,
						batch{domain.ApplicationStream(app), []domain.Event{&domain.ApplicationWithdrawn{ApplicationID: app, SeatReleased: true}}},
						batch{domain.OfferStream(offer), []domain.Event{&domain.SeatReleased{OfferID: offer, ApplicationID: app, Weeks: []string{week}}}},
					)
					break
				}
				roles := []domain.Role{"employer", "school_head", "pupil", "guardian"}
				convEvs := []domain.Event{
					&domain.ConventionDrafted{ConventionID: conv, ApplicationID: app, OfferID: offer, EmployerID: emp, PupilID: pupil, SchoolUAI: pupilSchool[pupil],
						Weeks: []string{week}, RequiredRoles: roles, DocumentHash: "h0"},
					&domain.ConventionCompleted{ConventionID: conv, Party: "employer", Tutor: &domain.Person{Name: "T", Email: "t@x.fr"}, RequiredRoles: roles, DocumentHash: "h1"},
					&domain.ConventionCompleted{ConventionID: conv, Party: "school", ReferentTeacher: &domain.Person{Name: "R", Email: "r@x.fr"}, RequiredRoles: roles, DocumentHash: "h2"},
				}
				for _, r := range roles[:rng.IntN(5)] {
					convEvs = append(convEvs, &domain.ConventionSignatureAdded{ConventionID: conv, Role: r, SignerName: "S", DocumentHash: "h2", SignedAt: now})
				}
				if len(convEvs) == 7 {
					convEvs = append(convEvs, &domain.ConventionSigned{ConventionID: conv, DocumentHash: "h2"})
				}
				steps = append(steps,
					batch{domain.PupilStream(pupil), []domain.Event{&domain.PupilWeeksReserved{PupilID: pupil, ApplicationID: app, Weeks: []string{week}}}},
					batch{domain.ApplicationStream(app), []domain.Event{&domain.ApplicationConfirmed{ApplicationID: app, ConventionID: conv}}},
					batch{domain.ConventionStream(conv), convEvs},
				)
			}
			send(steps...)
		}
		if rng.IntN(20) == 0 {
			send(batch{domain.OfferStream(offer), []domain.Event{&domain.OfferWithdrawn{OfferID: offer}}})
		}
	}
	close(jobs)
	wg.Wait()
	if failed != nil {
		t.Fatal(failed)
	}
	return total
}

// The read models a live runner built event by event equal, key by key,
// those a rebuild makes from the log, after a long random campaign.
func TestRebuildEqualsLive(t *testing.T) {
	r := redistest.Mini(t)
	if os.Getenv(redistest.RedisEnv) != "" {
		r = redistest.RealDB(t, 9) // the real server, when there is one, is the one that matters
	}
	rdb := r.Client(t)
	s := openStore(t)
	n := campaign(t, s, 42, 100_000)
	ctx := context.Background()
	head, _ := s.Head(ctx)
	stop := run(t, s, rdb, projections.All()...)
	for _, p := range projections.All() {
		waitWithin(t, rdb, p.Name(), head, 5*time.Minute)
	}
	stop()
	for _, p := range projections.All() {
		live, _ := projections.ActivePrefix(ctx, rdb, p.Name())
		liveDump, err := projections.Dump(ctx, rdb, live)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		gen, err := projections.Rebuild(ctx, s, rdb, nil, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d events rebuilt in %v (%.0f events/s), %d keys", p.Name(), n, time.Since(start), float64(n)/time.Since(start).Seconds(), len(liveDump))
		rebuilt, err := projections.Dump(ctx, rdb, projections.GenPrefix(p.Name(), gen))
		if err != nil {
			t.Fatal(err)
		}
		if len(liveDump) < 1000 {
			t.Fatalf("%s: only %d keys: the scenario did not exercise the model", p.Name(), len(liveDump))
		}
		var diff []string
		for k, v := range liveDump {
			if rebuilt[k] != v {
				diff = append(diff, k)
			}
		}
		for k := range rebuilt {
			if _, ok := liveDump[k]; !ok {
				diff = append(diff, k)
			}
		}
		sort.Strings(diff)
		if len(diff) > 0 {
			t.Fatalf("%s: %d keys differ, first %q:\nlive    %.300s\nrebuilt %.300s", p.Name(), len(diff), diff[0], liveDump[diff[0]], rebuilt[diff[0]])
		}
		if left, _ := projections.Dump(ctx, rdb, live); len(left) != 0 {
			t.Fatalf("%s: the replaced generation still has %d keys", p.Name(), len(left))
		}
	}
}

// A live runner keeps applying new events after a rebuild swapped a new
// generation in under it.
func TestRunnerFollowsSwap(t *testing.T) {
	s := openStore(t)
	rdb := redistest.Mini(t).Client(t)
	campaign(t, s, 7, 2_000)
	run(t, s, rdb, projections.Stats{})
	head, _ := s.Head(context.Background())
	waitFor(t, rdb, projections.StatsName, head)
	gen, err := projections.Rebuild(context.Background(), s, rdb, nil, projections.Stats{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pos := appendEvent(t, s, domain.OfferStream("late"), &domain.OfferPosted{OfferID: "late", Sector: "s9", Department: "94", Grades: []domain.Grade{domain.Grade3e}, Weeks: []string{"2027-W10"}, Seats: 1})
	waitFor(t, rdb, projections.StatsName, pos)
	if active, _ := projections.ActivePrefix(context.Background(), rdb, projections.StatsName); active != projections.GenPrefix(projections.StatsName, gen) {
		t.Fatalf("served %s, want generation %s", active, gen)
	}
	if v := counters(t, rdb)["sector:s9:offers_open"]; v == "" || v == "0" {
		t.Fatalf("the event after the swap was not applied to the new generation: %q", v)
	}
}
