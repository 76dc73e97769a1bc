package seed

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestTakersAgreeWithRecords checks the bits a search reads (Plan.takers)
// against the offers', employers' and schools' records they summarise,
// at three times of a season (offers posted, seats held, some withdrawn),
// for pairs of offers and pupils drawn at random and each pupil's nearby
// offers; both answers and every condition must come up.
func TestTakersAgreeWithRecords(t *testing.T) {
	var n takersCases
	for _, until := range []time.Time{time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 2, 2, 0, 0, 0, 0, time.UTC), time.Date(2026, 5, 4, 0, 0, 0, 0, time.UTC)} {
		p, err := NewPlan(Options{Departments: []string{"75", "93"}, Scale: 0.15, Seed: 3, Until: until})
		if err != nil {
			t.Fatal(err)
		}
		n.check(t, p)
	}
	t.Logf("%d taken, %d not; %d refused for a reservation for REP, %d for QPV, %d too young for a company, %d in a week without a seat",
		n.yes, n.no, n.reserved[1], n.reserved[2], n.young, n.full)
	if n.yes == 0 || n.no == 0 || n.reserved[1] == 0 || n.reserved[2] == 0 || n.young == 0 || n.full == 0 {
		t.Fatal("a case did not come up: the check proves nothing of it")
	}
}

// takersCases counts the cases checked.
type takersCases struct {
	yes, no, young, full int
	reserved             [3]int // refused for the reservation alone, by kind
}

func (n *takersCases) check(t *testing.T, p *Plan) {
	t.Helper()
	w := p.w
	p.rings = map[uint64]*rings{} // dropped once the plan is decided
	rng := rand.New(rand.NewPCG(5, 6))
	pair := func(oi, pi int32) {
		pu, o := &w.pupils[pi], &w.offers[oi]
		start := p.start(pu)
		got, want := p.takes(oi, pi, start), takesByRecords(p, oi, pi, start)
		if got != want {
			t.Fatalf("offer %d, pupil %d: takes %v, the records say %v (%+v, %+v)", oi, pi, got, want, *o, *pu)
		}
		if got {
			n.yes++
		} else {
			n.no++
		}
		if r := o.reserved; r != 0 && !want {
			o.reserved = 0
			if takesByRecords(p, oi, pi, start) {
				n.reserved[r]++
			}
			o.reserved = r
		}
		if w.employers[o.employer].kind == 0 && start < pu.turns14 {
			n.young++
		}
		for _, wk := range p.weeksOf(pu) {
			if j := weekIndex(o.weeks, wk); j >= 0 && o.held[j] >= o.seats {
				n.full++
			}
		}
	}
	for range 100_000 {
		pair(int32(rng.IntN(len(w.offers))), int32(rng.IntN(len(w.pupils))))
	}
	// the offers a pupil's search weighs: same week, nearby
	for range 2_000 {
		pi := int32(rng.IntN(len(w.pupils)))
		pu := &w.pupils[pi]
		c := w.communes[w.schools[pu.school].commune]
		week := pu.weeks[0]
		if pu.grade == gr2de {
			week = -1
		}
		for k := range searchRings {
			for _, oi := range p.ring(w.cellOf(c.Lat, c.Lon, week), k) {
				pair(oi, pi)
			}
		}
	}
}

// takesByRecords is Plan.takes read from the records.
func takesByRecords(p *Plan, oi, pi int32, start int64) bool {
	w := p.w
	o, pu := &w.offers[oi], &w.pupils[pi]
	if !o.visible || !o.open || o.grades&(1<<pu.grade) == 0 || !p.free(o, p.weeksOf(pu)) {
		return false
	}
	s := &w.schools[pu.school]
	switch o.reserved {
	case 1:
		if s.lycee || s.priority == 0 {
			return false
		}
	case 2:
		if !s.lycee || !s.qpv {
			return false
		}
	}
	if w.employers[o.employer].kind == 0 && !o.family && start < pu.turns14 {
		return false
	}
	for a := pu.firstApp; a >= 0; a = p.apps[a].next {
		if p.apps[a].offer == oi {
			return false
		}
	}
	return true
}
