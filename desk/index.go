// Package desk is the one-stop desk's index: schools, pupils and offers as
// the log tells them, folded in memory and followed live, so the questions
// of the desk (which offers may this pupil take, which pupils may take this
// offer, who has the fewest) are answered in a few milliseconds over a
// whole country. Eligibility is the domain's own rules (domain.Reservation
// Admits, AgeAllows, PeriodFits, Started, Overlaps); the index only keeps
// what they need: no name, only a birth date for the age rule.
package desk

import (
	"encoding/binary"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"passerelle/domain"
	"passerelle/eventstore"
)

// DefaultMaxDistanceKM is how far from their school a pupil without wishes
// is offered internships.
const DefaultMaxDistanceKM = 20

// defaultReach is DefaultMaxDistanceKM's reach.
var defaultReach = domain.ReachOf(DefaultMaxDistanceKM)

// Index is the desk's view of the log. It is safe for concurrent use:
// folds take the write lock, queries the read lock.
type Index struct {
	mu       sync.RWMutex
	pos      eventstore.Position
	places   domain.Places
	clock    func() time.Time
	schools  map[string]*school
	pupils   pupilMap
	offers   map[string]*offer
	offerAt  grid[*offer]
	schoolAt grid[*school]
	// farAt[i] holds the schools whose pupils look as far as
	// farReach[i], for every grade (see schoolsNear)
	farAt [len(farReach)]grid[*school]
	weeks weekTable
	// reach is the farthest any pupil looks (max of their distances): an
	// offer's pupils are among the schools that close.
	reach float64
	// counted: each pupil's eligible offers are counted and kept up to
	// date as events come (off while the log is first read).
	counted bool
	// ticking lets one Tick run at a time; turning are the weeks whose
	// start the one under way changes, by week, for its lagging offers.
	ticking sync.Mutex
	turning []bool
	changed chan struct{} // closed and replaced whenever pos moves
	// proposals are the live proposals by application (a round's or the
	// desk's, not answered yet), seats the pupils holding an offer's seat
	// by application (accepted or confirmed): what rounds leave out.
	proposals map[string]*proposal
	seats     map[string]*pupil
	// snapFile is where Follow keeps a snapshot ("": none), sealer what
	// seals the birth dates it holds (see SnapshotTo).
	snapFile string
	sealer   Sealer
	savedAt  eventstore.Position // of the snapshot last saved or loaded
	// strs, gradeLists and strLists keep one copy of what offers and
	// pupils repeat (see intern)
	strs       map[string]string
	gradeLists map[string][]domain.Grade
	strLists   map[string][]string
}

// intern returns the index's copy of v. Employers, kinds, sectors,
// communes, départements and grades repeat across offers and pupils, and
// each decoded event brings its own copy: the index keeps one, so that
// the collector finds one object where it found one per offer
// (BenchmarkIndexHeap).
func (ix *Index) intern(v string) string {
	if c, ok := ix.strs[v]; ok {
		return c
	}
	if ix.strs == nil {
		ix.strs = map[string]string{}
	}
	c := strings.Clone(v) // not a view into a larger buffer
	ix.strs[c] = c
	return c
}

// wishes is what the index keeps of pupil p's wishes: their strings its
// own (see intern; the offers' ids the offers'), not the event's.
func (ix *Index) wishes(p *pupil, ev *domain.PupilWishesRecorded) *domain.PupilWishesRecorded {
	own := func(vs []string, of func(string) string) []string {
		if len(vs) == 0 {
			return nil
		}
		out := make([]string, len(vs))
		for i, v := range vs {
			out[i] = of(v)
		}
		return out
	}
	offer := func(id string) string {
		if o := ix.offers[id]; o != nil {
			return o.id
		}
		return id // not interned: a wish may name any id
	}
	return &domain.PupilWishesRecorded{Sectors: ix.strList(ev.Sectors), MaxDistanceKM: ev.MaxDistanceKM,
		Weeks: ix.strList(ev.Weeks), Offers: own(ev.Offers, offer)}
}

// strList returns the index's list of these strings, in their order (see
// intern), nil for none: pupils wish for the same few sectors and weeks,
// and a list each was 140,000 objects nationally; none may change it.
func (ix *Index) strList(vs []string) []string {
	if len(vs) == 0 {
		return nil
	}
	return sharedList(ix, &ix.strLists, vs)
}

// grades returns the index's list of these grades, in their order (see
// intern): the offers share a few; none may change it.
func (ix *Index) grades(gs []domain.Grade) []domain.Grade {
	return sharedList(ix, &ix.gradeLists, gs)
}

// sharedList returns the list of lists equal to vs, adding vs, its
// strings interned, when none is.
func sharedList[T ~string](ix *Index, lists *map[string][]T, vs []T) []T {
	var kb [64]byte
	key := kb[:0]
	for _, v := range vs {
		key = append(append(key, v...), 0)
	}
	if l, ok := (*lists)[string(key)]; ok {
		return l
	}
	if *lists == nil {
		*lists = map[string][]T{}
	}
	l := make([]T, len(vs))
	for i, v := range vs {
		l[i] = T(ix.intern(string(v)))
	}
	(*lists)[string(key)] = l
	return l
}

