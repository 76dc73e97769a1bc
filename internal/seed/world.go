// Package seed generates a realistic internship campaign from the French
// reference data and plays it through the command layer: schools in
// proportion to population with their éducation-prioritaire shares, pupils
// by class and grade, companies, public administrations and associations
// posting offers dense in cities and sparse in the country, then the
// season played forward (applications, acceptances, rejections,
// confirmations, conventions completed and signed, withdrawals, expiries)
// to a chosen date.
//
// Plan decides everything from the seed alone, in simulated time, mirroring
// the domain's rules so that every command it issues is one the service
// accepts; Run plays the plan through commands.Service. The same options
// give the same plan, command for command.
package seed

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"passerelle/domain/refdata"
)

// National figures of a season (the "1 élève, 1 stage" platform): pupils
// of 3e and of seconde, and the places offered.
const (
	National3e     = 800_000
	National2de    = 560_000
	NationalPlaces = 67_000
	// Share4e is the share of collèges whose 4e classes take part too.
	Share4e = 0.10
	// ShareREP is the share of collèges in éducation prioritaire (REP or
	// REP+), nationally.
	ShareREP = 0.20
	// ShareQPV is the share of lycées near a quartier prioritaire.
	ShareQPV = 0.25
	// ApplicationsPerPupil is the season's mean.
	ApplicationsPerPupil = 2.4
	// density > 1 puts offers in cities more than population alone would.
	density = 1.15
	// searchRings: pupils look for offers in rings of cells (about 10 km
	// each) around their school's, within 1, 2, then 4 cells.
	searchRings = 3
)

// DefaultUntil ends the default season (2025-2026) after the seconde
// internships.
var DefaultUntil = time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC)

// Options choose the campaign.
type Options struct {
	Departments []string // département codes; empty: all (national)
	Scale       float64  // fraction of the real numbers (default 1)
	Until       time.Time
	Seed        uint64
}

// parents are cities listed both whole and by arrondissement: the
// arrondissements stand for them.
var parents = map[string]bool{"75056": true, "69123": true, "13055": true}

// highPriority weighs départements where éducation prioritaire is most
// present (overseas, Seine-Saint-Denis, the large urban areas).
var highPriority = map[string]float64{"93": 4, "973": 5, "976": 5, "971": 3, "972": 3, "974": 3, "95": 2, "13": 2,
	"59": 2, "62": 1.8, "94": 1.8, "69": 1.5, "91": 1.5, "78": 1.2, "67": 1.3, "68": 1.3, "57": 1.3, "06": 1.2, "34": 1.3,
	"30": 1.4, "66": 1.4, "11": 1.3, "02": 1.4, "08": 1.4, "80": 1.3, "76": 1.3, "60": 1.3}

// season is the calendar of one school year, from its first September.
type season struct {
	year  int
	start time.Time // the Monday of the week of 1 September
}

func newSeason(until time.Time) season {
	y := until.Year()
	if until.Month() < time.August {
		y--
	}
	first := time.Date(y, 9, 1, 0, 0, 0, 0, time.UTC)
	return season{year: y, start: first.AddDate(0, 0, -((int(first.Weekday()) + 6) % 7))}
}

// monday is the Monday of the season's week i.
func (s season) monday(i int) time.Time { return s.start.AddDate(0, 0, 7*i) }

// weekOf is the season week holding the ISO week w of the year after
// September (weeks 1 to 35) or of September's year (36 to 53).
func (s season) weekOf(isoWeek int) int {
	y := s.year + 1
	if isoWeek >= 36 {
		y = s.year
	}
	jan4 := time.Date(y, 1, 4, 0, 0, 0, 0, time.UTC)
	mon := jan4.AddDate(0, 0, -((int(jan4.Weekday())+6)%7)+7*(isoWeek-1))
	return int(mon.Sub(s.start).Hours() / (24 * 7))
}

