package desk

import (
	"cmp"
	"math"
	"slices"

	"passerelle/domain"
)

// Suggestion is one open offer a pupil may take, with its score.
//
// The score ranks a pupil's suggestions, higher first (ties: nearer, then
// by id). Its parts, each returned:
//   - offer: the pupil wished this very offer, 50 for the first of their
//     ranked offers down to 14 for the tenth (4 less a rank);
//   - distance: 40 × (1 − distance / the pupil's maximum distance);
//   - sector: the offer's sector is the pupil's n-th wished sector,
//     30 × (6 − n) / 5 (30 for the first, 6 for the fifth);
//   - reserved_for_you: 20 when the offer is reserved (REP, QPV, named
//     schools) and the pupil's school is one it is reserved for;
//   - seats_left: 10 × min(free seats in the pupil's weeks, 5) / 5.
type Suggestion struct {
	ID             string             `json:"id"`
	Title          string             `json:"title"`
	EmployerName   string             `json:"employer_name"`
	Sector         string             `json:"sector"`
	Grades         []domain.Grade     `json:"grades"`
	Weeks          []string           `json:"weeks"`
	SeatsTotal     int                `json:"seats_total"`
	SeatsAvailable int                `json:"seats_available"`
	CommuneCode    string             `json:"commune_code"`
	Department     string             `json:"department"`
	Lat            float64            `json:"lat"`
	Lon            float64            `json:"lon"`
	Status         string             `json:"status"`
	DistanceKM     float64            `json:"distance_km"`
	WeeksForPupil  []string           `json:"weeks_for_pupil"` // what the pupil could apply for
	ReservedForYou bool               `json:"reserved_for_you"`
	Score          float64            `json:"score"`
	ScoreParts     map[string]float64 `json:"score_parts"`
}

// Candidate is one pupil who may take an offer: anonymous, no name,
// school or birth date.
//
// The score ranks an offer's candidates, higher first (ties: by id). Its
// parts, each returned:
//   - education_priority: 30 for a REP+ collège, 20 for a REP collège or a
//     lycée near a QPV (the school's priority);
//   - scarcity: 40 / the number of offers the pupil may take (40 for a
//     pupil for whom this is the only one);
//   - distance: 20 × (1 − distance / the pupil's maximum distance);
//   - sector: 10 × (6 − n) / 5 when the offer's sector is the pupil's n-th
//     wished sector;
//   - offer: 10 when the pupil wished this very offer;
//   - reserved_for_you: 10 when the offer is reserved and the pupil's
//     school is one it is reserved for.
type Candidate struct {
	PupilID           string             `json:"pupil_id"`
	Grade             domain.Grade       `json:"grade"`
	Weeks             []string           `json:"weeks"` // what the pupil could apply for
	EligibleOffers    int                `json:"eligible_offers"`
	EducationPriority string             `json:"education_priority"` // rep_plus, rep, qpv or none
	Score             float64            `json:"score"`
	ScoreParts        map[string]float64 `json:"score_parts"`
}

// Suggestions are the open offers pupil id may take, best first; ok is
// false when the index knows no such pupil.
func (ix *Index) Suggestions(id string) (items []Suggestion, ok bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	p := ix.pupils[id]
	if p == nil {
		return nil, false
	}
	items = []Suggestion{}
	ix.eachOption(p, func(o *offer, km float64, weeks []int32) {
		items = append(items, ix.suggestion(o, p, km, weeks))
	})
	slices.SortFunc(items, func(a, b Suggestion) int {
		return cmp.Or(cmp.Compare(b.Score, a.Score), cmp.Compare(a.DistanceKM, b.DistanceKM), cmp.Compare(a.ID, b.ID))
	})
	return items, true
}