// proposal is an application made on a pupil's behalf that awaits the
// employer's answer: a round counts its seat as taken.
type proposal struct {
	p     *pupil
	o     *offer
	weeks []int32
}

type school struct {
	reg      domain.SchoolRegistered
	group    string // see priority
	lat, lon float64
	pupils   []*pupil
	cell     int // index in its cell of schoolAt
	// far is 1 + the index in farReach of the farthest its pupils look,
	// 0 when none looks farther than DefaultMaxDistanceKM; farCell its
	// index in its cell of farAt[far-1]
	far, farCell int
	// cohorts keep the counts of its pupils without a placement (when
	// counted)
	cohorts []*cohort
}

// cohort is the pupils of a school without a placement who may take the
// same offers but for those they applied to: one grade, one reach, the
// same wished weeks, old enough from the same week on. An offer's change
// moves the cohort's count once, not each pupil's: around a city an offer
// walks a few cohorts per school rather than every pupil within reach.
type cohort struct {
	grade domain.Grade
	bit   uint8 // the grade's (gradeBit)
	// its pupils' reach, with its bounds: a school's distance from an
	// offer is compared with the reach of each of its cohorts, and working
	// the bounds out at each comparison was close to a third of following
	// an offer (BenchmarkFollowOffer)
	reach     domain.Reach
	wishWeeks []int32 // as its pupils'
	// oldFrom is the start (Unix seconds) of the first week its pupils
	// are 14 on, 0 for every week not started (or a birth date unknown)
	oldFrom int64
	// its pupils (see pupil.inCohort): the first, then the others, so
	// that most cohorts, of one pupil, hold no list (a list each was
	// 600,000 of the national index's 6.8 million objects)
	first *pupil
	more  []*pupil
	slot  int // index in school.cohorts
	// n counts the offers its pupils may take, those they applied to
	// included (see Index.eligible)
	n int
	// applied is at least the offers any of its pupils applied to (it
	// only grows): none of them may take fewer than n-applied
	applied int
}

type pupil struct {
	id     pupilID
	school *school
	grade  domain.Grade
	birth  time.Time // zero: unknown or erased (the age rule cannot apply)
	// fourteen is when the pupil is 14 (Unix seconds; see fourteenOf):
	// one number instead of a list by week, which every pupil had
	// extended whenever a week appeared
	fourteen  int64
	wishes    *domain.PupilWishesRecorded
	wishWeeks []int32 // wished weeks, interned and sorted; nil: any week
	reach     float64 // how far from their school the pupil can go
	// confirmed placements, in the order confirmed: none for most, one
	// or two once placed (a map of them and a list of all their weeks
	// beside it were 420,000 objects and 117 MiB of the national index)
	confirmed []placement
	applied   []*offer // offers applied to: one application per offer
	cohort    *cohort  // holds the pupil's count (see Index.eligible); nil when placed
	inCohort  int      // 0: cohort.first, else 1 + its index in cohort.more
	slot      int      // index in school.pupils
	proposed  int      // live proposals (see Index.proposals)
	holding   int      // seats held for them (see Index.seats)
}

type offer struct {
	id, employerID, employerName, title string
	kind, sector, commune, department   string
	grades                              []domain.Grade
	gradeSet                            uint8   // gradeBit of each grade
	ageRule                             bool    // domain.AgeRuleApplies
	weeks                               []int32 // interned, sorted
	held                                []int   // seats held, by week
	seats                               int
	reserved                            domain.Reservation
	lat, lon                            float64
	open                                bool
	// lagging: a Tick under way has not moved the offer's counts yet
	lagging bool
	// collective: the offer hosts groups its pupils' schools book; it is
	// never open to one pupil, so the desk leaves it out.
	collective bool
}

func gradeBit(g domain.Grade) uint8 {
	switch g {
	case domain.Grade4e:
		return 1
	case domain.Grade3e:
		return 2
	case domain.Grade2de:
		return 4
	}
	return 0
}

// allGrades matches every grade in a grid.
const allGrades = 0xff

func gradeSet(grades []domain.Grade) uint8 {
	var set uint8
	for _, g := range grades {
		set |= gradeBit(g)
	}
	return set
}

// New is an empty index; places locates schools (the centre of their
// commune), clock says which weeks have started.
func New(places domain.Places, clock func() time.Time) *Index {
	if clock == nil {
		clock = time.Now
	}
	ix := &Index{places: places, clock: clock, schools: map[string]*school{}, pupils: newPupilMap(),
		offers: map[string]*offer{}, offerAt: grid[*offer]{}, schoolAt: grid[*school]{}, reach: DefaultMaxDistanceKM,
		changed: make(chan struct{}), proposals: map[string]*proposal{}, seats: map[string]*pupil{}}
	ix.weeks.now = clock()
	return ix
}

// Position is the last position of the log the index has applied.
func (ix *Index) Position() eventstore.Position {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.pos
}

// Apply folds events in log order; it is Fold for one batch, under the
// write lock.
func (ix *Index) Apply(evs ...Event) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, e := range evs {
		ix.apply(e)
	}
	ix.notify()
}

