package allocation

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// forMarkets runs check on n random markets drawn from fixed seeds, so a
// failure names the seed that reproduces it.
func forMarkets(t *testing.T, n, pupils, slots, maxChoices, maxSeats int, check func(t *testing.T, m Market)) {
	t.Helper()
	for seed := range uint64(n) {
		m := randomMarket(rand.New(rand.NewPCG(seed, 7)), pupils, slots, maxChoices, maxSeats)
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { check(t, m) })
	}
}

func TestRunIsStable(t *testing.T) {
	forMarkets(t, 300, 40, 12, 6, 3, func(t *testing.T, m Market) {
		if err := Stable(m, Run(m)); err != nil {
			t.Fatal(err)
		}
	})
}

// TestStableFindsBlockingPairs holds the checker itself to account: on the
// same markets, the first-come rule (not stable in general) must be caught
// at least once, and a pupil moved out of their slot always.
func TestStableFindsBlockingPairs(t *testing.T) {
	caught := 0
	forMarkets(t, 100, 40, 12, 6, 3, func(t *testing.T, m Market) {
		if Stable(m, FirstCome(m)) != nil {
			caught++
		}
		r := Run(m)
		for i, c := range r.Choice {
			if c >= 0 {
				r.Choice[i] = -1 // the seat they held is free and they want it
				if Stable(m, r) == nil {
					t.Fatalf("pupil %d unplaced from a slot they listed: not caught", i)
				}
				return
			}
		}
	})
	if caught == 0 {
		t.Fatal("first come was stable on every market: the checker catches nothing")
	}
}

