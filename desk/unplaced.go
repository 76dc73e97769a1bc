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
	u := unplacedPage{ix: ix, buckets: map[string]int{"0": 0, "1-2": 0, "3-9": 0, "10+": 0},
		page: newBest(from+min(n, math.MaxInt-from), func(a, b rankedPupil) int {
			if a.n != b.n { // most pupils lose here: no string compared (cmp.Or would compare all three)
				return cmp.Compare(a.n, b.n)
			}
			return cmp.Or(cmp.Compare(a.p.school.reg.UAI, b.p.school.reg.UAI), a.p.id.compare(b.p.id))
		})}
	for _, s := range ix.schools {
		if t.holds(s) {
			u.school(s)
		}
	}
	items = []Unplaced{}
	top := u.page.top()
	for _, r := range top[min(from, len(top)):] {
		p, s := r.p, r.p.school
		items = append(items, Unplaced{PupilID: p.id.String(), SchoolUAI: s.reg.UAI, Department: s.reg.Department, Grade: p.grade,
			EligibleOffers: r.n, EducationPriority: s.group, Wishes: p.wishes != nil})
	}
	return items, u.page.seen + u.counted, u.buckets
}

// holds tells whether school s is in the territory.
func (t Territory) holds(s *school) bool {
	return (t.School == "" || s.reg.UAI == t.School) && (t.Department == "" || s.reg.Department == t.Department)
}

// rankedPupil is a pupil with their eligible offers.
type rankedPupil struct {
	n int
	p *pupil
}

// unplacedPage is an UnplacedPupils under way.
type unplacedPage struct {
	ix      *Index
	page    *best[rankedPupil]
	buckets map[string]int
	counted int // pupils of the cohorts counted whole
}

// school reads the pupils of s without a placement.
func (u *unplacedPage) school(s *school) {
	if !u.ix.counted {
		for _, p := range s.pupils {
			if !p.placed() {
				u.rank(p)
			}
		}
		return
	}
	for _, c := range s.cohorts {
		// none of its pupils has fewer than least offers (c.applied bounds
		// the offers each applied to)
		if last, full := u.page.last(); full {
			if least := c.n - c.applied; least >= 10 && least > last.n {
				u.buckets["10+"] += c.size()
				u.counted += c.size()
				continue
			}
		}
		u.rank(c.first)
		for _, p := range c.more {
			u.rank(p)
		}
	}
}

// rank adds pupil p to the page and to its count by offers.
func (u *unplacedPage) rank(p *pupil) {
	n := u.ix.eligible(p)
	u.page.add(rankedPupil{n, p})
	u.buckets[bucketOf(n)]++
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