// Event is one event of the log, decoded (nil Data: one the index does
// not fold, which still moves its position).
type Event struct {
	Position eventstore.Position
	Data     domain.Event
}

func (ix *Index) notify() {
	close(ix.changed)
	ix.changed = make(chan struct{})
}

func (ix *Index) apply(e Event) {
	ix.pos = max(ix.pos, e.Position)
	switch ev := e.Data.(type) {
	case *domain.SchoolRegistered:
		ix.addSchool(ev)
	case *domain.PupilRegistered:
		ix.addPupil(ev)
	case *domain.PupilForgotten:
		ix.forget(ev.PupilID)
	case *domain.PupilWishesRecorded, *domain.PupilApplied, *domain.PupilWeeksReserved, *domain.PupilWeeksReleased:
		ix.applyPupil(ev)
	case *domain.OfferPosted:
		ix.addOffer(ev)
	case *domain.OfferAmended, *domain.OfferWithdrawn, *domain.OfferReopened, *domain.SeatHeld, *domain.SeatReleased:
		ix.applyOffer(ev)
	case *domain.ApplicationSubmitted:
		ix.propose(ev)
	case *domain.ApplicationAccepted:
		ix.answered(ev.ApplicationID) // the seat it holds counts from now (SeatHeld)
	case *domain.ApplicationRejected:
		ix.answered(ev.ApplicationID)
	case *domain.ApplicationWithdrawn:
		ix.answered(ev.ApplicationID)
	case *domain.ApplicationCancelled:
		ix.answered(ev.ApplicationID)
	case *domain.ApplicationExpired:
		ix.answered(ev.ApplicationID)
	case *domain.ApplicationOfferWithdrawn:
		ix.answered(ev.ApplicationID)
	}
}

// propose keeps a proposal (not a group booking's application, whose seat
// is held already) until it is answered.
func (ix *Index) propose(ev *domain.ApplicationSubmitted) {
	p, o := ix.pupils.get(ev.PupilID), ix.offers[ev.OfferID]
	if ev.ProposedBy == nil || ev.BookingID != "" || p == nil || o == nil || ix.proposals[ev.ApplicationID] != nil {
		return
	}
	ix.proposals[ev.ApplicationID] = &proposal{p: p, o: o, weeks: ix.weeks.ids(ev.Weeks)}
	p.proposed++
}

// answered ends a live proposal, if the application is one.
func (ix *Index) answered(applicationID string) {
	if pr := ix.proposals[applicationID]; pr != nil {
		pr.p.proposed--
		delete(ix.proposals, applicationID)
	}
}

// held records who holds a seat for an application (held) until it is
// released.
func (ix *Index) held(applicationID, pupilID string, held bool) {
	switch p := ix.seats[applicationID]; {
	case held && p == nil:
		if p = ix.pupils.get(pupilID); p != nil {
			ix.seats[applicationID] = p
			p.holding++
		}
	case !held && p != nil:
		p.holding--
		delete(ix.seats, applicationID)
	}
}

func (ix *Index) addSchool(ev *domain.SchoolRegistered) {
	if _, ok := ix.schools[ev.UAI]; ok {
		return
	}
	lat, lon, _ := ix.places.CommuneCentre(ev.CommuneCode)
	s := &school{reg: *ev, lat: lat, lon: lon}
	s.group, _ = priority(s.reg)
	ix.schools[ev.UAI] = s
	s.cell = ix.schoolAt.add(lat, lon, 0, s) // the grades of its pupils, as they come
}

func (ix *Index) addPupil(ev *domain.PupilRegistered) {
	s := ix.schools[ev.SchoolUAI]
	if s == nil || ix.pupils.get(ev.PupilID) != nil {
		return
	}
	p := &pupil{id: idOf(ev.PupilID), school: s, grade: domain.Grade(ix.intern(string(ev.Grade))), reach: DefaultMaxDistanceKM,
		slot: len(s.pupils)}
	if bd, err := domain.ParseDate(ev.BirthDate); err == nil {
		p.birth = bd
	}
	p.fourteen = fourteenOf(p.birth)
	s.pupils = append(s.pupils, p)
	ix.schoolAt.addGrades(s.lat, s.lon, s.cell, gradeBit(p.grade))
	ix.pupils.put(p)
	ix.recount(p)
}

// forget drops a forgotten pupil: nobody can apply in their name.
func (ix *Index) forget(id string) {
	p := ix.pupils.get(id)
	if p == nil {
		return
	}
	ix.leave(p)
	s := p.school
	last := s.pupils[len(s.pupils)-1]
	s.pupils[p.slot], last.slot = last, p.slot
	s.pupils = s.pupils[:len(s.pupils)-1]
	ix.pupils.remove(p)
}

