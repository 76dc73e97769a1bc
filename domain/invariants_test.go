package domain_test

import (
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"passerelle/domain"
)

var (
	invariantsSeed      = flag.Uint64("invariants.seed", 0, "run TestInvariantsUnderRandomCommands with this seed only")
	invariantsCommands  = flag.Int("invariants.commands", 0, "commands per seed in TestInvariantsUnderRandomCommands (0: default)")
	invariantsCrashOdds = flag.Int("invariants.crash-odds", 50, "in TestInvariantsUnderRandomCommands, a command crashes after one of its steps in this many")
)

// TestInvariantsUnderRandomCommands generates, from a seed, random
// sequences of commands by many pupils (collège and lycée) on several
// employers' offers, and runs them purely in the domain the way the
// command layer (commands/placements.go) does: each command is a series of
// steps, each step one decision on one aggregate applied at once (as one
// append with the loaded revision would be). A multi-step command makes
// its decision (the offer holds a seat, the pupil reserves the weeks, the
// application ends, the convention is cancelled), then settles the
// placement with the declared protocol: it reads what each aggregate holds
// (domain.PlacementState), then has the aggregate of the step Next names
// decide it (Step.Decide), until Next says settled. Several commands are
// under way at once and their steps interleave at random, as concurrent
// requests do. An earlier version emulated the hand-written sequences of
// an older command layer, and found two races in them.
//
// Now and then a command crashes between two steps: its other steps are
// dropped. A few steps later, while other commands go on, a reconciler
// settles the applications it was settling with the same Next and Decide,
// as the real one does after its grace; it also closes the unanswered
// applications of a withdrawn offer, and takes over a command whose settle
// step was refused (the command layer then gives up with an error).
//
// After every step it checks that held seats never exceed the seats of any
// week, that a pupil never has two reserved placements on overlapping
// weeks, that a pupil has at most one application per offer, and that a
// convention is signed exactly when every required role signed its current
// version. When nothing is under way (no command, no reconciler), it also
// checks that every placement is settled (checkSettled): Next has no step
// for any application, Broken is empty, and what settled means holds when
// read from the aggregates alone (seats, weeks, conventions, rivals).
//
// A failure names its seed; replay it with
//
//	go test ./domain -run TestInvariantsUnderRandomCommands -invariants.seed=SEED
func TestInvariantsUnderRandomCommands(t *testing.T) {
	seeds := []uint64{1, 2, 3, 42, 20260615, uint64(time.Now().UnixNano())}
	if *invariantsSeed != 0 {
		seeds = []uint64{*invariantsSeed}
	}
	commands, budget := 5000, 2*time.Second
	if testing.Short() {
		commands, budget = 1500, 500*time.Millisecond
	}
	if *invariantsCommands > 0 {
		commands, budget = *invariantsCommands, time.Hour
	}
	total, complete := map[string]int{}, true
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			replay := fmt.Sprint("-invariants.seed=", seed)
			if f := flag.Lookup("invariants.crash-odds"); f.Value.String() != f.DefValue {
				replay += " -invariants.crash-odds=" + f.Value.String()
			}
			t.Logf("seed %d; replay with: go test ./domain -run TestInvariantsUnderRandomCommands %s", seed, replay)
			w := newWorld(t, seed)
			ran := w.run(commands, time.Now().Add(budget))
			t.Logf("%d commands, %d steps, %d under way at most, clock %s → %s",
				ran, w.steps, w.maxInflight, clockStart.Format(time.DateOnly), w.now.Format(time.DateOnly))
			t.Logf("%d crashes between two steps, %d settle steps refused; reconciler: %d runs, %d placements repaired",
				w.crashes, w.abandoned, w.reconcilers, w.repairs)
			t.Logf("events: %v", w.stats)
			t.Logf("refusals: %v", w.refusals)
			if ran < min(commands, 1000) {
				t.Errorf("only %d commands ran within %v", ran, budget)
			}
			if ran >= 1000 && (w.crashes == 0 || w.repairs == 0) {
				t.Errorf("%d commands: %d crashes, %d repairs; the reconciler was not put to work", ran, w.crashes, w.repairs)
			}
			complete = complete && ran == commands
			for k, n := range w.stats {
				total[k] += n
			}
			for k, n := range w.refusals {
				total[k] += n
			}
		})
	}
	if *invariantsSeed != 0 || t.Failed() || !complete {
		return
	}
	// The generator reaches every part of the lifecycle.
	for _, want := range []string{
		"ApplicationSubmitted", "ApplicationRead", "ApplicationAccepted", "ApplicationRejected", "ApplicationWithdrawn",
		"ApplicationCancelled", "ApplicationExpired", "ApplicationConfirmed", "ApplicationOfferWithdrawn", "SeatHeld", "SeatReleased",
		"PupilApplied", "PupilWeeksReserved", "PupilWeeksReleased", "ConventionDrafted", "ConventionCompleted", "ConventionSignatureAdded",
		"ConventionSigned", "ConventionCancelled", "OfferAmended", "OfferWithdrawn", "OfferReopened",
		"no_seat_left", "overlapping_placement", "outdated_document", "wrong_status", "internship_started", "one_application_per_offer",
	} {
		if total[want] == 0 {
			t.Errorf("no %s in any run", want)
		}
	}
}

// debugFile, when INVDEBUG names one, receives every step of a failing run.
var debugFile = os.Getenv("INVDEBUG")

var clockStart = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)

// reconcileGrace is the most steps a reconciler waits before it starts.
const reconcileGrace = 24

// proc is a command under way, or a reconciler: the steps it has left,
// each one decision on one aggregate (or the read of a placement). A step
// may put further steps in front of the others.
type proc struct {
	name  string
	now   time.Time // the command's clock, fixed when it is issued
	steps []func(*proc)
	// apps are the applications whose placement the command decided on
	// or settles: a reconciler's to settle if it stops half-way
	apps       []string
	reconciler bool
	start      int // a reconciler starts at this step (its grace)
}

