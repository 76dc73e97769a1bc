package desk

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// EligibleByPupil is every pupil without a placement, with their eligible
// offers, read pupil by pupil: what the pages read by cohort must equal.
func EligibleByPupil(ix *Index) map[string]int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := map[string]int{}
	for _, s := range ix.schools {
		for _, p := range s.pupils {
			if !p.placed() {
				out[p.id.String()] = ix.eligible(p)
			}
		}
	}
	return out
}

// Dump is the whole state of the index, in words and in a fixed order:
// two indexes that fold the same log dump the same.
func Dump(ix *Index) string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var b strings.Builder
	names := func(ids []int32) []string { return ix.weeks.namesOf(ids) }
	fmt.Fprintf(&b, "position %d reach %v counted %v weeks %v\n", ix.pos, ix.reach, ix.counted, ix.weeks.names)
	for _, uai := range slices.Sorted(maps.Keys(ix.schools)) {
		s := ix.schools[uai]
		a, c := cellOf(s.lat, s.lon)
		// a school whose pupils look farther than most must be in farAt
		// (it may stay there once they no longer do)
		far, reach := "no pupil looks far", 0.0
		for _, p := range s.pupils {
			reach = max(reach, p.reach)
		}
		if reach > DefaultMaxDistanceKM {
			far = fmt.Sprintf("pupils look far, in farAt: %v", s.far > 0 && farReach[s.far-1] >= min(reach, farReach[len(farReach)-1]) &&
				ix.farAt[s.far-1][cellKey(a, c)][s.farCell].v == s)
		}
		fmt.Fprintf(&b, "school %+v group %s at %v,%v grades %d cohorts %d, %s\n", s.reg, s.group, s.lat, s.lon,
			ix.schoolAt[cellKey(a, c)][s.cell].grades, len(s.cohorts), far)
		for _, p := range s.pupils {
			var applied []string
			for _, o := range p.applied {
				applied = append(applied, o.id)
			}
			var confirmed, busy []string
			for _, c := range p.confirmed {
				confirmed = append(confirmed, fmt.Sprint(c.app, names(c.weeks)))
				busy = append(busy, names(c.weeks)...)
			}
			slices.Sort(confirmed)
			slices.Sort(busy)
			eligible := -1 // before the counts, not made yet
			if ix.counted {
				eligible = ix.eligible(p)
			}
			fmt.Fprintf(&b, "  pupil %s %s born %s wishes %+v weeks %v reach %v 14 at %d applied %v confirmed %v busy %v proposed %d holding %d cohort %v eligible %d\n",
				p.id, p.grade, p.birth.Format(time.DateOnly), p.wishes, names(p.wishWeeks), p.reach, p.fourteen, applied, confirmed, busy,
				p.proposed, p.holding, p.cohort != nil, eligible)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(ix.offers)) {
		o := ix.offers[id]
		fmt.Fprintf(&b, "offer %s %s %s %s %s %s %s %s grades %v age %v open %v collective %v weeks %v held %v seats %d reserved %+v at %v,%v\n",
			o.id, o.employerID, o.employerName, o.title, o.kind, o.sector, o.commune, o.department, o.grades, o.ageRule, o.open,
			o.collective, names(o.weeks), o.held, o.seats, o.reserved, o.lat, o.lon)
	}
	for _, k := range slices.Sorted(maps.Keys(ix.offerAt)) {
		fmt.Fprintf(&b, "offers of cell %d:", k)
		for _, pt := range ix.offerAt[k] {
			fmt.Fprintf(&b, " %s/%d", pt.v.id, pt.grades)
		}
		b.WriteString("\n")
	}
	for _, k := range slices.Sorted(maps.Keys(ix.schoolAt)) {
		fmt.Fprintf(&b, "schools of cell %d:", k)
		for _, pt := range ix.schoolAt[k] {
			fmt.Fprintf(&b, " %s", pt.v.reg.UAI)
		}
		b.WriteString("\n")
	}
	for _, app := range slices.Sorted(maps.Keys(ix.proposals)) {
		pr := ix.proposals[app]
		fmt.Fprintf(&b, "proposal %s %s %s %v\n", app, pr.p.id, pr.o.id, names(pr.weeks))
	}
	for _, app := range slices.Sorted(maps.Keys(ix.seats)) {
		fmt.Fprintf(&b, "seat %s %s\n", app, ix.seats[app].id)
	}
	return b.String()
}
