package desk

import (
	"cmp"
	"math"

	"passerelle/domain"
)

// Unplaced is one pupil without a confirmed placement, for the desk to
// call: those with the fewest offers to take first.
type Unplaced struct {
	PupilID           string       `json:"pupil_id"`
	SchoolUAI         string       `json:"school_uai"`
	Department        string       `json:"department"`
	Grade             domain.Grade `json:"grade"`
	EligibleOffers    int          `json:"eligible_offers"`
	EducationPriority string       `json:"education_priority"`
	Wishes            bool         `json:"wishes"` // the pupil said what they wish
}

// Territory selects pupils by school or by département ("" for any).
type Territory struct{ School, Department string }

// UnplacedPupils are n pupils of a territory without a placement from
// the from-th, fewest eligible offers first (then by school and id), how
// many there are, and how many of them have no offer at all, one or two,
// three to nine, ten or more. Only the page is kept and sorted: a
// country's pupils are counted, not copied. Once counts are kept, the
// pupils are read by cohort, and once the page is full a cohort whose
// pupils all have ten offers or more, and more than the page's last, is
// counted whole, its pupils not read: in a country most pupils are in
// such cohorts.
func (ix *Index) UnplacedPupils(t Territory, from, n int) (items []Unplaced, total int, buckets map[string]int) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	type ranked struct {
		n int
		p *pupil
	}
	page := newBest(from+min(n, math.MaxInt-from), func(a, b ranked) int {
		if a.n != b.n { // most pupils lose here: no string compared (cmp.Or would compare all three)
			return cmp.Compare(a.n, b.n)
		}
		return cmp.Or(cmp.Compare(a.p.school.reg.UAI, b.p.school.reg.UAI), cmp.Compare(a.p.id, b.p.id))
	})
	buckets = map[string]int{"0": 0, "1-2": 0, "3-9": 0, "10+": 0}
	rank := func(p *pupil) {
		n := ix.eligible(p)
		page.add(ranked{n, p})
		buckets[bucketOf(n)]++
	}
	counted := 0 // pupils of the cohorts counted whole
	for _, s := range ix.schools {
		if t.School != "" && s.reg.UAI != t.School || t.Department != "" && s.reg.Department != t.Department {
			continue
		}
		if !ix.counted {
			for _, p := range s.pupils {
				if !p.placed() {
					rank(p)
				}
			}
			continue
		}
		for _, c := range s.cohorts {
			// none of its pupils has fewer than least offers (c.applied
			// bounds the offers each applied to)
			if last, full := page.last(); full {
				if least := c.n - c.applied; least >= 10 && least > last.n {
					buckets["10+"] += len(c.pupils)
					counted += len(c.pupils)
					continue
				}
			}
			for _, p := range c.pupils {
				rank(p)
			}
		}
	}
	items = []Unplaced{}
	top := page.top()
	for _, r := range top[min(from, len(top)):] {
		p, s := r.p, r.p.school
		items = append(items, Unplaced{PupilID: p.id, SchoolUAI: s.reg.UAI, Department: s.reg.Department, Grade: p.grade,
			EligibleOffers: r.n, EducationPriority: s.group, Wishes: p.wishes != nil})
	}
	return items, page.seen + counted, buckets
}

// bucketOf is the range of eligible offers n falls in, as the desk counts
// them.
func bucketOf(n int) string {
	switch {
	case n == 0:
		return "0"
	case n <= 2:
		return "1-2"
	case n <= 9:
		return "3-9"
	}
	return "10+"
}
