package allocation

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// groups and their priorities, as the market builder sets them.
var groups = []struct {
	name     string
	priority int
}{{"none", 0}, {"rep", 1}, {"qpv", 1}, {"rep_plus", 2}}

// randomMarket draws a small market with many ties (few distances, few
// priorities), reserved choices and zero-seat slots, for the property
// tests.
func randomMarket(rng *rand.Rand, pupils, slots, maxChoices, maxSeats int) Market {
	m := Market{Seed: rng.Int64()}
	for s := range slots {
		m.Slots = append(m.Slots, Slot{OfferID: fmt.Sprintf("o%d", s/2), Weeks: []string{fmt.Sprintf("2027-W%02d", 10+s%2)},
			Seats: rng.IntN(maxSeats + 1)})
	}
	for i := range pupils {
		g := groups[rng.IntN(len(groups))]
		p := Pupil{ID: fmt.Sprintf("p%d", i), Group: g.name, Priority: g.priority}
		for _, s := range rng.Perm(slots)[:rng.IntN(min(maxChoices, slots)+1)] {
			p.Choices = append(p.Choices, Choice{Slot: s, Reserved: rng.IntN(4) == 0, DistanceKM: float64(rng.IntN(3))})
		}
		m.Pupils = append(m.Pupils, p)
	}
	return m
}

// bigMarket draws a market shaped like a campaign: départements of
// offers, each with 1 to 4 one-week slots of 1 to 3 seats, and pupils of
// the same département ranking 10 to 20 of its slots by distance; one
// offer in ten is reserved to éducation prioritaire, whose pupils alone
// may take it.
func bigMarket(pupils, offers int, seed uint64) Market {
	rng := rand.New(rand.NewPCG(seed, 1))
	const departments = 100
	type point struct{ x, y float64 }
	m := Market{Seed: int64(seed)}
	bySlotDep := make([][]int, departments)
	slotAt := []point{}
	reserved := []bool{}
	for o := range offers {
		dep := o % departments
		at := point{rng.Float64() * 60, rng.Float64() * 60}
		res := rng.IntN(10) == 0
		for w := range 1 + rng.IntN(4) {
			bySlotDep[dep] = append(bySlotDep[dep], len(m.Slots))
			m.Slots = append(m.Slots, Slot{OfferID: fmt.Sprintf("o%d", o), Weeks: []string{fmt.Sprintf("2027-W%02d", 10+w)}, Seats: 1 + rng.IntN(3)})
			slotAt = append(slotAt, at)
			reserved = append(reserved, res)
		}
	}
	m.Pupils = make([]Pupil, pupils)
	for i := range m.Pupils {
		g := groups[0]
		if r := rng.IntN(20); r < 6 {
			g = groups[1+r%3]
		}
		dep := i % departments
		at := point{rng.Float64() * 60, rng.Float64() * 60}
		p := Pupil{ID: fmt.Sprintf("p%d", i), Group: g.name, Priority: g.priority, Choices: make([]Choice, 0, 20)}
		cands := bySlotDep[dep]
		for range 10 + rng.IntN(11) {
			s := cands[rng.IntN(len(cands))]
			if (reserved[s] && g.priority == 0) || slices.ContainsFunc(p.Choices, func(c Choice) bool { return c.Slot == s }) {
				continue
			}
			dx, dy := slotAt[s].x-at.x, slotAt[s].y-at.y
			p.Choices = append(p.Choices, Choice{Slot: s, Reserved: reserved[s], DistanceKM: math.Round(math.Hypot(dx, dy)*10) / 10})
		}
		slices.SortStableFunc(p.Choices, func(a, b Choice) int {
			switch {
			case a.DistanceKM < b.DistanceKM:
				return -1
			case a.DistanceKM > b.DistanceKM:
				return 1
			}
			return 0
		})
		m.Pupils[i] = p
	}
	return m
}