func (ix *Index) suggestion(o *offer, p *pupil, km float64, weeks []int32) Suggestion {
	free := math.MaxInt
	for _, w := range weeks {
		free = min(free, o.seats-o.held[slices.Index(o.weeks, w)])
	}
	reserved := o.reserved.Any() // the pupil is admitted: they may take it
	parts := map[string]float64{
		"offer":            offerWishScore(p, o.id, 50, 4),
		"distance":         round(40 * (1 - km/p.maxKM())),
		"sector":           sectorScore(p, o.sector, 30),
		"reserved_for_you": flag(reserved, 20),
		"seats_left":       round(10 * float64(min(free, 5)) / 5),
	}
	s := Suggestion{ID: o.id, Title: o.title, EmployerName: o.employerName, Sector: o.sector, Grades: o.grades,
		Weeks: ix.weeks.namesOf(o.weeks), SeatsTotal: o.seats * len(o.weeks), CommuneCode: o.commune, Department: o.department,
		Lat: o.lat, Lon: o.lon, Status: "open", DistanceKM: round(km), WeeksForPupil: ix.weeks.namesOf(weeks),
		ReservedForYou: reserved, Score: sum(parts), ScoreParts: parts}
	for _, h := range o.held {
		s.SeatsAvailable += o.seats - h
	}
	return s
}

// Candidates are the pupils who may take offer id, best first; ok is
// false when the index knows no such offer.
func (ix *Index) Candidates(id string) (items []Candidate, ok bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	o := ix.offers[id]
	if o == nil {
		return nil, false
	}
	items = []Candidate{}
	ix.eachTaker(o, func(p *pupil, km float64, weeks []int32) {
		if p.placed() {
			// a pupil placed in other weeks may take these, but the desk
			// looks for those still without a placement
			return
		}
		items = append(items, ix.candidate(o, p, km, weeks))
	})
	slices.SortFunc(items, func(a, b Candidate) int {
		return cmp.Or(cmp.Compare(b.Score, a.Score), cmp.Compare(a.PupilID, b.PupilID))
	})
	return items, true
}

func (ix *Index) candidate(o *offer, p *pupil, km float64, weeks []int32) Candidate {
	group, _ := priority(p.school.reg)
	parts := map[string]float64{
		"education_priority": map[string]float64{"rep_plus": 30, "rep": 20, "qpv": 20}[group],
		"scarcity":           round(40 / float64(max(p.eligible, 1))),
		"distance":           round(20 * (1 - km/p.maxKM())),
		"sector":             sectorScore(p, o.sector, 10),
		"offer":              flag(offerWishScore(p, o.id, 1, 0) > 0, 10),
		"reserved_for_you":   flag(o.reserved.Any(), 10),
	}
	return Candidate{PupilID: p.id, Grade: p.grade, Weeks: ix.weeks.namesOf(weeks), EligibleOffers: p.eligible,
		EducationPriority: group, Score: sum(parts), ScoreParts: parts}
}

// priority is a school's group for the desk and the allocation (rep_plus,
// rep, qpv: a school near a priority neighbourhood outside éducation
// prioritaire, none) and its priority, higher first.
func priority(s domain.SchoolRegistered) (string, int) {
	switch {
	case s.EducationPriority == "rep_plus":
		return "rep_plus", 2
	case s.EducationPriority == "rep":
		return "rep", 1
	case s.QPV:
		return "qpv", 1
	}
	return "none", 0
}

// sectorScore is top × (6 − n) / 5 for the pupil's n-th wished sector.
func sectorScore(p *pupil, sector string, top float64) float64 {
	if p.wishes == nil {
		return 0
	}
	if n := slices.Index(p.wishes.Sectors, sector); n >= 0 {
		return round(top * float64(domain.MaxWishedSectors-n) / domain.MaxWishedSectors)
	}
	return 0
}

// offerWishScore is top − step × (n − 1) for the pupil's n-th wished offer.
func offerWishScore(p *pupil, id string, top, step float64) float64 {
	if p.wishes == nil {
		return 0
	}
	if n := slices.Index(p.wishes.Offers, id); n >= 0 {
		return top - step*float64(n)
	}
	return 0
}

func flag(b bool, v float64) float64 {
	if b {
		return v
	}
	return 0
}

func sum(parts map[string]float64) float64 {
	t := 0.0
	for _, v := range parts {
		t += v
	}
	return round(t)
}

func round(x float64) float64 { return math.Round(x*100) / 100 }
