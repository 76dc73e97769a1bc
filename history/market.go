package history

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"passerelle/domain"
	"passerelle/domain/allocation"
	"passerelle/eventstore"
)

// Market builds a round's market by folding the log itself: schools,
// pupils, offers with their held seats, applications, and the rounds
// published. It keeps its fold and reads only the events after it at each
// call. A pupil's choices are the offers of their school's département
// that fit their grade, the campaign's weeks and the offers' reservations,
// ranked by distance from the school; the desk's index, which knows the
// pupils' wishes, can replace it.
type Market struct {
	store  eventstore.Store
	places domain.Places
	clock  func() time.Time

	mu       sync.Mutex
	pos      eventstore.Position
	schools  map[string]*domain.School
	pupils   map[string]*domain.Pupil
	offers   map[string]*domain.Offer
	apps     map[string]*domain.Application
	rounds   map[string]*domain.Round
	proposed map[[2]string]bool // offer, pupil of a published round's match
}

// NewMarket folds store's log for rounds; clock says which weeks have
// started (nil: time.Now).
func NewMarket(store eventstore.Store, places domain.Places, clock func() time.Time) *Market {
	if clock == nil {
		clock = time.Now
	}
	return &Market{store: store, places: places, clock: clock,
		schools: map[string]*domain.School{}, pupils: map[string]*domain.Pupil{}, offers: map[string]*domain.Offer{},
		apps: map[string]*domain.Application{}, rounds: map[string]*domain.Round{}, proposed: map[[2]string]bool{}}
}

// catchUp folds the events written since the last call.
func (mk *Market) catchUp(ctx context.Context) error {
	for {
		evs, err := mk.store.ReadAll(ctx, mk.pos, 4096)
		if err != nil {
			return err
		}
		for _, re := range evs {
			if err := mk.apply(re); err != nil {
				return err
			}
			mk.pos = re.Position
		}
		if len(evs) < 4096 {
			return nil
		}
	}
}

func (mk *Market) apply(re eventstore.RecordedEvent) error {
	cat := eventstore.Category(re.Stream)
	id := strings.TrimPrefix(re.Stream, cat+"-")
	var agg interface{ Apply(domain.Event) }
	switch cat {
	case "school":
		agg = ensure(mk.schools, id)
	case "pupil":
		agg = ensure(mk.pupils, id)
	case "offer":
		agg = ensure(mk.offers, id)
	case "application":
		agg = ensure(mk.apps, id)
	case "round":
		agg = ensure(mk.rounds, id)
	default:
		return nil
	}
	e, err := domain.Decode(re.Type, re.Data) // personal data stays sealed: none is needed
	if err != nil {
		return err
	}
	agg.Apply(e)
	if _, ok := e.(*domain.RoundPublished); ok {
		for _, m := range mk.rounds[id].Matches {
			mk.proposed[[2]string{m.OfferID, m.PupilID}] = true
		}
	}
	return nil
}

func ensure[A any](m map[string]*A, id string) *A {
	a, ok := m[id]
	if !ok {
		a = new(A)
		m[id] = a
	}
	return a
}

// Market implements commands.RoundMarket.
func (mk *Market) Market(ctx context.Context, scope allocation.Scope, maxChoices int) (allocation.Market, error) {
	mk.mu.Lock()
	defer mk.mu.Unlock()
	if err := mk.catchUp(ctx); err != nil {
		return allocation.Market{}, err
	}
	busy, pending, applied := mk.commitments()
	var m allocation.Market
	slotsByDep := mk.slots(&m, scope, pending)
	ids := make([]string, 0, len(mk.pupils))
	for id := range mk.pupils {
		ids = append(ids, id)
	}
	// sorted: the market, hence the lottery's draw, does not depend on map
	// order; pupils of a school and grade share their ranked slots
	slices.Sort(ids)
	ranked := map[[2]string][]allocation.Choice{}
	for _, id := range ids {
		p := mk.pupils[id]
		school := mk.schools[p.Registered.SchoolUAI]
		if !p.Exists() || p.Forgotten || busy[id] || school == nil || !inScope(scope, school, p) {
			continue
		}
		k := [2]string{school.Registered.UAI, string(p.Registered.Grade)}
		all, ok := ranked[k]
		if !ok {
			all = mk.choices(m, school, p.Registered.Grade, slotsByDep[school.Registered.Department])
			ranked[k] = all
		}
		group, priority := school.AllocationGroup()
		pupil := allocation.Pupil{ID: id, Group: group, Priority: priority}
		for _, c := range all {
			if len(pupil.Choices) == maxChoices {
				break
			}
			if !applied[id][m.Slots[c.Slot].OfferID] {
				pupil.Choices = append(pupil.Choices, c)
			}
		}
		if len(pupil.Choices) > 0 {
			m.Pupils = append(m.Pupils, pupil)
		}
	}
	return m, nil
}