func (p *proc) then(steps ...func(*proc)) { p.steps = append(slices.Clone(steps), p.steps...) }

type world struct {
	t           *testing.T
	seed        uint64
	rng         *rand.Rand
	now         time.Time
	steps       int
	maxInflight int
	inflight    []*proc   // commands and reconcilers under way
	waiting     []*proc   // reconcilers in their grace
	history     []string  // the last steps, for a failure report
	all         []string  // every step, kept when INVDEBUG names a file to write them to
	touched     []applier // aggregates changed by the current step
	// pupils and offers whose placements changed since the last
	// checkSettled: a placement reads its pupil's and its offer's
	// aggregates, and its rivals are the pupil's
	changedPupils, changedOffers map[string]bool

	schools   map[string]*domain.School
	employers map[string]*domain.Employer
	pupils    []*domain.Pupil
	pupilByID map[string]*domain.Pupil
	offers    []*domain.Offer
	offerByID map[string]*domain.Offer
	apps      map[string]*domain.Application
	appIDs    []string
	convs     map[string]*domain.Convention
	convIDs   []string

	// what the events said, kept apart from the aggregates
	held       map[string]map[string][]string // offer -> application -> weeks held
	reserved   map[string]map[string][]string // pupil -> application -> weeks reserved
	applied    map[string]int                 // pupil/offer -> applications submitted
	signedOn   map[string]string              // convention -> hash it was signed on
	oldHashes  []string
	stats      map[string]int // events decided, by type
	refusals   map[string]int // refusals, by rule
	concurrent int            // commands under way at most in this phase
	// crashes: commands cut between two steps; abandoned: commands that
	// gave up on a refused settle step; reconcilers: reconciler runs;
	// repairs: placements a reconciler found unsettled and settled
	crashes, abandoned, reconcilers, repairs int
	// employers who hardly ever answer and pupils who hardly ever
	// confirm, so that deadlines pass
	sleepy   map[string]bool
	hesitant map[string]bool
}

func newWorld(t *testing.T, seed uint64) *world {
	w := &world{
		t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), now: clockStart,
		schools: map[string]*domain.School{}, employers: map[string]*domain.Employer{},
		pupilByID: map[string]*domain.Pupil{}, offerByID: map[string]*domain.Offer{},
		changedPupils: map[string]bool{}, changedOffers: map[string]bool{},
		apps: map[string]*domain.Application{}, convs: map[string]*domain.Convention{},
		held: map[string]map[string][]string{}, reserved: map[string]map[string][]string{},
		applied: map[string]int{}, signedOn: map[string]string{}, stats: map[string]int{}, refusals: map[string]int{},
		sleepy: map[string]bool{}, hesitant: map[string]bool{},
	}
	w.setup()
	return w
}

func (w *world) fail(format string, args ...any) {
	w.t.Helper()
	if debugFile != "" {
		_ = os.WriteFile(debugFile, []byte(strings.Join(w.all, "\n")), 0o644)
	}
	w.t.Fatalf("seed %d, step %d: %s\nlast steps:\n  %s", w.seed, w.steps, fmt.Sprintf(format, args...), strings.Join(w.history, "\n  "))
}

func (w *world) setup() {
	t := w.t
	for _, in := range []domain.RegisterSchoolInput{
		{UAI: "0941001A", Name: "Collège Paul Éluard", Kind: "college", CommuneCode: "94028", EducationPriority: "rep_plus"},
		{UAI: "0941002B", Name: "Collège Simone Veil", Kind: "college", CommuneCode: "94028", EducationPriority: "none"},
		{UAI: "0941003C", Name: "Lycée Léon Blum", Kind: "lycee", CommuneCode: "94028", EducationPriority: "none", QPV: true},
		{UAI: "0941004D", Name: "Lycée Marcelin Berthelot", Kind: "lycee", CommuneCode: "94028", EducationPriority: "none"},
	} {
		w.schools[in.UAI] = newSchool(t, in)
	}
	for i, kind := range []string{"company", "public", "association", "company"} {
		in := employerInput()
		in.Kind, in.Name = kind, fmt.Sprintf("Employeur %d", i)
		var e domain.Employer
		apply(&e, must(t)(domain.RegisterEmployer(fmt.Sprint("emp-", i), in, places))...)
		w.employers[e.Registered.EmployerID] = &e
	}
	uais := slices.Sorted(maps.Keys(w.schools))
	for i := range 60 {
		uai := uais[i%len(uais)]
		school := w.schools[uai]
		grade := "2de"
		if school.Registered.Kind == "college" {
			grade = []string{"4e", "3e"}[w.rng.IntN(2)]
		}
		birth := []string{"2010-09-01", "2011-05-12", "2012-06-16", "2012-01-20"}[w.rng.IntN(4)]
		if grade == "2de" {
			birth = "2010-03-14"
		}
		edit := func(in *domain.RegisterPupilInput) {
			in.BirthDate, in.FirstName = birth, fmt.Sprint("Élève ", i)
			if w.rng.IntN(2) == 0 {
				twoGuardians(in)
			}
		}
		w.pupils = append(w.pupils, newPupilWith(t, fmt.Sprint("pupil-", i), school, grade, edit))
		w.pupilByID[fmt.Sprint("pupil-", i)] = w.pupils[i]
		w.hesitant[fmt.Sprint("pupil-", i)] = w.rng.IntN(4) == 0
	}
	weeks := []string{"2026-W24", week25, week26, week27, week28}
	for i := range 12 {
		in := collegeOfferInput()
		if i%2 == 1 {
			in = lyceeOfferInput()
		}
		first := w.rng.IntN(3)
		in.Weeks = slices.Clone(weeks[first : first+2+w.rng.IntN(2)])
		in.Seats = 1 + w.rng.IntN(3)
		switch i {
		case 2:
			in.Reserved = domain.Reservation{REP: true}
		case 3:
			in.Reserved = domain.Reservation{QPV: true}
		case 4:
			in.FamilyBusiness = true
		case 5:
			in.Reserved = domain.Reservation{Schools: []string{"0941004D"}}
		}
		var o domain.Offer
		emp := w.employers[fmt.Sprint("emp-", i%len(w.employers))]
		apply(&o, must(t)(domain.PostOffer(fmt.Sprint("offer-", i), emp, in, places, clockStart))...)
		w.offers = append(w.offers, &o)
		w.offerByID[o.Posted.OfferID] = &o
		w.held[o.Posted.OfferID] = map[string][]string{}
		w.sleepy[o.Posted.OfferID] = w.rng.IntN(4) == 0
	}
	for _, p := range w.pupils {
		w.reserved[p.Registered.PupilID] = map[string][]string{}
	}
}