// The internship weeks, as ISO weeks with their relative weights: 3e in
// December to March, 4e in May and June, seconde the two weeks of mid-June.
var (
	weeks3e  = map[int]int{50: 4, 51: 2, 2: 3, 3: 4, 4: 4, 5: 3, 6: 2, 10: 1, 11: 1, 12: 1}
	weeks4e  = map[int]int{20: 1, 21: 1, 23: 2, 24: 1}
	weeks2de = []int{25, 26}
)

type school struct {
	uai, name string
	commune   int32
	lycee     bool
	priority  uint8 // 0 none, 1 REP, 2 REP+
	qpv       bool
	week3e    int8 // season week of the 3e (collège) internship
	week4e    int8 // -1: the 4e classes do not take part
	register  int64
}

type pupil struct {
	school   int32
	grade    uint8 // gr4e, gr3e, gr2de
	class    uint8
	birth    int32 // days since 1970
	budget   uint8 // applications the pupil means to make
	used     uint8
	placed   bool
	nweeks   uint8
	weeks    [2]int8 // season weeks of the internship
	firstApp int32   // the pupil's applications, newest first (app.next)
	start    int64   // when the internship starts
	turns14  int64   // the pupil's fourteenth birthday
}

const (
	gr4e uint8 = iota
	gr3e
	gr2de
)

var gradeNames = [...]string{"4e", "3e", "2de"}

type employer struct {
	kind    uint8 // index in kindNames
	commune int32
	sector  uint8 // 1…51
	host    uint8 // index in the sector's hosts
	siret   string
	street  uint8
	number  uint16
}

type offer struct {
	employer int32
	commune  int32
	lat, lon float64
	sector   uint8
	grades   uint8 // bit per grade
	weeks    []int8
	held     []uint16 // per week
	seats    uint16
	reserved uint8 // 0 none, 1 REP, 2 QPV
	family   bool
	open     bool
	visible  bool   // posted
	received uint32 // applications so far
	want     uint16 // applications per place the employer waits for before choosing
	post     int64  // when it is posted
	title    string
}

// places counts the internships an offer can take: seats per week for
// collège pupils, seats over the two weeks for seconde.
func (o *offer) places() int {
	if o.grades&(1<<gr2de) != 0 {
		return int(o.seats)
	}
	return int(o.seats) * len(o.weeks)
}

// trim shrinks the offer to n places: fewer seats, then fewer weeks.
func (o *offer) trim(n int) {
	if o.grades&(1<<gr2de) != 0 {
		o.seats = uint16(n)
		return
	}
	o.seats = uint16(max(1, n/len(o.weeks)))
	if int(o.seats)*len(o.weeks) > n {
		o.weeks, o.held = o.weeks[:n], o.held[:n]
	}
}

// world is the population of the campaign.
type world struct {
	opt       Options
	ref       *refdata.Data
	season    season
	rng       *rand.Rand
	communes  []refdata.Commune // the selected départements', by code
	depts     []string
	schools   []school
	pupils    []pupil
	employers []employer
	offers    []offer
	sirets    map[string]bool    // the employers' SIRETs
	grid      map[uint64][]int32 // offers by cell (cell.key)
	cellDeg   float64            // the grid's step
	reachKm   float64            // at which distance an offer weighs half as much as one next door
}

// cell is a square of the grid the pupils search offers in, and a season
// week (-1: the seconde weeks). At scale 1 a cell is 0.1° (about 10 km); a
// smaller scale spreads the offers thinner, so cells and distances grow by
// 1/√scale and a pupil has as many offers to choose from.
type cell struct {
	lat, lon int16
	week     int8
}

// key packs a cell into a map key that hashes faster than the struct.
func (c cell) key() uint64 {
	return uint64(uint16(c.lat))<<24 | uint64(uint16(c.lon))<<8 | uint64(uint8(c.week))
}

func (w *world) cellOf(lat, lon float64, week int8) cell {
	return cell{int16(math.Floor(lat / w.cellDeg)), int16(math.Floor(lon / w.cellDeg)), week}
}

