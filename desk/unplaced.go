package desk

import (
	"cmp"
	"slices"

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

// UnplacedPupils are the pupils of a territory without a placement, fewest
// eligible offers first (then by school and id), and how many of them have
// no offer at all, one or two, three to nine, ten or more.
func (ix *Index) UnplacedPupils(t Territory) ([]Unplaced, map[string]int) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := []Unplaced{}
	buckets := map[string]int{"0": 0, "1-2": 0, "3-9": 0, "10+": 0}
	for _, s := range ix.schools {
		if t.School != "" && s.reg.UAI != t.School || t.Department != "" && s.reg.Department != t.Department {
			continue
		}
		for _, p := range s.pupils {
			if p.placed() {
				continue
			}
			n := ix.eligible(p)
			out = append(out, Unplaced{PupilID: p.id, SchoolUAI: s.reg.UAI, Department: s.reg.Department, Grade: p.grade,
				EligibleOffers: n, EducationPriority: s.group, Wishes: p.wishes != nil})
			switch {
			case n == 0:
				buckets["0"]++
			case n <= 2:
				buckets["1-2"]++
			case n <= 9:
				buckets["3-9"]++
			default:
				buckets["10+"]++
			}
		}
	}
	slices.SortFunc(out, func(a, b Unplaced) int {
		return cmp.Or(cmp.Compare(a.EligibleOffers, b.EligibleOffers), cmp.Compare(a.SchoolUAI, b.SchoolUAI), cmp.Compare(a.PupilID, b.PupilID))
	})
	return out, buckets
}