// run issues commands and runs their steps, and the reconcilers', until n
// commands were issued and everything under way finished, or the deadline
// passes; it returns the commands issued.
func (w *world) run(n int, deadline time.Time) int {
	issued := 0
	// the clock runs over about four months: deadlines pass, internships start
	mean := float64(120*24*time.Hour) / float64(n)
	for issued < n || len(w.inflight) > 0 || len(w.waiting) > 0 {
		w.wake(issued >= n && len(w.inflight) == 0)
		if issued < n && (len(w.inflight) == 0 || (w.commandsUnderWay() < w.concurrent && w.rng.IntN(2) == 0)) {
			if issued%64 == 0 && time.Now().After(deadline) {
				n = issued // out of time: finish what is under way
				continue
			}
			if issued%400 == 0 {
				// phases of commands one after the other (1) and of
				// several under way at once
				w.concurrent = pick(w.rng, []int{1, 2, 4, 8})
			}
			w.now = w.now.Add(time.Duration(w.rng.ExpFloat64() * mean))
			if p := w.command(); p != nil {
				w.inflight = append(w.inflight, p)
				w.maxInflight = max(w.maxInflight, len(w.inflight))
			}
			issued++
			continue
		}
		i := w.rng.IntN(len(w.inflight))
		p := w.inflight[i]
		step := p.steps[0]
		p.steps = p.steps[1:]
		w.steps++
		w.note("%s (%s)", p.name, p.now.Format("01-02 15:04"))
		step(p)
		if len(p.steps) > 0 && !p.reconciler && w.rng.IntN(max(*invariantsCrashOdds, 1)) == 0 {
			w.crashes++
			w.note("  crash: %d steps dropped", len(p.steps))
			p.steps = nil
			w.reconcile(p.apps)
		}
		if len(p.steps) == 0 {
			w.inflight = slices.Delete(w.inflight, i, i+1)
		}
		w.check()
		if len(w.inflight) == 0 && len(w.waiting) == 0 {
			w.checkSettled(false)
		}
	}
	w.checkAll()
	w.checkSettled(true)
	return issued
}

func (w *world) commandsUnderWay() int {
	n := 0
	for _, p := range w.inflight {
		if !p.reconciler {
			n++
		}
	}
	return n
}

// wake starts the reconcilers whose grace has passed; all of them when
// nothing else would run.
func (w *world) wake(all bool) {
	w.waiting = slices.DeleteFunc(w.waiting, func(p *proc) bool {
		if !all && p.start > w.steps {
			return false
		}
		w.inflight = append(w.inflight, p)
		w.maxInflight = max(w.maxInflight, len(w.inflight))
		return true
	})
}

// reconcile starts, after a grace of a few steps, a reconciler that
// settles the placements of apps.
func (w *world) reconcile(apps []string) {
	apps = slices.Compact(slices.Sorted(slices.Values(apps)))
	if len(apps) == 0 {
		return
	}
	w.reconcilers++
	p := w.proc("reconcile " + strings.Join(apps, " "))
	p.reconciler, p.start = true, w.steps+1+w.rng.IntN(reconcileGrace)
	p.apps = apps
	for _, id := range apps {
		p.steps = append(p.steps, w.settle(id, func(_ *proc, _ *domain.Application, took int) {
			if took > 0 {
				w.repairs++
			}
		}))
	}
	w.note("  reconciler for %v from step %d", apps, p.start)
	w.waiting = append(w.waiting, p)
}

func (w *world) note(format string, args ...any) {
	w.history = append(w.history, fmt.Sprintf("%d: ", w.steps)+fmt.Sprintf(format, args...))
	if debugFile != "" {
		w.all = append(w.all, w.history[len(w.history)-1])
	}
	if len(w.history) > 40 {
		w.history = w.history[1:]
	}
}

func (w *world) proc(name string, steps ...func(*proc)) *proc {
	return &proc{name: name, now: w.now, steps: steps}
}

// placementProc is a command on the placement of application id.
func (w *world) placementProc(name, id string, steps ...func(*proc)) *proc {
	p := w.proc(name, steps...)
	p.apps = []string{id}
	return p
}

// command draws the next command, one that has something to act on.
func (w *world) command() *proc {
	for range 10 {
		if p := w.draw(); p != nil {
			return p
		}
	}
	return nil
}

func (w *world) draw() *proc {
	type weighted struct {
		weight int
		make   func() *proc
	}
	cmds := []weighted{
		{30, w.submit},
		{6, w.markRead},
		{14, w.accept},
		{3, w.reject},
		{12, w.confirm},
		{4, w.withdraw},
		{1, w.cancel},
		{6, w.expire},
		{10, w.complete},
		{25, w.sign},
		{1, w.cancelConvention},
		{2, w.amend},
		{1, w.withdrawOffer},
		{2, w.reopenOffer},
	}
	total := 0
	for _, c := range cmds {
		total += c.weight
	}
	r := w.rng.IntN(total)
	for _, c := range cmds {
		if r < c.weight {
			return c.make()
		}
		r -= c.weight
	}
	panic("unreachable")
}