func (ix *Index) applyPupil(e domain.Event) {
	var p *pupil
	switch ev := e.(type) {
	case *domain.PupilWishesRecorded:
		if p = ix.pupils.get(ev.PupilID); p != nil {
			p.wishes, p.wishWeeks, p.reach = ix.wishes(p, ev), nil, float64(ev.MaxDistanceKM)
			if len(ev.Weeks) > 0 {
				p.wishWeeks = ix.weeks.ids(ev.Weeks)
			}
			ix.lookFar(p)
		}
	case *domain.PupilApplied:
		o := ix.offers[ev.OfferID]
		if p = ix.pupils.get(ev.PupilID); p != nil && o != nil && !slices.Contains(p.applied, o) {
			// the pupil may take o no more, and nothing else changed: their
			// count loses o when read (see eligible)
			p.applied = append(p.applied, o)
			if c := p.cohort; c != nil {
				c.applied = max(c.applied, len(p.applied))
			}
			return
		}
	case *domain.PupilWeeksReserved:
		if p = ix.pupils.get(ev.PupilID); p != nil {
			p.confirm(ev.ApplicationID, ix.weeks.ids(ev.Weeks))
		}
	case *domain.PupilWeeksReleased:
		if p = ix.pupils.get(ev.PupilID); p != nil {
			p.confirmed = slices.DeleteFunc(p.confirmed, func(c placement) bool { return c.app == ev.ApplicationID })
		}
	}
	if p != nil {
		ix.recount(p)
	}
}

func (ix *Index) addOffer(ev *domain.OfferPosted) {
	if ix.offers[ev.OfferID] != nil {
		return
	}
	o := &offer{id: ev.OfferID, employerID: ix.intern(ev.EmployerID), employerName: ix.intern(ev.EmployerName), title: ev.Title,
		kind: ix.intern(ev.EmployerKind), ageRule: domain.AgeRuleApplies(ev.EmployerKind, ev.FamilyBusiness), sector: ix.intern(ev.Sector),
		commune: ix.intern(ev.CommuneCode), department: ix.intern(ev.Department), grades: ix.grades(ev.Grades),
		gradeSet: gradeSet(ev.Grades), seats: ev.Seats, reserved: ev.Reserved,
		lat: ev.Lat, lon: ev.Lon, open: !ev.Collective, collective: ev.Collective}
	o.weeks = ix.weeks.ids(ev.Weeks)
	o.held = make([]int, len(o.weeks))
	ix.offers[o.id] = o
	ix.offerAt.add(o.lat, o.lon, o.gradeSet, o)
	ix.reckon(o, nil)
}

// applyOffer changes an offer, keeping the counts of the pupils it was or
// becomes eligible for.
func (ix *Index) applyOffer(e domain.Event) {
	var id string
	switch ev := e.(type) {
	case *domain.OfferAmended:
		id = ev.OfferID
	case *domain.OfferWithdrawn:
		id = ev.OfferID
	case *domain.OfferReopened:
		id = ev.OfferID
	case *domain.SeatHeld:
		id = ev.OfferID
	case *domain.SeatReleased:
		id = ev.OfferID
	}
	o := ix.offers[id]
	if o == nil {
		return
	}
	if ix.seatOnly(o, e) {
		return
	}
	before := ix.takers(o)
	switch ev := e.(type) {
	case *domain.OfferAmended:
		held := map[int32]int{}
		for i, w := range o.weeks {
			held[w] = o.held[i]
		}
		o.title, o.seats, o.reserved = ev.Title, ev.Seats, ev.Reserved
		o.ageRule = domain.AgeRuleApplies(o.kind, ev.FamilyBusiness)
		o.weeks = ix.weeks.ids(ev.Weeks)
		o.held = make([]int, len(o.weeks))
		for i, w := range o.weeks {
			o.held[i] = held[w]
		}
	case *domain.OfferWithdrawn:
		o.open = false
	case *domain.OfferReopened:
		o.open = !o.collective
	case *domain.SeatHeld:
		o.hold(ix.weeks.ids(ev.Weeks), 1)
		ix.held(ev.ApplicationID, ev.PupilID, true)
	case *domain.SeatReleased:
		o.hold(ix.weeks.ids(ev.Weeks), -1)
		ix.held(ev.ApplicationID, "", false)
	}
	ix.reckon(o, before)
}

// seatOnly applies e when it is a seat held or released that fills no
// week of o and frees none, and reports whether it did. Such a seat
// changes whom the offer suits for no pupil, so the schools within reach
// (thousands around a city, nationally) are not walked.
func (ix *Index) seatOnly(o *offer, e domain.Event) bool {
	switch ev := e.(type) {
	case *domain.SeatHeld:
		if weeks := ix.weeks.ids(ev.Weeks); !o.flips(weeks, 1) {
			o.hold(weeks, 1)
			ix.held(ev.ApplicationID, ev.PupilID, true)
			return true
		}
	case *domain.SeatReleased:
		if weeks := ix.weeks.ids(ev.Weeks); !o.flips(weeks, -1) {
			o.hold(weeks, -1)
			ix.held(ev.ApplicationID, "", false)
			return true
		}
	}
	return false
}

// flips reports whether holding n more seats (n < 0: releasing) in weeks
// would fill one of them or free a full one.
func (o *offer) flips(weeks []int32, n int) bool {
	for _, w := range weeks {
		if i := slices.Index(o.weeks, w); i >= 0 && (o.held[i] >= o.seats) != (o.held[i]+n >= o.seats) {
			return true
		}
	}
	return false
}

