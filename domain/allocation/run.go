package allocation

import (
	"math/rand/v2"
	"slices"
)

// Scope is what a campaign's round allocates: pupils of schools in these
// départements (and communes, when given), of these grades, for offers in
// these weeks. An empty list does not restrict.
type Scope struct {
	Departments []string `json:"departments"`
	Communes    []string `json:"communes,omitempty"`
	Grades      []string `json:"grades,omitempty"`
	Weeks       []string `json:"weeks,omitempty"`
}

// Match is one placement a round proposes: a pupil, an offer and the weeks
// of the slot.
type Match struct {
	PupilID string   `json:"pupil_id"`
	OfferID string   `json:"offer_id"`
	Weeks   []string `json:"weeks"`
}

// Result is an allocation: for each pupil of the market (same index), the
// index in its Choices of the slot it got, or -1.
type Result struct {
	Choice []int32
}

// Slot returns the slot index pupil i got in m, or -1.
func (r Result) Slot(m Market, i int) int {
	if r.Choice[i] < 0 {
		return -1
	}
	return m.Pupils[i].Choices[r.Choice[i]].Slot
}

// Matches lists the result's placements, in the order of the market's
// pupils.
func (r Result) Matches(m Market) []Match {
	out := make([]Match, 0, len(r.Choice))
	for i, c := range r.Choice {
		if c < 0 {
			continue
		}
		s := m.Slots[m.Pupils[i].Choices[c].Slot]
		out = append(out, Match{PupilID: m.Pupils[i].ID, OfferID: s.OfferID, Weeks: s.Weeks})
	}
	return out
}

// key is where a pupil stands in a slot's priority order for one choice:
// reserved eligibility first, then the pupil's priority (higher first),
// then distance (smaller first), then the pupil's lottery number (smaller
// first). The lottery is one number per pupil for every slot (single tie
// breaking): with it deferred acceptance stays strategy-proof for pupils
// and wastes fewer seats than a draw per offer.
type key struct {
	reserved bool
	priority int
	distance float64
	lottery  uint64
	pupil    int32 // also the final tie-break, should two lottery numbers collide
	choice   int32
}

// better reports whether a comes before b in a slot's priority order.
func (a key) better(b key) bool {
	switch {
	case a.reserved != b.reserved:
		return a.reserved
	case a.priority != b.priority:
		return a.priority > b.priority
	case a.distance != b.distance:
		return a.distance < b.distance
	case a.lottery != b.lottery:
		return a.lottery < b.lottery
	}
	return a.pupil < b.pupil
}

// Lottery draws each pupil's lottery number from the market's seed: the
// same market and seed always draw the same numbers.
func Lottery(m Market) []uint64 {
	rng := rand.New(rand.NewPCG(uint64(m.Seed), 0x9e3779b97f4a7c15))
	out := make([]uint64, len(m.Pupils))
	for i := range out {
		out[i] = rng.Uint64()
	}
	return out
}

func keyOf(m Market, lottery []uint64, pupil, choice int) key {
	p := &m.Pupils[pupil]
	c := p.Choices[choice]
	return key{reserved: c.Reserved, priority: p.Priority, distance: c.DistanceKM,
		lottery: lottery[pupil], pupil: int32(pupil), choice: int32(choice)}
}

// Run allocates the market by pupil-proposing deferred acceptance: each
// unplaced pupil proposes to their best slot not yet tried; the slot keeps
// the best pupils it has been proposed, up to its seats, and turns away
// the worst when full. The result is stable and, among stable matchings,
// the best for every pupil; no pupil gains by misreporting their ranking.
//
// Each slot holds its pupils in a max-heap on the worst, in one array for
// all slots, so a proposal costs O(log seats) and the whole run
// O(choices × log seats) time and O(pupils + seats) memory beyond the market.
func Run(m Market) Result {
	lottery := Lottery(m)
	// heaps: slot s's held pupils are held[start[s] : start[s]+size[s]]
	start := make([]int, len(m.Slots)+1)
	for s, sl := range m.Slots {
		start[s+1] = start[s] + max(sl.Seats, 0)
	}
	held := make([]key, start[len(m.Slots)])
	size := make([]int32, len(m.Slots))
	next := make([]int32, len(m.Pupils)) // next choice each pupil proposes to
	res := Result{Choice: make([]int32, len(m.Pupils))}
	for i := range res.Choice {
		res.Choice[i] = -1
	}
	free := make([]int32, len(m.Pupils)) // a stack of pupils to place
	for i := range free {
		free[i] = int32(len(m.Pupils) - 1 - i) // pops pupil 0 first
	}
	for len(free) > 0 {
		p := int(free[len(free)-1])
		free = free[:len(free)-1]
		for int(next[p]) < len(m.Pupils[p].Choices) {
			c := int(next[p])
			next[p]++
			s := m.Pupils[p].Choices[c].Slot
			h := held[start[s]:start[s+1]]
			k := keyOf(m, lottery, p, c)
			if n := int(size[s]); n < len(h) {
				h[n] = k
				siftUp(h, n)
				size[s]++
				res.Choice[p] = int32(c)
				break
			}
			if len(h) == 0 || !k.better(h[0]) {
				continue // turned away: next choice
			}
			out := h[0]
			h[0] = k
			siftDown(h, 0)
			res.Choice[p] = int32(c)
			res.Choice[out.pupil] = -1
			free = append(free, out.pupil)
			break
		}
	}
	return res
}

// siftUp and siftDown keep h a heap with the worst pupil at h[0].
func siftUp(h []key, i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !h[parent].better(h[i]) {
			return
		}
		h[parent], h[i] = h[i], h[parent]
		i = parent
	}
}

func siftDown(h []key, i int) {
	for {
		worst, l, r := i, 2*i+1, 2*i+2
		if l < len(h) && h[worst].better(h[l]) {
			worst = l
		}
		if r < len(h) && h[worst].better(h[r]) {
			worst = r
		}
		if worst == i {
			return
		}
		h[i], h[worst] = h[worst], h[i]
		i = worst
	}
}

// FirstCome is the bulletin-board rule a round is compared with: pupils
// arrive one after the other and each takes their best choice that still
// has a free seat; nobody is ever displaced.
//
// The arrival order is the market's lottery (smaller number first). A real
// board is first come, first served, and who comes first is not random:
// families with time, information and networks apply early, which
// disfavours éducation prioritaire pupils further. A random order leaves
// that out, so the gap the preview shows between the two rules is due to
// the rule alone and is, if anything, smaller than on a real board.
func FirstCome(m Market) Result {
	lottery := Lottery(m)
	order := make([]int32, len(m.Pupils))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		if lottery[a] != lottery[b] {
			if lottery[a] < lottery[b] {
				return -1
			}
			return 1
		}
		return int(a - b)
	})
	left := make([]int, len(m.Slots))
	for s, sl := range m.Slots {
		left[s] = max(sl.Seats, 0)
	}
	res := Result{Choice: make([]int32, len(m.Pupils))}
	for _, p := range order {
		res.Choice[p] = -1
		for c, ch := range m.Pupils[p].Choices {
			if left[ch.Slot] > 0 {
				left[ch.Slot]--
				res.Choice[p] = int32(c)
				break
			}
		}
	}
	return res
}
