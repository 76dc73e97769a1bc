package desk

import (
	"cmp"
	"context"
	"slices"
	"time"

	"passerelle/domain"
	"passerelle/domain/allocation"
	"passerelle/eventstore"
)

// MarketWait bounds how long a round waits for the index to reach the
// log's head.
const MarketWait = 10 * time.Second

// Market is what an allocation round of scope allocates, as the log stood
// at position at (the index waits until it has applied it, at most
// MarketWait, so a round is not computed on stale data):
//
//   - every free slot of the open offers of the scope's départements (one
//     week of a 4e or 3e offer; two consecutive weeks of a 2de offer, or a
//     week left alone) in its weeks, not started; its seats are those not
//     held (accepted or confirmed applications) nor taken by a live
//     proposal of a round or the desk (a declined proposal frees its seat);
//   - every pupil of a school in scope (départements, communes when given,
//     grades) neither placed nor holding a seat nor awaiting an answer to a
//     proposal, with their choices: the offers they wished, in their order,
//     else their suggestions, best first; each offer's slots the pupil may
//     take, at most maxChoices in all; a pupil without any is left out.
//
// Pupils and slots are in the order of their ids, so a seed always draws
// the same lottery on the same log. The caller draws the seed.
func (ix *Index) Market(ctx context.Context, at eventstore.Position, scope allocation.Scope, maxChoices int) (allocation.Market, error) {
	if err := ix.Wait(ctx, at, MarketWait); err != nil {
		return allocation.Market{}, notReady(err)
	}
	ix.Tick() // which weeks have started, as the clock says now
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var m allocation.Market
	pending := ix.pending()
	slotsOf := map[*offer][]int{}
	for _, o := range ix.sortedOffers() {
		if !o.open || !in(scope.Departments, o.department) || !o.forGrades(scope.Grades) {
			continue
		}
		for _, weeks := range ix.slots(o, scope, pending[o]) {
			slotsOf[o] = append(slotsOf[o], len(m.Slots))
			m.Slots = append(m.Slots, allocation.Slot{OfferID: o.id, Weeks: ix.weeks.namesOf(weeks), Seats: o.free(weeks, pending[o])})
		}
	}
	for _, p := range ix.sortedPupils() {
		if err := ctx.Err(); err != nil {
			return allocation.Market{}, err
		}
		if p.committed() || !inScope(scope, p) {
			continue
		}
		if mp := ix.marketPupil(p, m.Slots, slotsOf, maxChoices); len(mp.Choices) > 0 {
			m.Pupils = append(m.Pupils, mp)
		}
	}
	return m, nil
}

// pending counts, by offer and week, the seats live proposals would take.
func (ix *Index) pending() map[*offer]map[int32]int {
	out := map[*offer]map[int32]int{}
	for _, pr := range ix.proposals {
		if out[pr.o] == nil {
			out[pr.o] = map[int32]int{}
		}
		for _, w := range pr.weeks {
			out[pr.o][w]++
		}
	}
	return out
}

// in: an empty list does not restrict.
func in(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }

func inScope(sc allocation.Scope, p *pupil) bool {
	s := p.school.reg
	return in(sc.Departments, s.Department) && in(sc.Communes, s.CommuneCode) && in(sc.Grades, string(p.grade))
}

// marketPupil is a pupil with their choices among slots.
func (ix *Index) marketPupil(p *pupil, slots []allocation.Slot, slotsOf map[*offer][]int, maxChoices int) allocation.Pupil {
	group, prio := priority(p.school.reg)
	mp := allocation.Pupil{ID: p.id.String(), Group: group, Priority: prio}
	for _, c := range ix.ranked(p) {
		for _, i := range slotsOf[c.o] {
			if len(mp.Choices) < maxChoices && ix.slotFits(c.o, p, slots[i].Weeks) {
				mp.Choices = append(mp.Choices, allocation.Choice{Slot: i, Reserved: c.o.reserved.Any(), DistanceKM: round(c.km)})
			}
		}
	}
	return mp
}

type option struct {
	o  *offer
	km float64
}

// ranked are the offers a pupil chooses among: those they wished that
// they may take, in their order, else their suggestions, best first.
func (ix *Index) ranked(p *pupil) []option {
	var out []option
	if p.wishes != nil && len(p.wishes.Offers) > 0 {
		for _, id := range p.wishes.Offers {
			if o := ix.offers[id]; o != nil && ix.takes(o, p) {
				out = append(out, option{o, distance(p.school, o)})
			}
		}
		return out
	}
	var all []scoredOffer
	ix.scoreOffers(p, func(s scoredOffer) { all = append(all, s) })
	slices.SortFunc(all, byScore)
	for _, s := range all {
		out = append(out, option{s.o, s.km})
	}
	return out
}

// slots are an offer's slots in scope with a free seat, pending proposals
// aside.
func (ix *Index) slots(o *offer, scope allocation.Scope, pending map[int32]int) [][]int32 {
	var open []int32
	for i, w := range o.weeks {
		if !ix.weeks.started[w] && in(scope.Weeks, ix.weeks.names[w]) && o.held[i]+pending[w] < o.seats {
			open = append(open, w)
		}
	}
	if !o.lycee() {
		out := make([][]int32, len(open))
		for i, w := range open {
			out[i] = []int32{w}
		}
		return out
	}
	var out [][]int32
	for i := 0; i < len(open); i++ {
		if i+1 < len(open) && ix.weeks.next[open[i]] == open[i+1] {
			out = append(out, open[i:i+2])
			i++
			continue
		}
		out = append(out, open[i:i+1])
	}
	return out
}

// slotFits: the pupil may take every week of the slot.
func (ix *Index) slotFits(o *offer, p *pupil, weeks []string) bool {
	for _, name := range weeks {
		w := ix.weeks.byName[name]
		if !ix.weekFits(o, p, slices.Index(o.weeks, w), w) {
			return false
		}
	}
	return true
}

func (o *offer) lycee() bool { return len(o.grades) > 0 && o.grades[0].Lycee() }

func (o *offer) forGrades(grades []string) bool {
	for _, g := range grades {
		if slices.Contains(o.grades, domain.Grade(g)) {
			return true
		}
	}
	return len(grades) == 0
}

// free is the seats free in every one of weeks, less those pending
// proposals would take (nil: none).
func (o *offer) free(weeks []int32, pending map[int32]int) int {
	n := o.seats
	for _, w := range weeks {
		n = min(n, o.seats-o.held[slices.Index(o.weeks, w)]-pending[w])
	}
	return n
}

func (ix *Index) sortedOffers() []*offer {
	out := make([]*offer, 0, len(ix.offers))
	for _, o := range ix.offers {
		out = append(out, o)
	}
	slices.SortFunc(out, func(a, b *offer) int { return cmp.Compare(a.id, b.id) })
	return out
}

func (ix *Index) sortedPupils() []*pupil {
	out := make([]*pupil, 0, ix.pupils.len())
	for p := range ix.pupils.all() {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *pupil) int { return a.id.compare(b.id) })
	return out
}
