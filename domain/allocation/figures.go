package allocation

import (
	"fmt"
	"math"
	"slices"
)

// Figures sum up an allocation for the desk.
type Figures struct {
	Pupils int `json:"pupils"` // pupils in the market
	Placed int `json:"placed"`
	// PlacedByPriority and PupilsByPriority count by Pupil.Group; every
	// group of the market is listed, placed or not.
	PlacedByPriority map[string]int `json:"placed_by_priority"`
	PupilsByPriority map[string]int `json:"pupils_by_priority"`
	// Distances of the placed pupils' slots (nearest rank; 0 when nobody
	// is placed).
	DistanceKMMedian float64 `json:"distance_km_median"`
	DistanceKMP90    float64 `json:"distance_km_p90"`
	Seats            int     `json:"seats"`
	SeatsLeft        int     `json:"seats_left"`
}

// FiguresOf computes the figures of r on m.
func FiguresOf(m Market, r Result) Figures {
	f := Figures{Pupils: len(m.Pupils), PlacedByPriority: map[string]int{}, PupilsByPriority: map[string]int{}}
	dist := make([]float64, 0, len(m.Pupils))
	for i, p := range m.Pupils {
		f.PupilsByPriority[p.Group]++
		f.PlacedByPriority[p.Group] += 0 // listed even when nobody is placed
		if c := r.Choice[i]; c >= 0 {
			f.Placed++
			f.PlacedByPriority[p.Group]++
			dist = append(dist, p.Choices[c].DistanceKM)
		}
	}
	for _, s := range m.Slots {
		f.Seats += max(s.Seats, 0)
	}
	f.SeatsLeft = f.Seats - f.Placed
	slices.Sort(dist)
	f.DistanceKMMedian = nearestRank(dist, 0.5)
	f.DistanceKMP90 = nearestRank(dist, 0.9)
	return f
}

// nearestRank is the q-quantile of sorted values by the nearest-rank
// method, rounded to 0.1 km.
func nearestRank(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := max(int(math.Ceil(q*float64(len(sorted))))-1, 0)
	return math.Round(sorted[i]*10) / 10
}

// Check verifies that r is an allocation of m: one choice or none per
// pupil, no slot over its seats. It returns the pupils held by each slot.
func Check(m Market, r Result) ([][]int, error) {
	if err := m.Check(); err != nil {
		return nil, err
	}
	if len(r.Choice) != len(m.Pupils) {
		return nil, fmt.Errorf("%d results for %d pupils", len(r.Choice), len(m.Pupils))
	}
	holds := make([][]int, len(m.Slots))
	for i, c := range r.Choice {
		if c < -1 || int(c) >= len(m.Pupils[i].Choices) {
			return nil, fmt.Errorf("pupil %s: choice %d out of range", m.Pupils[i].ID, c)
		}
		if c >= 0 {
			s := m.Pupils[i].Choices[c].Slot
			holds[s] = append(holds[s], i)
		}
	}
	for s, h := range holds {
		if len(h) > max(m.Slots[s].Seats, 0) {
			return nil, fmt.Errorf("slot %d (offer %s): %d pupils for %d seats", s, m.Slots[s].OfferID, len(h), m.Slots[s].Seats)
		}
	}
	return holds, nil
}

// Stable checks r on m: an allocation (Check) with no blocking pair, a
// pupil and a slot they rank above what they got that has a free seat or
// holds a pupil after them in its priority order.
func Stable(m Market, r Result) error {
	holds, err := Check(m, r)
	if err != nil {
		return err
	}
	lottery := Lottery(m)
	// worst[s]: the last pupil slot s holds in its priority order
	worst := make([]key, len(m.Slots))
	for s, h := range holds {
		for j, p := range h {
			k := keyOf(m, lottery, p, int(r.Choice[p]))
			if j == 0 || worst[s].better(k) {
				worst[s] = k
			}
		}
	}
	for i, p := range m.Pupils {
		got := len(p.Choices)
		if r.Choice[i] >= 0 {
			got = int(r.Choice[i])
		}
		for c := range got {
			s := p.Choices[c].Slot
			free := len(holds[s]) < max(m.Slots[s].Seats, 0)
			if free || (len(holds[s]) > 0 && keyOf(m, lottery, i, c).better(worst[s])) {
				return fmt.Errorf("blocking pair: pupil %s and slot %d (offer %s)", p.ID, s, m.Slots[s].OfferID)
			}
		}
	}
	return nil
}

// Check verifies what Run and FirstCome assume of a market: every choice
// names a slot of the market, at most once per pupil.
func (m Market) Check() error {
	seen := map[int]bool{}
	for _, p := range m.Pupils {
		clear(seen)
		for _, c := range p.Choices {
			if c.Slot < 0 || c.Slot >= len(m.Slots) {
				return fmt.Errorf("pupil %s: slot %d out of range", p.ID, c.Slot)
			}
			if seen[c.Slot] {
				return fmt.Errorf("pupil %s: slot %d listed twice", p.ID, c.Slot)
			}
			seen[c.Slot] = true
		}
	}
	return nil
}