// commitments are what earlier placements and rounds took: the pupils with
// an accepted or confirmed placement or a live proposal of a published
// round (busy), and the seats those proposals will take if accepted
// (pending, by offer and week). A declined proposal frees both. applied
// lists the offers each pupil applied to, in any status: a pupil applies
// once per offer, so those are no longer choices.
func (mk *Market) commitments() (busy map[string]bool, pending map[string]map[string]int, applied map[string]map[string]bool) {
	busy, pending, applied = map[string]bool{}, map[string]map[string]int{}, map[string]map[string]bool{}
	for _, a := range mk.apps {
		s := a.Submitted
		if applied[s.PupilID] == nil {
			applied[s.PupilID] = map[string]bool{}
		}
		applied[s.PupilID][s.OfferID] = true
		switch a.Status {
		case domain.StatusAccepted, domain.StatusConfirmed:
			busy[s.PupilID] = true
		case domain.StatusSubmitted, domain.StatusRead:
			if mk.proposed[[2]string{s.OfferID, s.PupilID}] {
				busy[s.PupilID] = true
				if pending[s.OfferID] == nil {
					pending[s.OfferID] = map[string]int{}
				}
				for _, w := range s.Weeks {
					pending[s.OfferID][w]++
				}
			}
		}
	}
	return busy, pending, applied
}

// slotInfo is what a pupil's choice needs of a slot.
type slotInfo struct {
	index int
	offer *domain.Offer
}

// slots adds to m the free slots of open offers in the scope, not yet
// started, and returns them by département.
func (mk *Market) slots(m *allocation.Market, scope allocation.Scope, pending map[string]map[string]int) map[string][]slotInfo {
	now := mk.clock()
	ids := make([]string, 0, len(mk.offers))
	for id, o := range mk.offers {
		if o.Open() && !o.Posted.Collective && slices.Contains(scope.Departments, o.Posted.Department) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	out := map[string][]slotInfo{}
	for _, id := range ids {
		o := mk.offers[id]
		for _, weeks := range o.Slots() {
			seats := o.Posted.Seats
			for _, w := range weeks {
				start, err := domain.ParseWeek(w)
				if err != nil || !now.Before(start) || (len(scope.Weeks) > 0 && !slices.Contains(scope.Weeks, w)) {
					seats = 0
				}
				seats = min(seats, o.Free(w)-pending[id][w])
			}
			if seats <= 0 {
				continue
			}
			out[o.Posted.Department] = append(out[o.Posted.Department], slotInfo{index: len(m.Slots), offer: o})
			m.Slots = append(m.Slots, allocation.Slot{OfferID: id, Weeks: weeks, Seats: seats})
		}
	}
	return out
}

func inScope(scope allocation.Scope, school *domain.School, p *domain.Pupil) bool {
	r := school.Registered
	return slices.Contains(scope.Departments, r.Department) &&
		(len(scope.Communes) == 0 || slices.Contains(scope.Communes, r.CommuneCode)) &&
		(len(scope.Grades) == 0 || slices.Contains(scope.Grades, string(p.Registered.Grade)))
}

// choices are the slots a school's pupils of a grade may take, nearest
// first.
func (mk *Market) choices(m allocation.Market, school *domain.School, grade domain.Grade, slots []slotInfo) []allocation.Choice {
	lat, lon, ok := mk.places.CommuneCentre(school.Registered.CommuneCode)
	if !ok {
		return nil
	}
	var out []allocation.Choice
	for _, s := range slots {
		o := s.offer
		reserved, eligible := o.ReservedFor(school)
		if !eligible || !slices.Contains(o.Posted.Grades, grade) || !fitsGrade(grade, m.Slots[s.index].Weeks) {
			continue
		}
		d := domain.DistanceKM(lat, lon, o.Posted.Lat, o.Posted.Lon)
		out = append(out, allocation.Choice{Slot: s.index, Reserved: reserved, DistanceKM: float64(int(d*10+0.5)) / 10})
	}
	slices.SortStableFunc(out, func(a, b allocation.Choice) int { return cmp.Compare(a.DistanceKM, b.DistanceKM) })
	return out
}

// fitsGrade: a collège internship is one week; a seconde one is one or two.
func fitsGrade(g domain.Grade, weeks []string) bool { return g.Lycee() || len(weeks) == 1 }