func (o *offer) hold(weeks []int32, n int) {
	for _, w := range weeks {
		if i := slices.Index(o.weeks, w); i >= 0 {
			o.held[i] += n
		}
	}
}

// takers are the cohorts whose counts hold offer o, when counts are
// kept.
func (ix *Index) takers(o *offer) []*cohort {
	if !ix.counted {
		return nil
	}
	var out []*cohort
	ix.eachCounted(o, func(c *cohort) { out = append(out, c) })
	return out
}

// reckon moves the counts of the cohorts o was eligible for (before) to
// those it is eligible for now.
func (ix *Index) reckon(o *offer, before []*cohort) {
	if !ix.counted {
		return
	}
	for _, c := range before {
		c.n--
	}
	ix.eachCounted(o, func(c *cohort) { c.n++ })
}

// recount puts pupil p in the cohort of its kind, when counts are kept,
// or in none once placed (the desk looks for the pupils without one).
func (ix *Index) recount(p *pupil) {
	if c := p.cohort; c != nil && ix.counted && !p.placed() && c.of(p, ix.oldFrom(p)) {
		return // still of its kind: the cohort's count holds
	}
	ix.leave(p)
	if !ix.counted || p.placed() {
		return
	}
	if c, fresh := ix.join(p); fresh {
		s := p.school
		ix.offerAt.within(s.lat, s.lon, c.reach.KM(), c.bit, func(o *offer, _ domain.Way) {
			if ix.holds(c, s, o) {
				c.n++
			}
		})
	}
}

// join puts pupil p in its school's cohort of its kind, fresh when it
// made it (its count still 0).
func (ix *Index) join(p *pupil) (c *cohort, fresh bool) {
	s, oldFrom := p.school, ix.oldFrom(p)
	for _, c := range s.cohorts {
		if c.of(p, oldFrom) {
			c.applied = max(c.applied, len(p.applied))
			c.add(p)
			return c, false
		}
	}
	c = &cohort{grade: p.grade, bit: gradeBit(p.grade), reach: domain.ReachOf(p.reach), wishWeeks: p.wishWeeks, oldFrom: oldFrom, slot: len(s.cohorts),
		applied: len(p.applied)}
	s.cohorts = append(s.cohorts, c)
	c.add(p)
	return c, true
}

// of: pupil p, 14 from oldFrom on, is of the cohort's kind.
func (c *cohort) of(p *pupil, oldFrom int64) bool {
	return c.grade == p.grade && c.reach.KM() == p.reach && c.oldFrom == oldFrom && slices.Equal(c.wishWeeks, p.wishWeeks)
}

// add puts pupil p in cohort c.
func (c *cohort) add(p *pupil) {
	p.cohort = c
	if c.first == nil {
		c.first, p.inCohort = p, 0
		return
	}
	c.more = append(c.more, p)
	p.inCohort = len(c.more)
}

// remove takes pupil p, of cohort c, out of it, the last pupil taking its
// place; true when none is left.
func (c *cohort) remove(p *pupil) (empty bool) {
	n := len(c.more)
	if n == 0 {
		c.first = nil
		return true
	}
	last := c.more[n-1]
	c.more[n-1], c.more = nil, c.more[:n-1]
	if last != p {
		if p.inCohort == 0 {
			c.first = last
		} else {
			c.more[p.inCohort-1] = last
		}
		last.inCohort = p.inCohort
	}
	return false
}

// size is the number of its pupils.
func (c *cohort) size() int {
	if c.first == nil {
		return 0
	}
	return 1 + len(c.more)
}

// leave takes pupil p out of its cohort.
func (ix *Index) leave(p *pupil) {
	c := p.cohort
	if c == nil {
		return
	}
	if c.remove(p) {
		s := p.school
		last := s.cohorts[len(s.cohorts)-1]
		s.cohorts[c.slot], last.slot = last, c.slot
		s.cohorts = s.cohorts[:len(s.cohorts)-1]
	}
	p.cohort = nil
}

// oldFrom is the start of the first week pupil p is 14 on (Unix seconds),
// 0 when that is every week not started yet: weeks start on Mondays, so
// pupils whose 14th birthdays fall between the same two Mondays are old
// enough for the same weeks.
func (ix *Index) oldFrom(p *pupil) int64 {
	if p.birth.IsZero() {
		return 0
	}
	d := p.birth.AddDate(14, 0, 0)
	monday := d.AddDate(0, 0, (8-int(d.Weekday()))%7)
	if !monday.After(ix.weeks.now) {
		return 0
	}
	return monday.Unix()
}

// holds reports whether the count of cohort c, of school s, holds offer
// o, distance aside.
func (ix *Index) holds(c *cohort, s *school, o *offer) bool {
	if !o.open || !o.reserved.Admits(s.reg) {
		return false
	}
	latest, ok := ix.latestFreeWeek(o)
	return ok && ix.cohortTakes(c, o, latest)
}

