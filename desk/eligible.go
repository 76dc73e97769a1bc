package desk

import (
	"slices"

	"passerelle/domain"
)

// span is the weeks a pupil could apply for on an offer: one week, or two
// consecutive ones (second ≥ 0) for a 2de.
type span struct{ first, second int32 }

func (s span) ids() []int32 {
	if s.second < 0 {
		return []int32{s.first}
	}
	return []int32{s.first, s.second}
}

// period is the weeks pupil p could apply for on offer o, and false when p
// may not take o: the checks of domain.Application.Submit on the index's
// values (distance is the caller's, measured once per school). For 4e and
// 3e it is the first week that fits; for 2de, the first two consecutive
// weeks that fit, else the first week.
func (ix *Index) period(o *offer, p *pupil) (span, bool) {
	if !ix.admits(o, p) {
		return span{}, false
	}
	first, prev := int32(-1), int32(-1)
	for i, w := range o.weeks {
		if !ix.weekFits(o, p, i, w) {
			prev = -1
			continue
		}
		switch {
		case !p.grade.Lycee():
			return span{w, -1}, true
		case prev >= 0 && ix.weeks.next[prev] == w:
			return span{prev, w}, true
		case first < 0:
			first = w
		}
		prev = w
	}
	return span{first, -1}, first >= 0
}

// takes reports whether pupil p may take offer o (distance aside).
func (ix *Index) takes(o *offer, p *pupil) bool {
	return ix.admits(o, p) && ix.fits(o, p)
}

// fits is takes but for the one application per offer: the offer is open,
// for the pupil's grade, its reservation lets the pupil's school in, and
// a week fits.
func (ix *Index) fits(o *offer, p *pupil) bool {
	return o.open && o.gradeSet&gradeBit(p.grade) != 0 && o.reserved.Admits(p.school.reg) && ix.anyWeekFits(o, p)
}

// admits: the offer is open, for the pupil's grade, not applied for yet
// (one application per offer) and its reservation lets the pupil's
// school in.
func (ix *Index) admits(o *offer, p *pupil) bool {
	return o.open && o.gradeSet&gradeBit(p.grade) != 0 && !slices.Contains(p.applied, o) && o.reserved.Admits(p.school.reg)
}

// weekFits: week w (the i-th of o) has not started, has a free seat, is one
// the pupil can go, overlaps no confirmed placement of theirs, and the age
// rule lets the pupil in on its first day.
func (ix *Index) weekFits(o *offer, p *pupil, i int, w int32) bool {
	if ix.weeks.started[w] || o.held[i] >= o.seats || p.busy(w) {
		return false
	}
	if p.wishWeeks != nil {
		if _, ok := slices.BinarySearch(p.wishWeeks, w); !ok {
			return false
		}
	}
	return !o.ageRule || ix.oldEnough(p, w)
}

func (t *weekTable) namesOf(ids []int32) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = t.names[id]
	}
	return out
}

// eachOption calls f with every offer pupil p may take, its distance from
// the pupil's school and the weeks p could apply for.
func (ix *Index) eachOption(p *pupil, f func(o *offer, km float64, weeks span)) {
	s, bit := p.school, gradeBit(p.grade)
	ix.offerAt.within(s.lat, s.lon, p.reach, bit, func(o *offer, d domain.Way) {
		if !o.open || o.gradeSet&bit == 0 {
			return
		}
		if weeks, ok := ix.period(o, p); ok {
			f(o, d.KM(), weeks)
		}
	})
}

// eachTaker calls f with every pupil who may take offer o, their school's
// distance from it and the weeks they could apply for.
func (ix *Index) eachTaker(o *offer, f func(p *pupil, km float64, weeks span)) {
	if !o.open {
		return
	}
	ix.schoolsNear(o.lat, o.lon, o.gradeSet, func(s *school, d domain.Way) {
		if len(s.pupils) == 0 || !o.reserved.Admits(s.reg) {
			return
		}
		km := -1.0 // worked out for the first pupil who may take o
		for _, p := range s.pupils {
			if o.gradeSet&gradeBit(p.grade) == 0 || !d.AtMost(p.reach) {
				continue
			}
			if weeks, ok := ix.period(o, p); ok {
				if km < 0 {
					km = d.KM()
				}
				f(p, km, weeks)
			}
		}
	})
}

// eachCounted calls f with every cohort whose count holds offer o (see
// recount).
func (ix *Index) eachCounted(o *offer, f func(c *cohort)) {
	latest, ok := ix.latestFreeWeek(o)
	if !o.open || !ok {
		return // no pupil can take an offer without a free week
	}
	ix.schoolsNear(o.lat, o.lon, o.gradeSet, func(s *school, d domain.Way) {
		if !o.reserved.Admits(s.reg) {
			return
		}
		for _, c := range s.cohorts {
			if d.Within(c.reach) && ix.cohortTakes(c, o, latest) {
				f(c)
			}
		}
	})
}

// latestFreeWeek is the week of o that starts last among those not
// started with a free seat, and false when there is none.
func (ix *Index) latestFreeWeek(o *offer) (int32, bool) {
	latest := int32(-1)
	for i, w := range o.weeks {
		if !ix.startedFor(o, w) && o.held[i] < o.seats && (latest < 0 || ix.weeks.starts[w].After(ix.weeks.starts[latest])) {
			latest = w
		}
	}
	return latest, latest >= 0
}

// anyWeekFits: a week of o fits pupil p (see weekFits).
func (ix *Index) anyWeekFits(o *offer, p *pupil) bool {
	for i, w := range o.weeks {
		if ix.weekFits(o, p, i, w) {
			return true
		}
	}
	return false
}

func distance(s *school, o *offer) float64 { return domain.DistanceKM(s.lat, s.lon, o.lat, o.lon) }