// decided reports whether a decision succeeded; a refusal must be one of
// the domain's errors, and is counted by rule.
func (w *world) decided(what string, err error) bool {
	w.t.Helper()
	if err == nil {
		return true
	}
	var re *domain.RuleError
	var ve *domain.ValidationError
	switch {
	case errors.As(err, &re):
		w.refusals[re.Rule]++
	case errors.As(err, &ve):
		w.refusals["validation"]++
	case errors.Is(err, domain.ErrConflict):
		w.refusals["conflict"]++
	case errors.Is(err, domain.ErrNotFound):
		w.refusals["not_found"]++
	default:
		w.fail("%s: unexpected error %T %v", what, err, err)
	}
	w.note("  refused: %v", err)
	return false
}

// apply applies events to the aggregate that decided them and keeps the
// record of what the events said.
func (w *world) apply(target applier, evs []domain.Event) {
	w.t.Helper()
	for _, e := range evs {
		target.Apply(e)
		w.stats[e.EventType()]++
		w.note("  %s %+v", e.EventType(), e)
		switch ev := e.(type) {
		case *domain.SeatHeld:
			if _, ok := w.held[ev.OfferID][ev.ApplicationID]; ok {
				w.fail("%s holds a second seat on %s", ev.ApplicationID, ev.OfferID)
			}
			w.held[ev.OfferID][ev.ApplicationID] = ev.Weeks
		case *domain.SeatReleased:
			if _, ok := w.held[ev.OfferID][ev.ApplicationID]; !ok {
				w.fail("%s releases a seat it does not hold on %s", ev.ApplicationID, ev.OfferID)
			}
			delete(w.held[ev.OfferID], ev.ApplicationID)
		case *domain.PupilWeeksReserved:
			w.reserved[ev.PupilID][ev.ApplicationID] = ev.Weeks
		case *domain.PupilWeeksReleased:
			delete(w.reserved[ev.PupilID], ev.ApplicationID)
		case *domain.ApplicationSubmitted:
			key := ev.PupilID + "/" + ev.OfferID
			if w.applied[key]++; w.applied[key] > 1 {
				w.fail("pupil %s applied %d times to offer %s", ev.PupilID, w.applied[key], ev.OfferID)
			}
		case *domain.ConventionCompleted:
			w.oldHashes = append(w.oldHashes, ev.DocumentHash)
		case *domain.ConventionDrafted:
			w.oldHashes = append(w.oldHashes, ev.DocumentHash)
			if w.convs[ev.ConventionID] == nil {
				w.convs[ev.ConventionID] = target.(*domain.Convention)
				w.convIDs = append(w.convIDs, ev.ConventionID)
			}
		}
	}
	if len(evs) > 0 {
		w.touched = append(w.touched, target)
		switch a := target.(type) {
		case *domain.Application:
			w.changedPupils[a.Submitted.PupilID], w.changedOffers[a.Submitted.OfferID] = true, true
		case *domain.Offer:
			w.changedOffers[a.Posted.OfferID] = true
		case *domain.Pupil:
			w.changedPupils[a.Registered.PupilID] = true
		case *domain.Convention:
			w.changedPupils[a.Drafted().PupilID], w.changedOffers[a.Drafted().OfferID] = true, true
		}
	}
	for _, e := range evs {
		ev, ok := e.(*domain.ConventionSigned)
		if !ok {
			continue
		}
		c := target.(*domain.Convention)
		if prev, ok := w.signedOn[ev.ConventionID]; ok {
			w.fail("convention %s signed twice (on %s, then on %s)", ev.ConventionID, prev, ev.DocumentHash)
		}
		if ev.DocumentHash != c.Hash {
			w.fail("convention %s signed on %s, its document is %s", ev.ConventionID, ev.DocumentHash, c.Hash)
		}
		for _, r := range c.Roles {
			if s, ok := c.Signatures[r]; !ok || s.DocumentHash != c.Hash {
				w.fail("convention %s signed without the %s's signature of the current document (%+v)", ev.ConventionID, r, s)
			}
		}
		w.signedOn[ev.ConventionID] = ev.DocumentHash
	}
}

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

func (w *world) offer(id string) *domain.Offer {
	o := w.offerByID[id]
	if o == nil {
		w.fail("no offer %s", id)
	}
	return o
}

func (w *world) pupil(id string) *domain.Pupil {
	p := w.pupilByID[id]
	if p == nil {
		w.fail("no pupil %s", id)
	}
	return p
}

// pickApp draws an application, most often one that ok accepts.
func (w *world) pickApp(ok func(*domain.Application) bool) string {
	if len(w.appIDs) == 0 {
		return ""
	}
	if w.rng.IntN(5) > 0 {
		var good []string
		for _, id := range w.appIDs {
			if ok(w.apps[id]) {
				good = append(good, id)
			}
		}
		if len(good) > 0 {
			return pick(w.rng, good)
		}
	}
	return pick(w.rng, w.appIDs)
}

func (w *world) pickConv(ok func(*domain.Convention) bool) *domain.Convention {
	if len(w.convIDs) == 0 {
		return nil
	}
	if w.rng.IntN(10) > 0 {
		var good []string
		for _, id := range w.convIDs {
			if ok(w.convs[id]) {
				good = append(good, id)
			}
		}
		if len(good) == 0 {
			return nil
		}
		return w.convs[pick(w.rng, good)]
	}
	return w.convs[pick(w.rng, w.convIDs)]
}

func status(s ...string) func(*domain.Application) bool {
	return func(a *domain.Application) bool { return slices.Contains(s, a.Status) }
}