func newWorld(opt Options) (*world, error) {
	ref, err := refdata.Load()
	if err != nil {
		return nil, err
	}
	if opt.Scale == 0 {
		opt.Scale = 1
	}
	if opt.Scale < 0 || opt.Scale > 10 {
		return nil, fmt.Errorf("scale %v: must be in (0, 10]", opt.Scale)
	}
	if opt.Until.IsZero() {
		opt.Until = DefaultUntil
	}
	w := &world{opt: opt, ref: ref, season: newSeason(opt.Until), grid: map[uint64][]int32{},
		rng:     rand.New(rand.NewPCG(opt.Seed, opt.Seed^0x5eed5eed5eed5eed)),
		cellDeg: 0.1 / math.Sqrt(min(opt.Scale, 1)), reachKm: 8 / math.Sqrt(min(opt.Scale, 1))}
	selected := map[string]bool{}
	for _, d := range opt.Departments {
		if !ref.DepartmentExists(d) {
			return nil, fmt.Errorf("département %q: not a département code", d)
		}
		selected[d] = true
	}
	for code := range ref.Departments {
		if len(selected) == 0 || selected[code] {
			w.depts = append(w.depts, code)
		}
	}
	slices.Sort(w.depts)
	for c := range ref.Communes() {
		if !parents[c.Code] && (len(selected) == 0 || selected[c.Department]) {
			w.communes = append(w.communes, c)
		}
	}
	slices.SortFunc(w.communes, func(a, b refdata.Commune) int { return cmp.Compare(a.Code, b.Code) })
	w.populate()
	return w, nil
}

// populate places schools, pupils, employers and offers département by
// département, each in proportion to its share of the national figures.
func (w *world) populate() {
	var nat, natDense float64
	for c := range w.ref.Communes() {
		if !parents[c.Code] {
			nat += float64(c.Population)
			natDense += math.Pow(float64(c.Population), density)
		}
	}
	k := w.priorityScale()
	byDept := map[string][]int32{}
	for i, c := range w.communes {
		byDept[c.Department] = append(byDept[c.Department], int32(i))
	}
	for _, d := range w.depts {
		cs := byDept[d]
		var pop, dense float64
		for _, i := range cs {
			pop += float64(w.communes[i].Population)
			dense += math.Pow(float64(w.communes[i].Population), density)
		}
		s := w.opt.Scale
		w.colleges(d, cs, w.round(National3e*s*pop/nat), k)
		w.lycees(d, cs, w.round(National2de*s*pop/nat), k)
		w.offersOf(cs, w.round(NationalPlaces*s*dense/natDense))
	}
}

// round rounds x at random, up with probability its fractional part, so
// small scales keep their expected size.
func (w *world) round(x float64) int {
	n := math.Floor(x)
	if w.rng.Float64() < x-n {
		n++
	}
	return int(n)
}

// priorityWeight is how likely, relatively, a school in commune c is in
// éducation prioritaire (or near a QPV): more in large towns and in the
// départements where it is most present.
func priorityWeight(c refdata.Commune) float64 {
	w := 1.0
	if f, ok := highPriority[c.Department]; ok {
		w = f
	}
	switch p := c.Population; {
	case p > 100_000:
		w *= 2
	case p > 20_000:
		w *= 1.5
	case p < 5_000:
		w *= 0.4
	}
	return w
}

// priorityScale finds k such that schools placed as populate places them
// (a département's collèges in proportion to its population, in its towns
// of 1,500 inhabitants or more), each in éducation prioritaire with
// probability min(0.9, k·weight), give the national share.
func (w *world) priorityScale() float64 {
	pop, towns := map[string]float64{}, map[string]float64{}
	for c := range w.ref.Communes() {
		if !parents[c.Code] {
			pop[c.Department] += float64(c.Population)
			if c.Population >= 1500 {
				towns[c.Department] += float64(c.Population)
			}
		}
	}
	lo, hi := 0.0, 1.0
	for range 40 {
		k := (lo + hi) / 2
		var num, den float64
		for c := range w.ref.Communes() {
			if parents[c.Code] || c.Population < 1500 {
				continue
			}
			share := float64(c.Population) * pop[c.Department] / towns[c.Department]
			num += share * min(0.9, k*priorityWeight(c))
			den += share
		}
		if num/den < ShareREP {
			lo = k
		} else {
			hi = k
		}
	}
	return (lo + hi) / 2
}

