package desk

import (
	"slices"

	"passerelle/domain"
)

// period is the weeks pupil p could apply for on offer o, or nil when p
// may not take o: the checks of domain.Application.Submit on the index's
// values. Distance is the caller's (it is measured once per school).
//
// For 4e and 3e it is the first week that fits; for 2de, the first two
// consecutive weeks that fit, else the first week.
func (ix *Index) period(o *offer, p *pupil) []int32 {
	if !o.open || !slices.Contains(o.grades, p.grade) || p.applied[o.id] || !o.reserved.Admits(p.school.reg) {
		return nil
	}
	var fit []int32
	for i, w := range o.weeks {
		if ix.weekFits(o, p, i, w) {
			fit = append(fit, w)
		}
	}
	if len(fit) == 0 {
		return nil
	}
	if p.grade.Lycee() {
		for i := 1; i < len(fit); i++ {
			if ix.weeks.next[fit[i-1]] == fit[i] {
				return fit[i-1 : i+1]
			}
		}
	}
	return fit[:1]
}

// weekFits: week w (the i-th of o) has not started, has a free seat, is one
// the pupil can go, overlaps no confirmed placement of theirs, and the age
// rule lets the pupil in on its first day.
func (ix *Index) weekFits(o *offer, p *pupil, i int, w int32) bool {
	if ix.weeks.started[w] || o.held[i] >= o.seats {
		return false
	}
	if p.wishWeeks != nil {
		if _, ok := slices.BinarySearch(p.wishWeeks, w); !ok {
			return false
		}
	}
	for _, weeks := range p.confirmed {
		if slices.Contains(weeks, w) {
			return false
		}
	}
	return p.birth.IsZero() || domain.AgeAllows(o.kind, o.family, p.birth, ix.weeks.starts[w])
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
func (ix *Index) eachOption(p *pupil, f func(o *offer, km float64, weeks []int32)) {
	s, reach := p.school, p.maxKM()
	ix.offerAt.near(s.lat, s.lon, reach, func(o *offer) {
		if !o.open || !slices.Contains(o.grades, p.grade) {
			return
		}
		d := domain.DistanceKM(s.lat, s.lon, o.lat, o.lon)
		if d > reach {
			return
		}
		if weeks := ix.period(o, p); weeks != nil {
			f(o, d, weeks)
		}
	})
}

// eachTaker calls f with every pupil who may take offer o, their school's
// distance from it and the weeks they could apply for.
func (ix *Index) eachTaker(o *offer, f func(p *pupil, km float64, weeks []int32)) {
	if !o.open {
		return
	}
	ix.schoolAt.near(o.lat, o.lon, ix.reach, func(s *school) {
		if len(s.pupils) == 0 || !o.reserved.Admits(s.reg) {
			return
		}
		d := domain.DistanceKM(s.lat, s.lon, o.lat, o.lon)
		if d > ix.reach {
			return
		}
		for _, p := range s.pupils {
			if d > p.maxKM() {
				continue
			}
			if weeks := ix.period(o, p); weeks != nil {
				f(p, d, weeks)
			}
		}
	})
}

func distance(s *school, o *offer) float64 { return domain.DistanceKM(s.lat, s.lon, o.lat, o.lon) }