// submit: a pupil applies to an offer for one week (4e, 3e) or one or two
// consecutive weeks (2de); now and then for weeks the offer does not run.
// The application is submitted (the decision), then the placement settled:
// the pupil's record lists it.
func (w *world) submit() *proc {
	pupil, offer := pick(w.rng, w.pupils), pick(w.rng, w.offers)
	for range 3 {
		if slices.Contains(offer.Posted.Grades, pupil.Registered.Grade) {
			break
		}
		offer = pick(w.rng, w.offers)
	}
	weeks := offer.Posted.Weeks
	i := w.rng.IntN(len(weeks))
	chosen := []string{weeks[i]}
	if pupil.Registered.Grade.Lycee() && i+1 < len(weeks) && w.rng.IntN(2) == 0 {
		chosen = append(chosen, weeks[i+1])
	}
	if w.rng.IntN(20) == 0 {
		chosen = []string{pick(w.rng, []string{"2026-W23", "2026-W29", week25, week28})}
	}
	id := offer.Posted.OfferID + "/" + pupil.Registered.PupilID // one stream per pupil and offer
	school := w.schools[pupil.Registered.SchoolUAI]
	return w.placementProc("submit "+id+" "+strings.Join(chosen, "+"), id, func(p *proc) {
		app := w.apps[id]
		if app == nil {
			app = &domain.Application{}
		}
		evs, err := app.Submit(id, offer, pupil, school, domain.SubmitInput{Weeks: chosen, Motivation: "Motivé."}, p.now)
		if !w.decided("submit", err) {
			return
		}
		if w.apps[id] == nil && len(evs) > 0 {
			w.apps[id] = app
			w.appIDs = append(w.appIDs, id)
		}
		w.apply(app, evs)
		p.then(w.settle(id, settled))
	})
}

// answered reports whether the employer of application id answers now.
func (w *world) answered(id string) bool {
	return id != "" && (!w.sleepy[w.apps[id].Submitted.OfferID] || w.rng.IntN(10) == 0)
}

func (w *world) markRead() *proc {
	id := w.pickApp(status(domain.StatusSubmitted))
	if !w.answered(id) {
		return nil
	}
	return w.proc("mark-read "+id, func(p *proc) {
		a := w.apps[id]
		evs, err := a.MarkRead()
		if w.decided("mark-read", err) {
			w.apply(a, evs)
		}
	})
}

func (w *world) reject() *proc {
	id := w.pickApp(status(domain.StatusSubmitted, domain.StatusRead))
	if !w.answered(id) {
		return nil
	}
	return w.placementProc("reject "+id, id, w.end(id, func(a *domain.Application) ([]domain.Event, error) {
		return a.Reject("Plus de place.")
	}))
}

// accept: the command reads the application, which may be accepted; the
// offer holds a seat for it (the decision); then the placement is settled:
// the application is accepted, or the seat released if it ended meanwhile.
func (w *world) accept() *proc {
	id := w.pickApp(status(domain.StatusSubmitted, domain.StatusRead))
	if !w.answered(id) {
		return nil
	}
	return w.placementProc("accept "+id, id, func(p *proc) {
		loaded := *w.apps[id]
		if !w.decided("accept", loaded.CanAccept()) {
			return
		}
		p.then(func(p *proc) {
			offer := w.offer(loaded.Submitted.OfferID)
			evs, err := offer.HoldSeat(&loaded)
			if !w.decided("hold", err) {
				return
			}
			w.apply(offer, evs)
			p.then(w.settle(id, func(p *proc, a *domain.Application, _ int) {
				if !a.HoldsSeat() {
					w.decided("accept", domain.Refuse("wrong_status", "the application was %s while it was being accepted", a.Status))
				}
			}))
		})
	})
}

// confirm: the command reads the application, which must be accepted; the
// pupil reserves its weeks (the decision: of two overlapping
// confirmations, one wins); then the placement is settled: the application
// is confirmed, its convention drafted and the pupil's other pending
// applications for those weeks withdrawn, or the weeks released if it
// ended meanwhile.
func (w *world) confirm() *proc {
	id := w.pickApp(status(domain.StatusAccepted))
	if id == "" || (w.hesitant[w.apps[id].Submitted.PupilID] && w.rng.IntN(10) > 0) {
		return nil
	}
	return w.placementProc("confirm "+id, id, func(p *proc) {
		loaded := *w.apps[id]
		if loaded.Status != domain.StatusAccepted && loaded.Status != domain.StatusConfirmed {
			_, err := loaded.Confirm("")
			w.decided("confirm", err)
			return
		}
		p.then(func(p *proc) {
			pupil := w.pupil(loaded.Submitted.PupilID)
			evs, err := pupil.ReserveWeeks(&loaded)
			if !w.decided("reserve", err) {
				return
			}
			w.apply(pupil, evs)
			p.then(w.settle(id, func(p *proc, a *domain.Application, _ int) {
				if a.Status != domain.StatusConfirmed {
					w.decided("confirm", domain.Refuse("wrong_status", "the application was %s while it was being confirmed", a.Status))
				}
			}))
		})
	})
}

func (w *world) withdraw() *proc {
	id := w.pickApp(status(domain.StatusSubmitted, domain.StatusRead, domain.StatusAccepted, domain.StatusConfirmed))
	if id == "" {
		return nil
	}
	p := w.placementProc("withdraw "+id, id)
	p.steps = []func(*proc){w.end(id, func(a *domain.Application) ([]domain.Event, error) {
		return a.Withdraw("Je préfère un autre stage.", p.now)
	})}
	return p
}

func (w *world) cancel() *proc {
	id := w.pickApp(status(domain.StatusAccepted, domain.StatusConfirmed))
	if id == "" {
		return nil
	}
	return w.placementProc("cancel "+id, id, w.end(id, func(a *domain.Application) ([]domain.Event, error) {
		return a.Cancel("Fermeture")
	}))
}

// expire: the scheduler asks every application that may be due.
func (w *world) expire() *proc {
	id := w.pickApp(status(domain.StatusSubmitted, domain.StatusRead, domain.StatusAccepted))
	if id == "" {
		return nil
	}
	p := w.placementProc("expire "+id, id)
	p.steps = []func(*proc){w.end(id, func(a *domain.Application) ([]domain.Event, error) {
		return a.Expire(p.now), nil
	})}
	return p
}