// cohortTakes: cohort c's pupils may take offer o, open with a free week
// (latest, the last one), distance, reservation and applications aside.
// It is period's check for them: without wished weeks, a pupil without a
// placement may take o exactly when o has a free week, or under the age
// rule when they are 14 by the latest (age only grows).
func (ix *Index) cohortTakes(c *cohort, o *offer, latest int32) bool {
	if o.gradeSet&c.bit == 0 {
		return false
	}
	if c.wishWeeks == nil {
		return !o.ageRule || c.oldEnough(ix, latest)
	}
	for i, w := range o.weeks {
		if _, wished := slices.BinarySearch(c.wishWeeks, w); wished && !ix.startedFor(o, w) && o.held[i] < o.seats &&
			(!o.ageRule || c.oldEnough(ix, w)) {
			return true
		}
	}
	return false
}

// oldEnough: the cohort's pupils are 14 on the first day of week w.
func (c *cohort) oldEnough(ix *Index, w int32) bool {
	return c.oldFrom == 0 || c.oldFrom <= ix.weeks.starts[w].Unix()
}

// eligible is the number of open offers pupil p may take, when counts
// are kept: its cohort's, but for those it applied to; 0 once placed.
func (ix *Index) eligible(p *pupil) int {
	c := p.cohort
	if c == nil {
		return 0
	}
	n := c.n
	for _, o := range p.applied {
		if distance(p.school, o) <= c.reach.KM() && ix.holds(c, p.school, o) {
			n--
		}
	}
	return n
}

// CountAll counts every pupil's eligible offers and keeps the counts up to
// date from then on: once, after the log has been read up to its head.
func (ix *Index) CountAll() {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.countAll()
}

func (ix *Index) countAll() {
	ix.counted = true
	byPlace := map[[2]float64][]*school{}
	for _, s := range ix.schools {
		at := [2]float64{s.lat, s.lon}
		byPlace[at] = append(byPlace[at], s)
	}
	for _, schools := range byPlace {
		ix.countSchools(schools...)
	}
}

// countSchools sorts the pupils without a placement of schools at one
// place (the centre of their commune) into cohorts again and counts their
// eligible offers from scratch, measuring each offer's distance and free
// weeks once for them all: a city's schools share them.
func (ix *Index) countSchools(schools ...*school) {
	reach := 0.0
	for _, s := range schools {
		s.cohorts = nil
		for _, p := range s.pupils {
			if p.cohort = nil; !p.placed() {
				ix.join(p)
				reach = max(reach, p.reach)
			}
		}
	}
	if reach == 0 {
		return
	}
	ix.offerAt.within(schools[0].lat, schools[0].lon, reach, allGrades, func(o *offer, d domain.Way) {
		if !o.open {
			return
		}
		latest, ok := ix.latestFreeWeek(o)
		if !ok {
			return
		}
		for _, s := range schools {
			if !o.reserved.Admits(s.reg) {
				continue
			}
			for _, c := range s.cohorts {
				if d.Within(c.reach) && ix.cohortTakes(c, o, latest) {
					c.n++
				}
			}
		}
	})
}

// Tick brings the weeks up to the clock. When a week has started no one
// can take it any more: only the offers of the weeks that started (or,
// the clock set back, stopped being started) move, from the cohorts that
// counted them to those that count them now, as when an offer changes.
// Counting every school again, a school at a time, took 15 s of a
// processor each Monday at a million pupils (BenchmarkWeekStarts). The offers move one at a
// time, queries and the log's events going on between them: until it has
// moved, an offer's counts see its weeks as they were (startedFor).
func (ix *Index) Tick() {
	ix.ticking.Lock()
	defer ix.ticking.Unlock()
	ix.mu.Lock()
	now := ix.clock()
	var turning []bool // by week: its start changes with the clock
	for i, name := range ix.weeks.names {
		if domain.Started(name, now) != ix.weeks.started[i] {
			if turning == nil {
				turning = make([]bool, len(ix.weeks.names))
			}
			turning[i] = true
		}
	}
	var lagging []*offer
	if ix.counted && turning != nil {
		for _, o := range ix.offers {
			if o.lagging = slices.ContainsFunc(o.weeks, func(w int32) bool { return turning[w] }); o.lagging {
				lagging = append(lagging, o)
			}
		}
		ix.turning = turning
	}
	ix.weeks.advance(now)
	ix.mu.Unlock()
	for _, o := range lagging {
		ix.mu.Lock()
		before := ix.takers(o)
		o.lagging = false
		ix.reckon(o, before)
		ix.mu.Unlock()
	}
	ix.mu.Lock()
	ix.turning = nil
	ix.mu.Unlock()
}

// startedFor is whether week w has started as offer o's counts see it:
// as it was before the Tick under way, until that Tick moved o.
func (ix *Index) startedFor(o *offer, w int32) bool {
	started := ix.weeks.started[w]
	if o.lagging && int(w) < len(ix.turning) && ix.turning[w] {
		return !started
	}
	return started
}

// oldEnough: pupil p is 14 on the first day of week w (domain.OldEnough;
// true when the birth date is unknown).
func (ix *Index) oldEnough(p *pupil, w int32) bool {
	return ix.weeks.starts[w].Unix() >= p.fourteen
}