// pick draws an index of cs with probability proportional to weight.
func (w *world) pick(cs []int32, weight func(refdata.Commune) float64) int32 {
	total := 0.0
	for _, i := range cs {
		total += weight(w.communes[i])
	}
	x := w.rng.Float64() * total
	for _, i := range cs {
		x -= weight(w.communes[i])
		if x < 0 {
			return i
		}
	}
	return cs[len(cs)-1]
}

// towns are the communes large enough for a school of the kind, or the
// largest one when none is.
func (w *world) towns(cs []int32, minPop int) []int32 {
	var out []int32
	largest := cs[0]
	for _, i := range cs {
		if w.communes[i].Population >= minPop {
			out = append(out, i)
		}
		if w.communes[i].Population > w.communes[largest].Population {
			largest = i
		}
	}
	if len(out) == 0 {
		out = []int32{largest}
	}
	return out
}

func popWeight(c refdata.Commune) float64 { return float64(c.Population) }

func weighted(m map[int]int, rng *rand.Rand) int {
	keys := slices.Sorted(mapsKeys(m))
	total := 0
	for _, k := range keys {
		total += m[k]
	}
	x := rng.IntN(total)
	for _, k := range keys {
		if x -= m[k]; x < 0 {
			return k
		}
	}
	return keys[0]
}