// end is the decision of a command on the application (reject, withdraw,
// cancel, expire), then the settling of its placement: whatever an ended
// application held is released.
func (w *world) end(id string, decide func(*domain.Application) ([]domain.Event, error)) func(*proc) {
	return func(p *proc) {
		a := w.apps[id]
		evs, err := decide(a)
		if !w.decided("end "+id, err) {
			return
		}
		w.apply(a, evs)
		p.then(w.settle(id, settled))
	}
}

func (w *world) complete() *proc {
	c := w.pickConv(func(c *domain.Convention) bool { return !c.Cancelled && !c.Signed })
	if c == nil {
		return nil
	}
	in := schoolPart(w.rng.IntN(2) == 0)
	if w.rng.IntN(2) == 0 {
		in = employerPart()
		in.Activities = pick(w.rng, []string{"Accueil.", "Vente.", "Atelier."})
	}
	return w.proc("complete "+c.Drafted().ConventionID+" by "+in.Party, func(p *proc) {
		evs, err := c.CompleteParty(in)
		if w.decided("complete", err) {
			w.apply(c, evs)
		}
	})
}

// sign: mostly a required role signing the current document; now and then
// another role, another signer or a version the signer saw earlier.
func (w *world) sign() *proc {
	c := w.pickConv(func(c *domain.Convention) bool { return !c.Cancelled && !c.Signed && c.Complete() })
	if c == nil {
		return nil
	}
	roles := []domain.Role{domain.RoleEmployer, domain.RoleSchoolHead, domain.RolePupil, domain.RoleGuardian, domain.RoleSecondGuardian}
	role := pick(w.rng, roles)
	if missing := c.MissingRoles(); len(missing) > 0 && w.rng.IntN(10) > 0 {
		role = pick(w.rng, missing)
	}
	name := signers[role]
	if w.rng.IntN(15) == 0 {
		name = "Quelqu'un d'autre"
	}
	hash := c.Hash // what the signer saw when the command was issued
	if w.rng.IntN(10) == 0 && len(w.oldHashes) > 0 {
		hash = pick(w.rng, w.oldHashes)
	}
	return w.proc(fmt.Sprintf("sign %s as %s", c.Drafted().ConventionID, role), func(p *proc) {
		evs, err := c.Sign(domain.SignInput{Role: string(role), SignerName: name, DocumentHash: hash}, p.now)
		if w.decided("sign", err) {
			w.apply(c, evs)
		}
	})
}

// cancelConvention: the convention is cancelled (the decision), then the
// placement settled: the application is cancelled and gives back what it
// held.
func (w *world) cancelConvention() *proc {
	c := w.pickConv(func(c *domain.Convention) bool { return !c.Cancelled })
	if c == nil {
		return nil
	}
	id := c.Drafted().ApplicationID
	return w.placementProc("cancel convention "+c.Drafted().ConventionID, id, func(p *proc) {
		evs, err := c.Cancel("Le stage n'aura pas lieu.")
		if !w.decided("cancel convention", err) {
			return
		}
		w.apply(c, evs)
		p.then(w.settle(id, settled))
	})
}

// amend: the seats go up or down, or a week is added or removed.
func (w *world) amend() *proc {
	o := pick(w.rng, w.offers)
	var in domain.AmendOfferInput
	switch w.rng.IntN(3) {
	case 0:
		in.Seats = ptr(1 + w.rng.IntN(3))
	case 1:
		weeks := slices.Clone(o.Posted.Weeks)
		if len(weeks) > 1 {
			i := w.rng.IntN(len(weeks))
			weeks = slices.Delete(weeks, i, i+1)
		}
		in.Weeks = weeks
	default:
		in.Weeks = slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(o.Posted.Weeks),
			pick(w.rng, []string{"2026-W24", week25, week26, week27, week28})))))
	}
	return w.proc(fmt.Sprintf("amend %s seats=%v weeks=%v", o.Posted.OfferID, in.Seats, in.Weeks), func(p *proc) {
		evs, err := o.Amend(in, w.now)
		if w.decided("amend", err) {
			w.apply(o, evs)
		}
	})
}

// withdrawOffer: the offer is withdrawn; the command settles nothing, the
// reconciler closes the applications the employer had not answered.
func (w *world) withdrawOffer() *proc {
	o := pick(w.rng, w.offers)
	return w.proc("withdraw offer "+o.Posted.OfferID, func(p *proc) {
		evs, err := o.Withdraw("Pause.")
		if !w.decided("withdraw offer", err) || len(evs) == 0 {
			return
		}
		w.apply(o, evs)
		var apps []string
		for _, id := range w.appIDs {
			if w.apps[id].Submitted.OfferID == o.Posted.OfferID {
				apps = append(apps, id)
			}
		}
		w.reconcile(apps)
	})
}

func (w *world) reopenOffer() *proc {
	o := pick(w.rng, w.offers)
	return w.proc("reopen offer "+o.Posted.OfferID, func(p *proc) {
		evs, err := o.Reopen()
		if w.decided("reopen offer", err) {
			w.apply(o, evs)
		}
	})
}

// check verifies, after a step, the invariants of the aggregates it
// changed (the others cannot have changed).
func (w *world) check() {
	w.t.Helper()
	for _, a := range w.touched {
		switch a := a.(type) {
		case *domain.Offer:
			w.checkOffer(a)
		case *domain.Pupil:
			w.checkPupil(a)
		case *domain.Convention:
			w.checkConvention(a)
		}
	}
	w.touched = w.touched[:0]
}

// checkAll verifies the invariants of every aggregate.
func (w *world) checkAll() {
	w.t.Helper()
	for _, o := range w.offers {
		w.checkOffer(o)
	}
	for _, p := range w.pupils {
		w.checkPupil(p)
	}
	for _, id := range w.convIDs {
		w.checkConvention(w.convs[id])
	}
}