// fourteenOf is the start of the 14th birthday of a pupil born on birth,
// in Unix seconds (domain.OldEnough: dates start at midnight, so comparing
// seconds is comparing times), the smallest when birth is unknown.
func fourteenOf(birth time.Time) int64 {
	if birth.IsZero() {
		return math.MinInt64
	}
	return birth.AddDate(14, 0, 0).Unix()
}

func (p *pupil) placed() bool { return len(p.confirmed) > 0 }

// placement is a pupil's confirmed placement: its application and weeks.
type placement struct {
	app   string
	weeks []int32
}

// confirm records the weeks of application app, confirmed (again).
func (p *pupil) confirm(app string, weeks []int32) {
	if i := slices.IndexFunc(p.confirmed, func(c placement) bool { return c.app == app }); i >= 0 {
		p.confirmed[i].weeks = weeks
		return
	}
	p.confirmed = append(p.confirmed, placement{app, weeks})
}

// busy: week w is one of the pupil's confirmed placements.
func (p *pupil) busy(w int32) bool {
	return slices.ContainsFunc(p.confirmed, func(c placement) bool { return slices.Contains(c.weeks, w) })
}

// committed: the pupil is placed, holds a seat (accepted) or has a
// proposal awaiting its answer: a round proposes them nothing more.
func (p *pupil) committed() bool { return p.placed() || p.holding > 0 || p.proposed > 0 }

// weekTable interns ISO weeks, and knows which have started.
type weekTable struct {
	now     time.Time
	byName  map[string]int32
	names   []string
	starts  []time.Time
	started []bool
	next    []int32            // the week after each, when interned; -1 otherwise
	sets    map[string][]int32 // the lists of weeks held (see share)
}

func (t *weekTable) id(name string) int32 {
	if id, ok := t.byName[name]; ok {
		return id
	}
	if t.byName == nil {
		t.byName = map[string]int32{}
	}
	id := int32(len(t.names))
	start, _ := domain.ParseWeek(name)
	t.byName[name] = id
	t.names, t.starts, t.started = append(t.names, name), append(t.starts, start), append(t.started, domain.Started(name, t.now))
	t.next = append(t.next, -1)
	// a 2de internship may cover two consecutive weeks: link each week to
	// the one after it, as the domain's rule sees them
	if prev, ok := t.byName[domain.WeekOf(start.AddDate(0, 0, -7))]; ok && domain.PeriodFits(domain.Grade2de, []string{t.names[prev], name}) {
		t.next[prev] = id
	}
	if after, ok := t.byName[domain.WeekOf(start.AddDate(0, 0, 7))]; ok && domain.PeriodFits(domain.Grade2de, []string{name, t.names[after]}) {
		t.next[id] = after
	}
	return id
}

// ids interns weeks, sorted in time (ISO weeks sort lexically), as a
// shared list (see share).
func (t *weekTable) ids(names []string) []int32 {
	var buf [16]int32
	out := buf[:0]
	for _, n := range names {
		out = append(out, t.id(n))
	}
	slices.SortFunc(out, func(a, b int32) int { return strings.Compare(t.names[a], t.names[b]) })
	return t.share(out)
}

// share returns the table's list of these weeks, made from ids the first
// time. Offers, wishes, proposals and placements name the same few sets
// of weeks: one list serves them all, for the collector to mark once. No
// holder may change it.
func (t *weekTable) share(ids []int32) []int32 {
	var kb [64]byte
	key := kb[:0]
	for _, id := range ids {
		key = binary.LittleEndian.AppendUint32(key, uint32(id))
	}
	if l, ok := t.sets[string(key)]; ok {
		return l
	}
	if t.sets == nil {
		t.sets = map[string][]int32{}
	}
	l := make([]int32, len(ids))
	copy(l, ids)
	t.sets[string(key)] = l
	return l
}

// advance moves the clock, and the weeks started with it.
func (t *weekTable) advance(now time.Time) {
	t.now = now
	for i, n := range t.names {
		t.started[i] = domain.Started(n, now)
	}
}

// farReach are the reaches, beyond DefaultMaxDistanceKM, by which
// schools are put apart: a school's pupils looking 200 km away do not make
// the desk walk every school within 200 km for every offer.
var farReach = [...]float64{40, 80, domain.MaxDistanceKM}

// lookFar notes how far pupil p looks.
func (ix *Index) lookFar(p *pupil) {
	ix.reach = max(ix.reach, p.reach)
	s := p.school
	if p.reach <= DefaultMaxDistanceKM {
		return
	}
	i := min(sort.SearchFloat64s(farReach[:], p.reach), len(farReach)-1)
	if s.far < i+1 {
		if s.far > 0 { // its entry there is passed over from now on
			ix.farAt[s.far-1].setGrades(s.lat, s.lon, s.farCell, 0)
		}
		if ix.farAt[i] == nil {
			ix.farAt[i] = grid[*school]{}
		}
		s.far, s.farCell = i+1, ix.farAt[i].add(s.lat, s.lon, allGrades, s)
	}
}

