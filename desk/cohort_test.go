package desk

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// A cohort holds the pupils added and not removed, each where its
// inCohort says, through any order of additions and removals.
func TestCohortMembers(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	pupils := make([]*pupil, 40)
	for i := range pupils {
		pupils[i] = &pupil{id: idOf(string(rune('A' + i)))}
	}
	c := &cohort{}
	var in []*pupil // what the cohort should hold
	for step := range 5000 {
		p := pupils[r.IntN(len(pupils))]
		if i := slices.Index(in, p); i >= 0 {
			empty := c.remove(p)
			in = slices.Delete(in, i, i+1)
			if empty != (len(in) == 0) {
				t.Fatalf("step %d: removing %v told empty %v with %d pupils left", step, p.id, empty, len(in))
			}
		} else {
			c.add(p)
			in = append(in, p)
			if p.cohort != c {
				t.Fatalf("step %d: %v added, not pointing to the cohort", step, p.id)
			}
		}
		var held []*pupil
		if c.first != nil {
			held = append(held, c.first)
		}
		held = append(held, c.more...)
		for i, q := range held {
			if q.inCohort != i {
				t.Fatalf("step %d: %v held at %d, its inCohort %d", step, q.id, i, q.inCohort)
			}
		}
		byID := func(a, b *pupil) int { return a.id.compare(b.id) }
		if c.size() != len(in) || !slices.Equal(slices.SortedFunc(slices.Values(held), byID), slices.SortedFunc(slices.Values(in), byID)) {
			t.Fatalf("step %d: the cohort holds %d pupils (size %d), want %d", step, len(held), c.size(), len(in))
		}
	}
}