func mapsKeys(m map[int]int) func(func(int) bool) {
	return func(yield func(int) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// colleges opens collèges until the département's 3e pupils are placed in
// classes of 22 to 29.
func (w *world) colleges(dept string, cs []int32, pupils3e int, k float64) {
	towns := w.towns(cs, 1500)
	for pupils3e > 0 {
		ci := w.pick(towns, popWeight)
		c := w.communes[ci]
		s := school{uai: uai(dept, len(w.schools)), name: "Collège " + patrons[w.rng.IntN(len(patrons))], commune: ci,
			week3e: int8(w.season.weekOf(weighted(weeks3e, w.rng))), week4e: -1}
		if w.rng.Float64() < min(0.9, k*priorityWeight(c)) {
			s.priority = 1
			if w.rng.Float64() < 0.3+0.06*min(4, priorityWeight(c)) {
				s.priority = 2
			}
		}
		classes := 2 + w.rng.IntN(6)
		if w.rng.Float64() < Share4e {
			s.week4e = int8(w.season.weekOf(weighted(weeks4e, w.rng)))
		}
		s.register = w.at(w.season.start.AddDate(0, 0, w.rng.IntN(12)), 8, 18)
		idx := int32(len(w.schools))
		w.schools = append(w.schools, s)
		for cl := 0; cl < classes && pupils3e > 0; cl++ {
			size := min(pupils3e, 22+w.rng.IntN(8))
			pupils3e -= size
			w.class(idx, gr3e, cl, size)
			if s.week4e >= 0 {
				w.class(idx, gr4e, cl, 22+w.rng.IntN(8))
			}
		}
	}
}

// lycees opens lycées until the département's seconde pupils are placed in
// classes of 30 to 35.
func (w *world) lycees(dept string, cs []int32, pupils2de int, k float64) {
	towns := w.towns(cs, 5000)
	for pupils2de > 0 {
		ci := w.pick(towns, popWeight)
		c := w.communes[ci]
		s := school{uai: uai(dept, len(w.schools)), name: "Lycée " + patrons[w.rng.IntN(len(patrons))], commune: ci,
			lycee: true, week3e: -1, week4e: -1}
		s.qpv = w.rng.Float64() < min(0.9, k*priorityWeight(c)*ShareQPV/ShareREP)
		s.register = w.at(w.season.start.AddDate(0, 0, w.rng.IntN(12)), 8, 18)
		idx := int32(len(w.schools))
		w.schools = append(w.schools, s)
		classes := 4 + w.rng.IntN(9)
		for cl := 0; cl < classes && pupils2de > 0; cl++ {
			size := min(pupils2de, 30+w.rng.IntN(6))
			pupils2de -= size
			w.class(idx, gr2de, cl, size)
		}
	}
}

// class registers a class of pupils born in the year of their grade (some
// a year late, a few a year early).
func (w *world) class(s int32, grade uint8, cl, size int) {
	born := w.season.year - 13 - int(grade) // 4e: 13 this year, 3e: 14, 2de: 15
	for range size {
		y := born
		switch x := w.rng.Float64(); {
		case x < 0.12:
			y--
		case x < 0.14:
			y++
		}
		day := time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, w.rng.IntN(365))
		p := pupil{school: s, grade: grade, class: uint8(cl), birth: int32(day.Unix() / 86400), firstApp: -1,
			turns14: day.AddDate(14, 0, 0).Unix(), nweeks: 1}
		switch sc := &w.schools[s]; grade {
		case gr4e:
			p.weeks[0] = sc.week4e
		case gr3e:
			p.weeks[0] = sc.week3e
		default:
			p.weeks, p.nweeks = [2]int8{int8(w.season.weekOf(weeks2de[0])), int8(w.season.weekOf(weeks2de[1]))}, 2
		}
		p.start = w.season.monday(int(p.weeks[0])).Unix()
		// a fifth find their internship without the platform; the others
		// mean to send a few applications
		if w.rng.Float64() >= 0.2 {
			p.budget = uint8(1 + w.geometric(5.2))
		}
		w.pupils = append(w.pupils, p)
	}
}

// geometric draws a count ≥ 0 with the given mean.
func (w *world) geometric(mean float64) int {
	p := 1 / (1 + mean)
	n := 0
	for w.rng.Float64() > p && n < 12 {
		n++
	}
	return n
}

// at is a time of day between from and to hours on day.
func (w *world) at(day time.Time, from, to int) int64 {
	return day.Unix() + int64(from*3600+w.rng.IntN((to-from)*3600))
}

// sectorTable lists the sector codes in order with their weights per kind.
var sectorCodes = func() []string {
	out := make([]string, 0, len(sectors))
	for i := 1; i <= 51; i++ {
		out = append(out, fmt.Sprintf("s%d", i))
	}
	return out
}()

func (w *world) sector(kind uint8) uint8 {
	letter := "cpa"[kind]
	total := 0
	for _, code := range sectorCodes {
		if h := sectors[code]; containsByte(h.kinds, letter) {
			total += h.weight
		}
	}
	x := w.rng.IntN(total)
	for i, code := range sectorCodes {
		if h := sectors[code]; containsByte(h.kinds, letter) {
			if x -= h.weight; x < 0 {
				return uint8(i + 1)
			}
		}
	}
	return 12
}

func containsByte(s string, b byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return true
		}
	}
	return false
}

// newSIRET draws a SIRET no employer of the world has: the service
// registers one employer per SIRET.
func (w *world) newSIRET() string {
	if w.sirets == nil {
		w.sirets = map[string]bool{}
	}
	for {
		var d [13]byte
		d[0] = byte(1 + w.rng.IntN(9))
		for i := 1; i < 13; i++ {
			d[i] = byte(w.rng.IntN(10))
		}
		if s := luhnSIRET(d); !w.sirets[s] {
			w.sirets[s] = true
			return s
		}
	}
}