// schoolsNear calls f with the schools for one of grades whose pupils
// may look as far as (lat, lon), and their distance from it: those within
// DefaultMaxDistanceKM, then those farther away whose pupils look farther,
// in no particular order. Each school is given once.
func (ix *Index) schoolsNear(lat, lon float64, grades uint8, f func(s *school, d domain.Way)) {
	ix.schoolAt.within(lat, lon, DefaultMaxDistanceKM, grades, f)
	for i, g := range ix.farAt {
		if len(g) == 0 {
			continue // no pupil looks that far: no box to work out
		}
		g.anyWithin(lat, lon, min(farReach[i], ix.reach), allGrades, func(s *school, d domain.Way) {
			if !d.Within(defaultReach) {
				f(s, d)
			}
		})
	}
}

// grid buckets points in cells of a tenth of a degree, for the questions
// "what is within r km of here". A cell holds each point's coordinates
// and grades beside its value, so a query measures, and passes over the
// points of other grades, without reaching the values.
type grid[T any] map[int64][]cellPoint[T]

type cellPoint[T any] struct {
	at     domain.Point
	grades uint8 // gradeBit of the grades the value is for
	v      T
}

const cellDeg = 0.1

func cellOf(lat, lon float64) (int32, int32) {
	return int32(math.Floor(lat / cellDeg)), int32(math.Floor(lon / cellDeg))
}

func cellKey(a, b int32) int64 { return int64(a)<<32 | int64(uint32(b)) }

// add adds a point for grades; it answers its index in its cell (see
// addGrades).
func (g grid[T]) add(lat, lon float64, grades uint8, v T) int {
	a, b := cellOf(lat, lon)
	k := cellKey(a, b)
	g[k] = append(g[k], cellPoint[T]{domain.PointAt(lat, lon), grades, v})
	return len(g[k]) - 1
}

// setGrades sets the grades of the i-th point of the cell of (lat, lon).
func (g grid[T]) setGrades(lat, lon float64, i int, grades uint8) {
	a, b := cellOf(lat, lon)
	g[cellKey(a, b)][i].grades = grades
}

// addGrades adds grades to the i-th point of the cell of (lat, lon).
func (g grid[T]) addGrades(lat, lon float64, i int, grades uint8) {
	a, b := cellOf(lat, lon)
	g[cellKey(a, b)][i].grades |= grades
}

// anyWithin calls f with every value for one of grades within km of
// (lat, lon), and its distance, in no particular order: when g has fewer
// cells than the circle covers, it walks g's cells rather than the
// circle's.
func (g grid[T]) anyWithin(lat, lon, km float64, grades uint8, f func(v T, d domain.Way)) {
	dLat, dLon := boxOf(lat, km)
	a0, b0 := cellOf(lat-dLat, lon-dLon)
	a1, b1 := cellOf(lat+dLat, lon+dLon)
	if int64(a1-a0+1)*int64(b1-b0+1) <= int64(len(g)) {
		g.within(lat, lon, km, grades, f)
		return
	}
	centre, reach := domain.PointAt(lat, lon), domain.ReachOf(km)
	for k, points := range g {
		if a, b := int32(k>>32), int32(k); a >= a0 && a <= a1 && b >= b0 && b <= b1 {
			measure(points, centre, reach, dLat, dLon, grades, f)
		}
	}
}

// measure calls f with those of a cell's points for one of grades within
// reach of centre, dLat and dLon being the box around the circle (boxOf).
func measure[T any](points []cellPoint[T], centre domain.Point, reach domain.Reach, dLat, dLon float64, grades uint8, f func(v T, d domain.Way)) {
	for _, p := range points {
		// the box first: most points outside the circle are outside it
		if p.grades&grades == 0 || math.Abs(p.at.Lat-centre.Lat) > dLat || math.Abs(p.at.Lon-centre.Lon) > dLon {
			continue
		}
		if w := centre.Way(p.at); w.Within(reach) {
			f(p.v, w)
		}
	}
}

// boxOf is the half-height and half-width, in degrees, of a box holding
// the circle of km around a point at latitude lat.
func boxOf(lat, km float64) (dLat, dLon float64) {
	dLat = km / 111.0 // a degree of latitude is 111.2 km on the sphere DistanceKM measures
	cos := math.Cos(math.Min(math.Abs(lat)+dLat, 89) * math.Pi / 180)
	return dLat, math.Min(km/(111.0*cos), 180)
}

// within calls f with every value for one of grades (gradeBit) within km
// of (lat, lon), and its distance.
func (g grid[T]) within(lat, lon, km float64, grades uint8, f func(v T, d domain.Way)) {
	dLat, dLon := boxOf(lat, km)
	a0, b0 := cellOf(lat-dLat, lon-dLon)
	a1, b1 := cellOf(lat+dLat, lon+dLon)
	centre, reach := domain.PointAt(lat, lon), domain.ReachOf(km)
	for a := a0; a <= a1; a++ {
		for b := b0; b <= b1; b++ {
			measure(g[cellKey(a, b)], centre, reach, dLat, dLon, grades, f)
		}
	}
}
