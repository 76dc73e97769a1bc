package desk

// EligibleByPupil is every pupil without a placement, with their eligible
// offers, read pupil by pupil: what the pages read by cohort must equal.
func EligibleByPupil(ix *Index) map[string]int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := map[string]int{}
	for _, s := range ix.schools {
		for _, p := range s.pupils {
			if !p.placed() {
				out[p.id] = ix.eligible(p)
			}
		}
	}
	return out
}