func TestRunNeverOverSeats(t *testing.T) {
	forMarkets(t, 300, 60, 10, 8, 2, func(t *testing.T, m Market) {
		for _, r := range []Result{Run(m), FirstCome(m)} {
			if _, err := Check(m, r); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestRunReservedFirst: no pupil eligible through a slot's reservation is
// turned away from it while a pupil who is not holds a seat there.
func TestRunReservedFirst(t *testing.T) {
	forMarkets(t, 300, 40, 8, 6, 3, func(t *testing.T, m Market) {
		r := Run(m)
		holds, err := Check(m, r)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range m.Pupils {
			for c, ch := range p.Choices {
				if r.Choice[i] >= 0 && c >= int(r.Choice[i]) {
					break // got this or better
				}
				if !ch.Reserved {
					continue
				}
				for _, other := range holds[ch.Slot] {
					if !m.Pupils[other].Choices[r.Choice[other]].Reserved {
						t.Fatalf("pupil %s, reserved at slot %d, turned away while %s, not reserved, holds a seat", p.ID, ch.Slot, m.Pupils[other].ID)
					}
				}
			}
		}
	})
}

// TestRunPriorityOrder: written apart from the algorithm's own order, no
// pupil is turned away from a slot that holds a pupil after them by
// reserved eligibility, then priority, then distance.
func TestRunPriorityOrder(t *testing.T) {
	rank := func(m Market, i int, c Choice) [3]float64 {
		res := 0.0
		if c.Reserved {
			res = 1
		}
		return [3]float64{res, float64(m.Pupils[i].Priority), -c.DistanceKM}
	}
	after := func(a, b [3]float64) bool { // a strictly after b
		for k := range a {
			if a[k] != b[k] {
				return a[k] < b[k]
			}
		}
		return false
	}
	forMarkets(t, 300, 40, 8, 6, 3, func(t *testing.T, m Market) {
		r := Run(m)
		holds, err := Check(m, r)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range m.Pupils {
			for c, ch := range p.Choices {
				if r.Choice[i] >= 0 && c >= int(r.Choice[i]) {
					break
				}
				for _, h := range holds[ch.Slot] {
					if after(rank(m, h, m.Pupils[h].Choices[r.Choice[h]]), rank(m, i, ch)) {
						t.Fatalf("pupil %s turned away from slot %d, which holds %s after them", p.ID, ch.Slot, m.Pupils[h].ID)
					}
				}
			}
		}
	})
}

func TestRunDeterministicForASeed(t *testing.T) {
	differs := false
	forMarkets(t, 100, 40, 8, 6, 2, func(t *testing.T, m Market) {
		a, b := Run(m), Run(m)
		if !slices.Equal(a.Choice, b.Choice) {
			t.Fatal("two runs of one market and seed differ")
		}
		if fa, fb := FirstCome(m), FirstCome(m); !slices.Equal(fa.Choice, fb.Choice) {
			t.Fatal("two first-come runs of one market and seed differ")
		}
		m.Seed++
		differs = differs || !slices.Equal(a.Choice, Run(m).Choice)
	})
	if !differs {
		t.Fatal("the seed never changes the result: the lottery breaks no tie")
	}
}

// TestRunPupilOptimal compares Run with every stable matching of small
// markets, found by brute force: each pupil does at least as well in
// Run's as in any of them.
func TestRunPupilOptimal(t *testing.T) {
	forMarkets(t, 200, 6, 4, 3, 2, func(t *testing.T, m Market) {
		r := Run(m)
		stable := 0
		for _, other := range allAllocations(m) {
			if Stable(m, other) != nil {
				continue
			}
			stable++
			for i := range m.Pupils {
				if rank(m, r, i) > rank(m, other, i) {
					t.Fatalf("pupil %s does better in another stable matching: choice %d, not %d", m.Pupils[i].ID, other.Choice[i], r.Choice[i])
				}
			}
		}
		if stable == 0 {
			t.Fatal("no stable matching found: Run's should be one")
		}
	})
}

// rank is the pupil's rank of what they got, unplaced last.
func rank(m Market, r Result, i int) int {
	if r.Choice[i] < 0 {
		return len(m.Pupils[i].Choices)
	}
	return int(r.Choice[i])
}

// allAllocations enumerates every assignment of pupils to one of their
// choices or none, within seats.
func allAllocations(m Market) []Result {
	var out []Result
	cur := make([]int32, len(m.Pupils))
	left := make([]int, len(m.Slots))
	for s, sl := range m.Slots {
		left[s] = sl.Seats
	}
	var walk func(i int)
	walk = func(i int) {
		if i == len(m.Pupils) {
			out = append(out, Result{Choice: slices.Clone(cur)})
			return
		}
		cur[i] = -1
		walk(i + 1)
		for c, ch := range m.Pupils[i].Choices {
			if left[ch.Slot] > 0 {
				left[ch.Slot]--
				cur[i] = int32(c)
				walk(i + 1)
				left[ch.Slot]++
			}
		}
	}
	walk(0)
	return out
}

// TestFirstComeTakesBestFreeSeat: in arrival order, each pupil got their
// best choice with a seat left when they came.
func TestFirstComeTakesBestFreeSeat(t *testing.T) {
	forMarkets(t, 200, 40, 8, 6, 2, func(t *testing.T, m Market) {
		r := FirstCome(m)
		if _, err := Check(m, r); err != nil {
			t.Fatal(err)
		}
		lottery := Lottery(m)
		order := make([]int, len(m.Pupils))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(a, b int) int {
			if lottery[a] < lottery[b] {
				return -1
			}
			return 1
		})
		left := make([]int, len(m.Slots))
		for s, sl := range m.Slots {
			left[s] = sl.Seats
		}
		for _, i := range order {
			want := int32(slices.IndexFunc(m.Pupils[i].Choices, func(c Choice) bool { return left[c.Slot] > 0 }))
			if r.Choice[i] != want {
				t.Fatalf("pupil %s got choice %d, the best free when they came was %d", m.Pupils[i].ID, r.Choice[i], want)
			}
			if want >= 0 {
				left[m.Pupils[i].Choices[want].Slot]--
			}
		}
	})
}

func TestFiguresAgreeWithMatches(t *testing.T) {
	forMarkets(t, 50, 40, 8, 6, 3, func(t *testing.T, m Market) {
		r := Run(m)
		f := FiguresOf(m, r)
		matches := r.Matches(m)
		seats := 0
		for _, s := range m.Slots {
			seats += s.Seats
		}
		byGroup := 0
		for _, n := range f.PlacedByPriority {
			byGroup += n
		}
		if f.Placed != len(matches) || byGroup != f.Placed || f.SeatsLeft != seats-f.Placed || f.Pupils != len(m.Pupils) {
			t.Fatalf("figures %+v for %d matches and %d seats", f, len(matches), seats)
		}
		if f.Placed > 0 && (f.DistanceKMMedian > f.DistanceKMP90 || f.DistanceKMP90 > 2) {
			t.Fatalf("distances: median %v, p90 %v (drawn 0 to 2)", f.DistanceKMMedian, f.DistanceKMP90)
		}
	})
}

func TestNearestRank(t *testing.T) {
	v := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if got := nearestRank(v, 0.5); got != 5 {
		t.Errorf("median of 1…10 = %v, want 5", got)
	}
	if got := nearestRank(v, 0.9); got != 9 {
		t.Errorf("p90 of 1…10 = %v, want 9", got)
	}
	if got := nearestRank(nil, 0.9); got != 0 {
		t.Errorf("p90 of nothing = %v, want 0", got)
	}
}

// repCase is a collège in éducation prioritaire whose two pupils can reach
// one offer only (2 seats), and ten pupils of another collège, nearer to
// it, who would also like it but can go elsewhere (10 seats further
// away): only their priority gives the REP pupils the seats.
func repCase(seed int64) Market {
	m := Market{Seed: seed, Slots: []Slot{
		{OfferID: "near-rep", Weeks: []string{"2027-W10"}, Seats: 2},
		{OfferID: "town", Weeks: []string{"2027-W10"}, Seats: 10},
	}}
	for i := range 2 {
		m.Pupils = append(m.Pupils, Pupil{ID: fmt.Sprint("rep", i), Group: "rep", Priority: 1,
			Choices: []Choice{{Slot: 0, DistanceKM: 4}}})
	}
	for i := range 10 {
		m.Pupils = append(m.Pupils, Pupil{ID: fmt.Sprint("other", i), Group: "none",
			Choices: []Choice{{Slot: 0, DistanceKM: 2}, {Slot: 1, DistanceKM: 6}}})
	}
	return m
}

func TestRoundPlacesREPPupilsFirstComeLeaves(t *testing.T) {
	leftOut := 0
	for seed := range int64(20) {
		m := repCase(seed)
		da, fc := FiguresOf(m, Run(m)), FiguresOf(m, FirstCome(m))
		if da.PlacedByPriority["rep"] != 2 || da.Placed != 12 {
			t.Fatalf("seed %d: the round placed %d REP pupils of 2, %d of 12", seed, da.PlacedByPriority["rep"], da.Placed)
		}
		if fc.PlacedByPriority["rep"] < 2 {
			leftOut++
		}
		if seed == 1 && fc.PlacedByPriority["rep"] != 0 {
			t.Fatalf("seed 1: first come placed %d REP pupils, want 0 (the others came first)", fc.PlacedByPriority["rep"])
		}
	}
	if leftOut < 15 {
		t.Fatalf("first come left REP pupils out on %d seeds of 20, want most", leftOut)
	}
}
