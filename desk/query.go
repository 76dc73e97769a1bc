package desk

import (
	"cmp"
	"math"
	"slices"

	"passerelle/domain"
)

// Suggestion is one open offer a pupil may take, with its score.
type Suggestion struct {
	ID             string          `json:"id"`
	Title          string          `json:"title"`
	EmployerName   string          `json:"employer_name"`
	Sector         string          `json:"sector"`
	Grades         []domain.Grade  `json:"grades"`
	Weeks          []string        `json:"weeks"`
	SeatsTotal     int             `json:"seats_total"`
	SeatsAvailable int             `json:"seats_available"`
	CommuneCode    string          `json:"commune_code"`
	Department     string          `json:"department"`
	Lat            float64         `json:"lat"`
	Lon            float64         `json:"lon"`
	Status         string          `json:"status"`
	DistanceKM     float64         `json:"distance_km"`
	WeeksForPupil  []string        `json:"weeks_for_pupil"` // what the pupil could apply for
	ReservedForYou bool            `json:"reserved_for_you"`
	Score          float64         `json:"score"`
	ScoreParts     SuggestionParts `json:"score_parts"`
}

// SuggestionParts are the parts of a suggestion's score, which ranks a
// pupil's suggestions, higher first (ties: nearer, then by id).
type SuggestionParts struct {
	// Offer: the pupil wished this very offer, 50 for the first of their
	// ranked offers down to 14 for the tenth (4 less a rank).
	Offer float64 `json:"offer"`
	// Distance: 40 × (1 − distance / the pupil's maximum distance).
	Distance float64 `json:"distance"`
	// Sector: the offer's sector is the pupil's n-th wished sector,
	// 30 × (6 − n) / 5 (30 for the first, 6 for the fifth).
	Sector float64 `json:"sector"`
	// ReservedForYou: 20 when the offer is reserved (REP, QPV, named
	// schools) and the pupil's school is one it is reserved for.
	ReservedForYou float64 `json:"reserved_for_you"`
	// SeatsLeft: 10 × min(free seats in the pupil's weeks, 5) / 5.
	SeatsLeft float64 `json:"seats_left"`
}

func (s SuggestionParts) sum() float64 {
	return round(s.Offer + s.Distance + s.Sector + s.ReservedForYou + s.SeatsLeft)
}

// Candidate is one pupil who may take an offer: anonymous, no name,
// school or birth date.
type Candidate struct {
	PupilID           string         `json:"pupil_id"`
	Grade             domain.Grade   `json:"grade"`
	Weeks             []string       `json:"weeks"` // what the pupil could apply for
	EligibleOffers    int            `json:"eligible_offers"`
	EducationPriority string         `json:"education_priority"` // rep_plus, rep, qpv or none
	Score             float64        `json:"score"`
	ScoreParts        CandidateParts `json:"score_parts"`
}

// CandidateParts are the parts of a candidate's score, which ranks an
// offer's candidates, higher first (ties: by id).
type CandidateParts struct {
	// EducationPriority: 30 for a REP+ collège, 20 for a REP collège or a
	// school near a QPV.
	EducationPriority float64 `json:"education_priority"`
	// Scarcity: 40 / the number of offers the pupil may take (40 for a
	// pupil for whom this is the only one).
	Scarcity float64 `json:"scarcity"`
	// Distance: 20 × (1 − distance / the pupil's maximum distance).
	Distance float64 `json:"distance"`
	// Sector: 10 × (6 − n) / 5 when the offer's sector is the pupil's n-th
	// wished sector.
	Sector float64 `json:"sector"`
	// Offer: 10 when the pupil wished this very offer.
	Offer float64 `json:"offer"`
	// ReservedForYou: 10 when the offer is reserved and the pupil's school
	// is one it is reserved for.
	ReservedForYou float64 `json:"reserved_for_you"`
}

func (c CandidateParts) sum() float64 {
	return round(c.EducationPriority + c.Scarcity + c.Distance + c.Sector + c.Offer + c.ReservedForYou)
}

// scoredOffer is a suggestion before it is written out.
type scoredOffer struct {
	o     *offer
	km    float64
	weeks span
	parts SuggestionParts
	score float64
}

// Suggestions are n of the open offers pupil id may take from the from-th,
// best first, and how many there are; ok is false when the index knows no
// such pupil.
func (ix *Index) Suggestions(id string, from, n int) (items []Suggestion, total int, ok bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	p := ix.pupils.get(id)
	if p == nil {
		return nil, 0, false
	}
	page := newBest(from+n, byScore)
	ix.scoreOffers(p, page.add)
	items = []Suggestion{}
	top := page.top()
	for _, s := range top[min(from, len(top)):] {
		items = append(items, ix.suggestion(s))
	}
	return items, page.seen, true
}

