package desk_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	"passerelle/desk"
	"passerelle/domain"
	"passerelle/domain/refdata"
	"passerelle/eventstore"
)

// world is a generated campaign spread over the real communes, people and
// jobs where the population is: schools, pupils, offers, wishes, seats
// held and placements, as the events the index folds.
type world struct {
	events  []desk.Event
	pupils  []string
	offers  []string
	schools []string
}

// the campaign's weeks: 4e and 3e from January to mid-June, 2de the last
// two weeks of June.
var (
	collegeWeeks = weeksFrom(2027, 2, 22)
	lyceeWeeks   = []string{"2027-W25", "2027-W26"}
	// the clock of the generated campaign: before every week
	worldNow = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
)

func weeksFrom(year, first, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%04d-W%02d", year, first+i)
	}
	return out
}

// communesByPopulation draws communes in proportion to their population.
type communesByPopulation struct {
	codes []string
	cum   []float64
	data  *refdata.Data
}

func newCommunes(min int) communesByPopulation {
	d := refdata.MustLoad()
	c := communesByPopulation{data: d}
	codes := make([]string, 0, d.CommuneCount())
	for cm := range d.Communes() {
		code := cm.Code
		// Paris, Lyon and Marseille count their people twice: as the
		// commune and in its arrondissements
		if cm.Population >= min && !strings.Contains(cm.Name, "Arrondissement") {
			codes = append(codes, code)
		}
	}
	sort.Strings(codes) // the draws depend on the seed only
	total := 0.0
	for _, code := range codes {
		cm, _ := d.Commune(code)
		total += float64(cm.Population)
		c.codes, c.cum = append(c.codes, code), append(c.cum, total)
	}
	return c
}

func (c communesByPopulation) draw(r *rand.Rand) refdata.Commune {
	i := sort.SearchFloat64s(c.cum, r.Float64()*c.cum[len(c.cum)-1])
	cm, _ := c.data.Commune(c.codes[min(i, len(c.codes)-1)])
	return cm
}

func id(kind string, i int) string {
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", i, map[string]int{"pupil": 1, "offer": 2, "app": 3}[kind])
}

// generate builds a campaign of about nOffers offers and nPupils pupils.
func generate(seed uint64, nOffers, nPupils int) world {
	r := rand.New(rand.NewPCG(seed, 1))
	var w world
	pos := eventstore.Position(0)
	add := func(e domain.Event) {
		pos++
		w.events = append(w.events, desk.Event{Position: pos, Data: e})
	}
	grades := w.schoolsAndPupils(r, add, nPupils)
	w.postOffers(r, add, nOffers)
	w.wishesAndPlacements(r, add, grades)
	return w
}

// schoolsAndPupils: a school for about 70 pupils of the generated grades,
// in communes of 2,000 people or more.
func (w *world) schoolsAndPupils(r *rand.Rand, add func(domain.Event), nPupils int) map[string]domain.Grade {
	communes := newCommunes(2000)
	grades, lycees := map[string]domain.Grade{}, map[string]bool{}
	nSchools := max(1, nPupils/70)
	for i := range nSchools {
		c := communes.draw(r)
		lycee := i%4 == 0
		s := &domain.SchoolRegistered{UAI: fmt.Sprintf("%07d%c", i, 'A'+rune(i%26)), Name: "École", Kind: "college",
			CommuneCode: c.Code, Department: c.Department, EducationPriority: "none"}
		switch p := r.Float64(); {
		case lycee:
			s.Kind, s.QPV = "lycee", p < 0.3
		case p < 0.08:
			s.EducationPriority = "rep_plus"
		case p < 0.22:
			s.EducationPriority = "rep"
		}
		add(s)
		w.schools, lycees[s.UAI] = append(w.schools, s.UAI), lycee
	}
	for i := range nPupils {
		s := w.schools[r.IntN(len(w.schools))]
		g := domain.Grade3e
		switch {
		case lycees[s]:
			g = domain.Grade2de
		case r.IntN(3) == 0:
			g = domain.Grade4e
		}
		born := time.Date(2012, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, r.IntN(600)) // some turn 14 during the campaign
		if g == domain.Grade2de {
			born = born.AddDate(-1, 0, 0)
		}
		p := &domain.PupilRegistered{PupilID: id("pupil", i), SchoolUAI: s, Grade: g, ClassName: string(g) + "A", BirthDate: born.Format(time.DateOnly)}
		add(p)
		w.pupils = append(w.pupils, p.PupilID)
		grades[p.PupilID] = g
	}
	return grades
}