// checkOffer: held seats never exceed the seats of any week, and only
// weeks the offer runs have seats held.
func (w *world) checkOffer(o *domain.Offer) {
	w.t.Helper()
	id := o.Posted.OfferID
	count := map[string]int{}
	for app, weeks := range w.held[id] {
		if !o.Holds(app) {
			w.fail("offer %s: SeatHeld for %s, but the offer does not hold it", id, app)
		}
		for _, wk := range weeks {
			count[wk]++
		}
	}
	for wk, n := range count {
		if n > o.Posted.Seats {
			w.fail("offer %s: %d seats held in week %s, it has %d", id, n, wk, o.Posted.Seats)
		}
		if !slices.Contains(o.Posted.Weeks, wk) {
			w.fail("offer %s: %d seats held in week %s, which it no longer runs (%v)", id, n, wk, o.Posted.Weeks)
		}
	}
	for _, wk := range o.Posted.Weeks {
		if free := o.Free(wk); free != o.Posted.Seats-count[wk] || free < 0 {
			w.fail("offer %s: Free(%s) = %d with %d seats and %d held", id, wk, free, o.Posted.Seats, count[wk])
		}
	}
}

// checkPupil: a pupil never has two reserved placements on overlapping
// weeks, and applies at most once to an offer.
func (w *world) checkPupil(p *domain.Pupil) {
	w.t.Helper()
	id := p.Registered.PupilID
	if !maps.EqualFunc(p.Reserved, w.reserved[id], slices.Equal) {
		w.fail("pupil %s: reserved %v, the events say %v", id, p.Reserved, w.reserved[id])
	}
	apps := slices.Sorted(maps.Keys(p.Reserved))
	for i, a := range apps {
		for _, b := range apps[i+1:] {
			if domain.Overlaps(p.Reserved[a], p.Reserved[b]) {
				w.fail("pupil %s has overlapping placements %s %v and %s %v", id, a, p.Reserved[a], b, p.Reserved[b])
			}
		}
	}
	offers := map[string]string{}
	for app := range p.Applications {
		offer := w.apps[app].Submitted.OfferID
		if other, ok := offers[offer]; ok {
			w.fail("pupil %s has two applications to offer %s: %s and %s", id, offer, other, app)
		}
		offers[offer] = app
	}
}

// checkConvention: a convention is signed exactly when every required
// role signed its current version; a signed one never changes again.
func (w *world) checkConvention(c *domain.Convention) {
	w.t.Helper()
	id := c.Drafted().ConventionID
	roles := slices.Clone(domain.RequiredRoles)
	if c.Terms.BothGuardians && c.Drafted().GuardianCount > 1 {
		roles = append(roles, domain.RoleSecondGuardian)
	}
	if !slices.Equal(c.Roles, roles) {
		w.fail("convention %s requires %v, want %v", id, c.Roles, roles)
	}
	for r, s := range c.Signatures {
		if s.DocumentHash != c.Hash || !slices.Contains(c.Roles, r) {
			w.fail("convention %s keeps a signature %+v that is not of its current version %s", id, s, c.Hash)
		}
	}
	if complete := len(c.MissingRoles()) == 0; c.Signed != complete {
		w.fail("convention %s: signed=%v, missing roles %v", id, c.Signed, c.MissingRoles())
	}
	if c.Signed && c.Hash != w.signedOn[id] {
		w.fail("convention %s changed after it was signed on %s: now %s", id, w.signedOn[id], c.Hash)
	}
	if c.Hash != domain.DocumentHash(c.Terms) {
		w.fail("convention %s: hash %s is not the hash of its terms", id, c.Hash)
	}
}

// maxSettleSteps bounds the steps of one settle, as the command layer's
// maxSteps does: a placement settles in at most five, plus one per
// overlapping application withdrawn.
const maxSettleSteps = 64

// settle is the command layer's settle of application id (Service.settle):
// read what each aggregate holds for it, then have the aggregate of the
// step Next names decide that step, until Next has none; then done, with
// the application as last read and the number of steps taken. The read and
// the decision are two steps: in the command layer, other commands' appends
// may come between them. A refused step ends the command (the command layer
// returns the error) and leaves its placements to the reconciler.
func (w *world) settle(id string, done func(p *proc, a *domain.Application, took int)) func(*proc) {
	took := 0
	var read func(*proc)
	read = func(p *proc) {
		app, st := w.placement(id)
		step, ok := st.Next()
		if !ok {
			done(p, app, took)
			return
		}
		if took++; took > maxSettleSteps {
			w.fail("application %s: placement not settled after %d steps", id, maxSettleSteps)
		}
		w.note("  next for %s: %s %s (%s)", id, step.Kind, step.Target, step.Reason)
		p.then(func(p *proc) {
			if !w.take(p, app, step) {
				w.abandon(p)
				return
			}
			if step.Kind == domain.StepWithdrawOther {
				// the other application has ended: it gives back what it
				// held, then this placement goes on
				p.apps = append(p.apps, step.Target)
				p.then(w.settle(step.Target, settled), read)
				return
			}
			p.then(read)
		})
	}
	return read
}

func settled(*proc, *domain.Application, int) {}

// abandon stops a command whose settle step was refused (the command
// layer returns the error) or a reconciler's run (the real one tries again
// later): a reconciler settles what it leaves.
func (w *world) abandon(p *proc) {
	w.abandoned++
	w.note("  abandoned: %d steps dropped", len(p.steps))
	p.steps = nil
	w.reconcile(p.apps)
}

// take is one step of the placement process (Service.take): the decision
// of the step's aggregate, at its latest state, with the application as
// last read. It reports whether the step was decided.
func (w *world) take(p *proc, app *domain.Application, step domain.Step) bool {
	sub := app.Submitted
	c := domain.StepContext{Application: app, ConventionID: conventionID(sub.ApplicationID), Now: p.now}
	switch step.Kind {
	case domain.StepEndForOffer:
		c.Offer = w.offer(sub.OfferID)
	case domain.StepDraft:
		c.Draft = w.parties(app)
	}
	var target applier
	switch step.Kind.On() {
	case "pupil":
		target = w.pupil(sub.PupilID)
	case "offer":
		target = w.offer(sub.OfferID)
	case "convention":
		c := w.convs[app.ConventionID]
		if c == nil {
			c = &domain.Convention{} // registered by its ConventionDrafted
		}
		target = c
	default:
		target = w.apps[step.Target]
	}
	evs, err := step.Decide(target, c)
	if !w.decided(string(step.Kind), err) {
		return false
	}
	w.apply(target, evs)
	return true
}