// offersOf registers employers and their offers until the département's
// places are offered, in communes weighted more than their population.
func (w *world) offersOf(cs []int32, places int) {
	dense := func(c refdata.Commune) float64 { return math.Pow(float64(c.Population), density) }
	for places > 0 {
		e := employer{commune: w.pick(cs, dense), street: uint8(w.rng.IntN(len(streets))), number: uint16(1 + w.rng.IntN(120))}
		switch x := w.rng.Float64(); {
		case x < 0.68:
			e.kind = 0
		case x < 0.88:
			e.kind = 1
		default:
			e.kind = 2
		}
		e.sector = w.sector(e.kind)
		e.host = uint8(w.rng.IntN(len(sectors[sectorCodes[e.sector-1]].hosts)))
		e.siret = w.newSIRET()
		ei := int32(len(w.employers))
		w.employers = append(w.employers, e)
		n := 1
		if x := w.rng.Float64(); x < 0.07 {
			n = 3
		} else if x < 0.25 {
			n = 2
		}
		for range n {
			o := w.newOffer(ei, e)
			if o.places() > places { // the last offer completes the figure
				o.trim(places)
			}
			places -= o.places()
			oi := int32(len(w.offers))
			w.offers = append(w.offers, o)
			if o.grades&(1<<gr2de) != 0 {
				c := w.cellOf(o.lat, o.lon, -1).key()
				w.grid[c] = append(w.grid[c], oi)
			} else {
				for _, wk := range o.weeks {
					c := w.cellOf(o.lat, o.lon, wk).key()
					w.grid[c] = append(w.grid[c], oi)
				}
			}
			if places <= 0 {
				break
			}
		}
	}
}

func (w *world) newOffer(ei int32, e employer) offer {
	c := w.communes[e.commune]
	o := offer{employer: ei, commune: e.commune, sector: e.sector, open: true,
		lat: c.Lat + (w.rng.Float64()-0.5)*0.016, lon: c.Lon + (w.rng.Float64()-0.5)*0.016}
	switch x := w.rng.Float64(); {
	case x < 0.6:
		o.seats = 1
	case x < 0.85:
		o.seats = 2
	case x < 0.97:
		o.seats = uint16(3 + w.rng.IntN(3))
	default:
		o.seats = uint16(6 + w.rng.IntN(15)) // a hospital, a town hall, a large company
	}
	if w.rng.Float64() < 0.38 {
		o.grades = 1 << gr2de
		for _, iso := range weeks2de {
			o.weeks = append(o.weeks, int8(w.season.weekOf(iso)))
		}
		if w.rng.Float64() < 0.10 {
			o.reserved = 2
		}
	} else {
		w.collegeWeeks(&o)
	}
	o.held = make([]uint16, len(o.weeks))
	o.want = uint16(30 + w.rng.IntN(60))
	o.family = e.kind == 0 && w.rng.Float64() < 0.05
	h := sectors[sectorCodes[e.sector-1]]
	o.title = fmt.Sprintf("Découverte : %s", h.work[w.rng.IntN(len(h.work))])
	return o
}

// collegeWeeks opens the offer to 3e, to 4e or both, in one to eight of
// their weeks.
func (w *world) collegeWeeks(o *offer) {
	o.grades = 1 << gr3e
	pool := weeks3e
	switch x := w.rng.Float64(); {
	case x < 0.15:
		o.grades |= 1 << gr4e
		pool = mergeWeeks(weeks3e, weeks4e)
	case x < 0.20:
		o.grades = 1 << gr4e
		pool = weeks4e
	}
	n := 1
	switch x := w.rng.Float64(); {
	case x < 0.35:
	case x < 0.6:
		n = 2
	case x < 0.8:
		n = 3 + w.rng.IntN(2)
	default:
		n = 5 + w.rng.IntN(4)
	}
	seen := map[int8]bool{}
	for range n {
		wk := int8(w.season.weekOf(weighted(pool, w.rng)))
		if !seen[wk] {
			seen[wk] = true
			o.weeks = append(o.weeks, wk)
		}
	}
	slices.Sort(o.weeks)
	if w.rng.Float64() < 0.08 {
		o.reserved = 1
	}
}

func mergeWeeks(a, b map[int]int) map[int]int {
	out := map[int]int{}
	for k, v := range a {
		out[k] += v
	}
	for k, v := range b {
		out[k] += v
	}
	return out
}