// postOffers: offers in communes drawn by population, a few kilometres
// around the centre; a fifth for 2de, a tenth reserved, a tenth
// withdrawn.
func (w *world) postOffers(r *rand.Rand, add func(domain.Event), n int) {
	communes := newCommunes(0)
	kinds := []string{"company", "company", "company", "public", "association"}
	for i := range n {
		c := communes.draw(r)
		o := &domain.OfferPosted{OfferID: id("offer", i), EmployerID: fmt.Sprintf("emp-%d", i%20000), EmployerName: "Employeur",
			EmployerKind: kinds[r.IntN(len(kinds))], Title: "Offre", Sector: fmt.Sprintf("s%d", 1+r.IntN(51)),
			Seats: 1 + r.IntN(3), CommuneCode: c.Code, Department: c.Department,
			Lat: c.Lat + (r.Float64()-0.5)*0.04, Lon: c.Lon + (r.Float64()-0.5)*0.06, FamilyBusiness: r.IntN(10) == 0}
		if r.IntN(5) == 0 {
			o.Grades, o.Weeks = []domain.Grade{domain.Grade2de}, lyceeWeeks
		} else {
			o.Grades = []domain.Grade{domain.Grade4e, domain.Grade3e}[r.IntN(2):]
			start := r.IntN(len(collegeWeeks) - 4)
			o.Weeks = collegeWeeks[start : start+1+r.IntN(4)]
		}
		switch p := r.Float64(); {
		case p < 0.06:
			o.Reserved.REP = true
		case p < 0.09:
			o.Reserved.QPV = true
		case p < 0.10:
			o.Reserved.Schools = []string{w.schools[r.IntN(len(w.schools))]}
		}
		add(o)
		w.offers = append(w.offers, o.OfferID)
		if r.IntN(10) == 0 {
			add(&domain.OfferWithdrawn{OfferID: o.OfferID})
		}
	}
}

// wishesAndPlacements: a third of the pupils record wishes; a fifth are
// placed (a seat held, the weeks reserved); others hold a seat not yet
// confirmed.
func (w *world) wishesAndPlacements(r *rand.Rand, add func(domain.Event), grades map[string]domain.Grade) {
	app := 0
	for _, p := range w.pupils {
		if r.IntN(3) == 0 {
			sectors := make([]string, r.IntN(6))
			for i := range sectors {
				sectors[i] = fmt.Sprintf("s%d", 1+r.IntN(51))
			}
			wish := &domain.PupilWishesRecorded{PupilID: p, Sectors: slices.Compact(sectors), MaxDistanceKM: 5 + r.IntN(36)}
			if r.IntN(2) == 0 && grades[p] != domain.Grade2de {
				start := r.IntN(len(collegeWeeks) - 6)
				wish.Weeks = collegeWeeks[start : start+6]
			}
			add(wish)
		}
		if r.IntN(4) != 0 {
			continue
		}
		offer := w.offers[r.IntN(len(w.offers))]
		weeks := lyceeWeeks
		if grades[p] != domain.Grade2de {
			weeks = collegeWeeks[r.IntN(len(collegeWeeks)):][:1]
		}
		app++
		a := id("app", app)
		add(&domain.PupilApplied{PupilID: p, ApplicationID: a, OfferID: offer, Weeks: weeks})
		add(&domain.SeatHeld{OfferID: offer, ApplicationID: a, PupilID: p, Weeks: weeks})
		if r.IntN(5) != 0 {
			add(&domain.PupilWeeksReserved{PupilID: p, ApplicationID: a, Weeks: weeks})
		}
	}
}

func percentile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(math.Min(float64(len(s)-1), math.Ceil(q*float64(len(s)))-1))]
}