// placement is what each aggregate holds for application id, read as
// Service.placement reads it, with the application as read.
func (w *world) placement(id string) (*domain.Application, domain.PlacementState) {
	a := w.apps[id]
	if a == nil || !a.Exists() {
		return a, domain.PlacementState{ApplicationID: id}
	}
	app := *a
	st := domain.PlacementState{ApplicationID: id, Status: app.Status, Weeks: app.Submitted.Weeks}
	offer := w.offer(app.Submitted.OfferID)
	st.SeatHeld, st.OfferWithdrawn = offer.Holds(id), offer.Withdrawn
	pupil := w.pupil(app.Submitted.PupilID)
	_, st.Tracked = pupil.Applications[id]
	_, st.WeeksHeld = pupil.Reserved[id]
	st.PupilForgotten = pupil.Forgotten
	if c := w.convs[app.ConventionID]; app.ConventionID != "" && c != nil {
		st.Convention = domain.PlacementConventionLive
		if c.Cancelled {
			st.Convention = domain.PlacementConventionCancelled
		}
	}
	if app.Pending() {
		for other, weeks := range pupil.Reserved {
			if other != id && domain.Overlaps(weeks, app.Submitted.Weeks) && w.apps[other].Status == domain.StatusConfirmed {
				st.ConfirmedRival = true
			}
		}
	}
	if app.Status == domain.StatusConfirmed {
		for _, other := range pupil.OverlappingApplications(id, app.Submitted.Weeks) {
			if w.apps[other].Pending() {
				st.OverlappingPending = append(st.OverlappingPending, other)
			}
		}
	}
	return &app, st
}

// parties are what a convention's draft names (Service.parties).
func (w *world) parties(app *domain.Application) domain.DraftInput {
	return domain.DraftInput{Application: app, Offer: w.offer(app.Submitted.OfferID), Employer: w.employers[app.Submitted.EmployerID],
		School: w.schools[app.Submitted.SchoolUAI], Pupil: w.pupil(app.Submitted.PupilID)}
}

func conventionID(applicationID string) string { return "conv/" + applicationID }

// checkSettled verifies, when nothing is under way, that every placement
// is settled: Next has no step for it and Broken is empty. It also checks
// what settled means from the aggregates alone, so that a rule missing from
// Next fails too: the pupil's record lists every application not ended;
// seats and weeks are held for exactly the applications that should hold
// them; a confirmed application has a live convention and no pending rival
// for its weeks; a withdrawn offer has no application the employer has not
// answered; every convention not cancelled belongs to a confirmed
// application. Unless all, it checks only the placements whose pupil or
// offer changed since it last ran.
func (w *world) checkSettled(all bool) {
	w.t.Helper()
	changed := func(a *domain.Application) bool {
		return all || w.changedPupils[a.Submitted.PupilID] || w.changedOffers[a.Submitted.OfferID]
	}
	defer clear(w.changedPupils)
	defer clear(w.changedOffers)
	byPupil := map[string][]*domain.Application{}
	for _, id := range w.appIDs {
		if a := w.apps[id]; changed(a) {
			byPupil[a.Submitted.PupilID] = append(byPupil[a.Submitted.PupilID], a)
		}
	}
	for _, id := range w.appIDs {
		a := w.apps[id]
		if !changed(a) {
			continue
		}
		_, st := w.placement(id)
		if step, ok := st.Next(); ok {
			w.fail("application %s (%s) is not settled with nothing under way: next %s on %s (%s); %+v",
				id, a.Status, step.Kind, step.Target, step.Reason, st)
		}
		if broken := st.Broken(); len(broken) > 0 {
			w.fail("application %s: settled, yet %s; %+v", id, strings.Join(broken, "; "), st)
		}
		offer, pupil := w.offer(a.Submitted.OfferID), w.pupil(a.Submitted.PupilID)
		if _, ok := pupil.Applications[id]; !ok && (a.Pending() || a.Status == domain.StatusConfirmed) {
			w.fail("application %s (%s) is not listed on the pupil's record", id, a.Status)
		}
		if offer.Holds(id) != a.HoldsSeat() {
			w.fail("application %s is %s; its offer holds a seat for it: %v", id, a.Status, offer.Holds(id))
		}
		if _, reserved := pupil.Reserved[id]; reserved != (a.Status == domain.StatusConfirmed) {
			w.fail("application %s is %s; the pupil's weeks are reserved for it: %v", id, a.Status, reserved)
		}
		if unanswered := a.Status == domain.StatusSubmitted || a.Status == domain.StatusRead; unanswered && offer.Withdrawn {
			w.fail("application %s is %s, its offer %s is withdrawn", id, a.Status, offer.Posted.OfferID)
		}
		if a.Status != domain.StatusConfirmed {
			continue
		}
		if c := w.convs[a.ConventionID]; c == nil || c.Cancelled {
			w.fail("application %s is confirmed without a live convention %s", id, a.ConventionID)
		}
		for _, o := range byPupil[a.Submitted.PupilID] {
			if o.Pending() && domain.Overlaps(o.Submitted.Weeks, a.Submitted.Weeks) {
				w.fail("application %s is confirmed, yet %s (%s) of the same pupil for the same weeks is still pending",
					id, o.Submitted.ApplicationID, o.Status)
			}
		}
	}
	for _, id := range w.convIDs {
		c := w.convs[id]
		if a := w.apps[c.Drafted().ApplicationID]; changed(a) && !c.Cancelled && a.Status != domain.StatusConfirmed {
			w.fail("convention %s is %s, its application %s is %s", id, c.Status(), a.Submitted.ApplicationID, a.Status)
		}
	}
}