// byScore ranks suggestions: best score, then nearer, then by id (each
// compared only when needed: cmp.Or would compare the ids every time).
func byScore(a, b scoredOffer) int {
	if c := cmp.Compare(b.score, a.score); c != 0 {
		return c
	}
	if c := cmp.Compare(a.km, b.km); c != 0 {
		return c
	}
	return cmp.Compare(a.o.id, b.o.id)
}

// scoreOffers calls f with each offer p may take, scored.
func (ix *Index) scoreOffers(p *pupil, f func(scoredOffer)) {
	ix.eachOption(p, func(o *offer, km float64, weeks span) {
		free := o.free(weeks.ids(), nil)
		parts := SuggestionParts{
			Offer:          offerWishScore(p, o.id, 50, 4),
			Distance:       round(40 * (1 - km/p.reach)),
			Sector:         sectorScore(p, o.sector, 30),
			ReservedForYou: flag(o.reserved.Any(), 20), // the pupil is let in: it is reserved for them
			SeatsLeft:      round(10 * float64(min(free, 5)) / 5),
		}
		f(scoredOffer{o: o, km: km, weeks: weeks, parts: parts, score: parts.sum()})
	})
}

func (ix *Index) suggestion(s scoredOffer) Suggestion {
	o := s.o
	out := Suggestion{ID: o.id, Title: o.title, EmployerName: o.employerName, Sector: o.sector, Grades: o.grades,
		Weeks: ix.weeks.namesOf(o.weeks), SeatsTotal: o.seats * len(o.weeks), CommuneCode: o.commune, Department: o.department,
		Lat: o.lat, Lon: o.lon, Status: "open", DistanceKM: round(s.km), WeeksForPupil: ix.weeks.namesOf(s.weeks.ids()),
		ReservedForYou: o.reserved.Any(), Score: s.score, ScoreParts: s.parts}
	for _, h := range o.held {
		out.SeatsAvailable += o.seats - h
	}
	return out
}

// scoredPupil is a candidate before it is written out.
type scoredPupil struct {
	p     *pupil
	weeks span
	parts CandidateParts
	score float64
}

// Candidates are n of the pupils without a placement who may take offer
// id from the from-th, best first, and how many there are; ok is false
// when the index knows no such offer.
func (ix *Index) Candidates(id string, from, n int) (items []Candidate, total int, ok bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	o := ix.offers[id]
	if o == nil {
		return nil, 0, false
	}
	page := newBest(from+n, func(a, b scoredPupil) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return a.p.id.compare(b.p.id)
	})
	ix.eachTaker(o, func(p *pupil, km float64, weeks span) {
		if p.placed() {
			// a pupil placed in other weeks may take these, but the desk
			// looks for those still without a placement
			return
		}
		parts := CandidateParts{
			EducationPriority: priorityScore(p.school.group),
			Scarcity:          round(40 / float64(max(ix.eligible(p), 1))),
			Distance:          round(20 * (1 - km/p.reach)),
			Sector:            sectorScore(p, o.sector, 10),
			Offer:             flag(offerWishScore(p, o.id, 1, 0) > 0, 10),
			ReservedForYou:    flag(o.reserved.Any(), 10),
		}
		page.add(scoredPupil{p: p, weeks: weeks, parts: parts, score: parts.sum()})
	})
	items = []Candidate{}
	top := page.top()
	for _, s := range top[min(from, len(top)):] {
		items = append(items, Candidate{PupilID: s.p.id.String(), Grade: s.p.grade, Weeks: ix.weeks.namesOf(s.weeks.ids()),
			EligibleOffers: ix.eligible(s.p), EducationPriority: s.p.school.group, Score: s.score, ScoreParts: s.parts})
	}
	return items, page.seen, true
}

// priority is a school's group for the desk and the allocation (rep_plus,
// rep, qpv: a school near a priority neighbourhood outside éducation
// prioritaire, none) and its priority, higher first: the domain's.
func priority(s domain.SchoolRegistered) (string, int) {
	return (&domain.School{Registered: s}).AllocationGroup()
}

func priorityScore(group string) float64 {
	switch group {
	case "rep_plus":
		return 30
	case "rep", "qpv":
		return 20
	}
	return 0
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

func round(x float64) float64 { return math.Round(x*100) / 100 }
