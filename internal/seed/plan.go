package seed

import (
	"fmt"
	"math"
	"slices"
	"time"

	"passerelle/domain/refdata"
)

// Kind is what a planned command does.
type Kind uint8

// The commands a campaign issues.
const (
	RegisterSchool Kind = iota
	RegisterPupil
	RegisterEmployer
	PostOffer
	WithdrawOffer
	Apply
	Accept
	Reject
	Withdraw
	Expire
	Confirm
	CompleteEmployer
	CompleteSchool
	Sign
	kinds
)

var kindLabels = [kinds]string{"register_school", "register_pupil", "register_employer", "post_offer", "withdraw_offer",
	"apply", "accept", "reject", "withdraw", "expire", "confirm", "complete_employer", "complete_school", "sign"}

func (k Kind) String() string { return kindLabels[k] }

// Command is one planned command. X is the school, pupil, employer, offer
// or application it acts on, by Kind.
type Command struct {
	At   int64 // simulated time, Unix seconds
	Kind Kind
	// Arg is, for Sign, the role's index in domain.RequiredRoles; for
	// Reject, the reason; for Withdraw and Expire, heldSeat when the
	// application held a seat; for Confirm, a bit per withdrawn application
	// (the first seven) that held one.
	Arg    uint8
	NExtra uint16 // Confirm: how many of the pupil's other applications it withdraws
	X      int32
	Extra  int32 // Confirm: where they are listed in Plan.withdrawn
}

// heldSeat marks a Withdraw or Expire of an application holding a seat.
const heldSeat = 1

type appStatus uint8

const (
	aSubmitted appStatus = iota
	aAccepted
	aRejected
	aWithdrawn
	aConfirmed
	aExpired
)

type app struct {
	offer, pupil int32
	next         int32 // the pupil's previous application
	status       appStatus
	parts        uint8 // convention parts completed (bit 0 employer, bit 1 school)
	submitted    int64
	accepted     int64
}

// Stats are the figures of a plan.
type Stats struct {
	Departments                       int
	Colleges, CollegesREP, CollegesRP int // REP and REP+ (RP)
	Lycees, LyceesQPV                 int
	Pupils                            [3]int // by grade: 4e, 3e, 2de
	Employers                         [3]int // by kind: company, public, association
	Offers, Places, OffersPosted      int
	PlacesPosted                      int
	Seats                             int // of the posted offers
	Commands                          [kinds]int
	Signed                            int
}

// PupilsTotal counts every grade.
func (s Stats) PupilsTotal() int { return s.Pupils[0] + s.Pupils[1] + s.Pupils[2] }

// CommandsTotal counts every kind.
func (s Stats) CommandsTotal() int {
	n := 0
	for _, c := range s.Commands {
		n += c
	}
	return n
}

// Plan is a campaign decided in advance: the population and the commands
// to issue, in the order of their simulated time.
type Plan struct {
	Options   Options
	Commands  []Command
	Stats     Stats
	w         *world
	apps      []app
	withdrawn []int32

	queue queue
	seq   uint64
	buf   []candidate
	rings map[uint64]*rings // by home cell (cell.key)
	// applied is the seeker's list of offers, reused from one to the next
	applied []int32
	// takers holds, for each offer, a bit per season week in which it
	// takes one more pupil now (posted, open, a seat free), a bit per
	// grade it is for (at gradeBits) and its conditions (reservedREP,
	// reservedQPV, from14). A search weighs hundreds of offers for each
	// pupil: reading each offer's record, its employer's and the pupil's
	// school's, and looking each week up in the offer took a third of a
	// national plan's time, most of it waiting for memory.
	takers []uint64
}

// gradeBits is where takers' grade bits start: past every season week
// (September to June is about 43 weeks).
const gradeBits = 56

// the conditions of an offer, in takers
const (
	reservedREP uint64 = 1 << (59 + iota) // for collège pupils of éducation prioritaire
	reservedQPV                           // for lycée pupils of a QPV
	from14                                // a company's: the pupil must be 14 when it starts
)

// weekBits are the bits of the season weeks.
func weekBits(weeks []int8) uint64 {
	var m uint64
	for _, wk := range weeks {
		m |= 1 << uint8(wk)
	}
	return m
}

// refresh sets the offer's takers bits from its record.
func (p *Plan) refresh(oi int32) {
	o := &p.w.offers[oi]
	m := uint64(o.grades) << gradeBits
	switch o.reserved {
	case 1:
		m |= reservedREP
	case 2:
		m |= reservedQPV
	}
	if p.w.employers[o.employer].kind == 0 && !o.family {
		m |= from14
	}
	if o.visible && o.open {
		for _, wk := range o.weeks {
			if j := weekIndex(o.weeks, wk); o.held[j] < o.seats {
				m |= 1 << uint8(wk)
			}
		}
	}
	p.takers[oi] = m
}

// rings are the offers of the grid's cells around a home cell, ring by
// ring (searchRings). A search reads a ring's list, gathered the first
// time one reaches it, instead of looking up each of its cells (up to
// 81): those lookups took a fifth of a national plan's time. A national
// plan is decided in 25.7 and 23.0 s against 40.2 and 35.3 s (`passerelle
// seed --national --dry-run`, in turn), its peak memory 21 MB more.
type rings struct {
	offers   [searchRings][]int32
	gathered [searchRings]bool
}

type candidate struct {
	offer  int32
	weight float64
}

// queued actions of the simulation
const (
	qSchool uint8 = iota
	qPupil
	qEmployer
	qOffer
	qWithdrawOffer
	qSearch
	qApply // x: pupil, y: offer
	qAnswer
	qRespond
	qExpire
	qCompleteEmployer
	qCompleteSchool
	qSign // y: role
	qWithdrawPlaced
)

type entry struct {
	at   int64
	seq  uint64
	kind uint8
	y    uint8
	x    int32
	z    int32
}

// queue holds the entries to play, popped by time, then by the order
// they were queued. It files them by day, in blocks, and keeps only the
// day being played in a heap: a national plan queues the whole
// population's first searches at once, and a heap of them all missed the
// processor's cache at every level it walked. The blocks of a day played
// file later days.
type queue struct {
	today heap              // the day being played, and anything queued for before it
	days  map[int64][]block // later days' entries, as queued
	cur   int64             // the day today holds
	lo    int64             // no day before it is filed
	n     int
	free  []block
}

// block is part of a day's entries, reused once the day is played: a
// slice grown for each day made as much garbage as the plan queued.
type block []entry

const blockLen = 2048

func dayOf(at int64) int64 {
	d := at / day
	if at%day < 0 {
		d--
	}
	return d
}

func (q *queue) len() int { return q.n }

func (q *queue) push(e entry) {
	q.n++
	d := dayOf(e.at)
	if q.days != nil && d <= q.cur {
		q.today.push(e)
		return
	}
	if q.days == nil {
		q.days, q.cur, q.lo = map[int64][]block{}, math.MinInt64, d
	}
	q.lo = min(q.lo, d)
	bs := q.days[d]
	if len(bs) == 0 || len(bs[len(bs)-1]) == blockLen {
		var b block
		if k := len(q.free); k > 0 {
			b, q.free = q.free[k-1], q.free[:k-1]
		} else {
			b = make(block, 0, blockLen)
		}
		bs = append(bs, b)
	}
	bs[len(bs)-1] = append(bs[len(bs)-1], e)
	q.days[d] = bs
}

// pop takes the least entry; the queue must not be empty.
func (q *queue) pop() entry {
	if len(q.today) == 0 {
		d := max(q.cur+1, q.lo)
		for len(q.days[d]) == 0 {
			d++
		}
		for _, b := range q.days[d] {
			q.today = append(q.today, b...)
			q.free = append(q.free, b[:0])
		}
		delete(q.days, d)
		q.cur, q.lo = d, d+1
		q.today.init()
	}
	q.n--
	return q.today.pop()
}

// heap is a min-heap of entries by time, then by the order they were
// queued: written out rather than through container/heap, whose
// interface calls and boxing of each entry took a sixth of a national
// plan's time. Each entry has four children (heapArity), side by side:
// half the levels of a binary heap to walk down. A national plan was
// decided in 25.9 and 24.6 s against 27.8 and 25.6 s with two (`passerelle
// seed --national --dry-run`, in turn).
type heap []entry

const heapArity = 4

func (h heap) less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}

func (h *heap) push(e entry) {
	*h = append(*h, e)
	q := *h
	for i := len(q) - 1; i > 0; {
		parent := (i - 1) / heapArity
		if !q.less(i, parent) {
			break
		}
		q[i], q[parent] = q[parent], q[i]
		i = parent
	}
}

// init orders entries queued in any order into a heap.
func (h heap) init() {
	for i := (len(h) - 2) / heapArity; i >= 0; i-- {
		h.down(i)
	}
}

func (h heap) down(i int) {
	n := len(h)
	for {
		least, first := i, heapArity*i+1
		for c := first; c < min(first+heapArity, n); c++ {
			if h.less(c, least) {
				least = c
			}
		}
		if least == i {
			return
		}
		h[i], h[least] = h[least], h[i]
		i = least
	}
}

func (h *heap) pop() entry {
	q := *h
	top := q[0]
	n := len(q) - 1
	q[0] = q[n]
	q = q[:n]
	q.down(0)
	*h = q
	return top
}

// acceptRate is how often an employer accepts an application while a seat
// is free, once it has the applications it waited for or the internship
// draws near; before, it rarely does: a place draws a few dozen
// applications before it is taken.
const (
	acceptRate = 0.5
	earlyRate  = 0.01
)

const (
	minute = 60
	hour   = 3600
	day    = 24 * hour
)

// NewPlan builds the population and plays the season to opt.Until.
func NewPlan(opt Options) (*Plan, error) {
	w, err := newWorld(opt)
	if err != nil {
		return nil, err
	}
	// room for a season's commands and applications (about 5.7 and 2.2 a
	// pupil nationally): grown by appends, they were copied over and over
	p := &Plan{Options: w.opt, w: w,
		Commands: make([]Command, 0, 6*len(w.pupils)+4*len(w.offers)+len(w.schools)+len(w.employers)),
		apps:     make([]app, 0, 5*len(w.pupils)/2), rings: map[uint64]*rings{}, takers: make([]uint64, len(w.offers))}
	for oi, o := range w.offers {
		for _, wk := range o.weeks {
			if wk < 0 || wk >= gradeBits {
				return nil, fmt.Errorf("offer %d: season week %d is out of the plan's range", oi, wk)
			}
		}
		p.refresh(int32(oi))
	}
	p.Stats.Departments = len(w.depts)
	p.schedulePopulation()
	until := w.opt.Until.Unix()
	for p.queue.len() > 0 {
		e := p.queue.pop()
		if e.at > until {
			break
		}
		p.step(e)
	}
	p.queue, p.rings = queue{}, nil
	return p, nil
}

func (p *Plan) push(at int64, kind uint8, x int32, y uint8, z int32) {
	p.seq++
	p.queue.push(entry{at: at, seq: p.seq, kind: kind, x: x, y: y, z: z})
}

func (p *Plan) emit(at int64, k Kind, x int32, arg uint8) *Command {
	p.Commands = append(p.Commands, Command{At: at, Kind: k, X: x, Arg: arg, Extra: -1})
	p.Stats.Commands[k]++
	return &p.Commands[len(p.Commands)-1]
}

func (p *Plan) days(lo, hi float64) int64 {
	return int64((lo + p.w.rng.Float64()*(hi-lo)) * day)
}

// start is when the pupil's internship begins.
func (p *Plan) start(pu *pupil) int64 { return pu.start }

func (p *Plan) schedulePopulation() {
	p.scheduleSchools()
	p.schedulePupils()
	p.scheduleOffers()
}

func (p *Plan) scheduleSchools() {
	for i, s := range p.w.schools {
		p.push(s.register, qSchool, int32(i), 0, 0)
		if s.lycee {
			p.Stats.Lycees++
			if s.qpv {
				p.Stats.LyceesQPV++
			}
			continue
		}
		p.Stats.Colleges++
		switch s.priority {
		case 1:
			p.Stats.CollegesREP++
		case 2:
			p.Stats.CollegesRP++
		}
	}
}

// schedulePupils registers each class in one sitting in the second half of
// September or in October.
func (p *Plan) schedulePupils() {
	w := p.w
	var classAt int64
	for i := range w.pupils {
		pu := &w.pupils[i]
		if i == 0 || pu.school != w.pupils[i-1].school || pu.class != w.pupils[i-1].class || pu.grade != w.pupils[i-1].grade {
			reg := w.schools[pu.school].register
			classAt = max(reg+day, w.at(w.season.start.AddDate(0, 0, 14+w.rng.IntN(40)), 9, 17))
		}
		classAt += int64(20 + w.rng.IntN(60))
		p.push(classAt, qPupil, int32(i), 0, 0)
	}
}

// scheduleOffers posts collège offers from October and seconde offers from
// December, each employer registering just before its first one.
func (p *Plan) scheduleOffers() {
	w := p.w
	sept1 := time.Date(w.season.year, 9, 1, 0, 0, 0, 0, time.UTC)
	first := make([]int64, len(w.employers)) // each employer's first offer
	for i := range w.offers {
		o := &w.offers[i]
		lo, hi := sept1.AddDate(0, 1, 0), w.season.monday(int(o.weeks[0])).AddDate(0, 0, -21)
		if o.grades&(1<<gr2de) != 0 {
			lo, hi = sept1.AddDate(0, 3, 0), w.season.monday(int(o.weeks[0])).AddDate(0, 0, -25)
		}
		u := w.rng.Float64()
		o.post = w.at(lo.Add(time.Duration(u*u*float64(hi.Sub(lo)))).Truncate(24*time.Hour), 8, 19)
		if first[o.employer] == 0 || o.post < first[o.employer] {
			first[o.employer] = o.post
		}
	}
	for e, t := range first {
		p.push(t-p.days(0.05, 3), qEmployer, int32(e), 0, 0)
	}
	for i := range w.offers {
		o := &w.offers[i]
		p.push(o.post, qOffer, int32(i), 0, 0)
		if end := w.season.monday(int(o.weeks[0])).Unix(); w.rng.Float64() < 0.03 && end > o.post {
			p.push(o.post+int64(w.rng.Float64()*float64(end-o.post)), qWithdrawOffer, int32(i), 0, 0)
		}
	}
}

// handlers are the simulation's actions, by queued kind.
var handlers = [...]func(p *Plan, e entry){
	qSchool:           func(p *Plan, e entry) { p.emit(e.at, RegisterSchool, e.x, 0) },
	qPupil:            (*Plan).registerPupil,
	qEmployer:         (*Plan).registerEmployer,
	qOffer:            (*Plan).postOffer,
	qWithdrawOffer:    (*Plan).withdrawOffer,
	qSearch:           func(p *Plan, e entry) { p.search(e.x, e.at) },
	qApply:            func(p *Plan, e entry) { p.apply(e.x, e.z, e.at) },
	qAnswer:           func(p *Plan, e entry) { p.answer(e.x, e.at) },
	qRespond:          func(p *Plan, e entry) { p.respond(e.x, e.at) },
	qExpire:           func(p *Plan, e entry) { p.expire(e.x, e.at) },
	qCompleteEmployer: func(p *Plan, e entry) { p.complete(e.x, e.at, false) },
	qCompleteSchool:   func(p *Plan, e entry) { p.complete(e.x, e.at, true) },
	qSign:             (*Plan).sign,
	qWithdrawPlaced:   (*Plan).withdrawPlaced,
}

func (p *Plan) step(e entry) { handlers[e.kind](p, e) }

// registerPupil registers the pupil, who starts looking for an internship
// a few weeks before it.
func (p *Plan) registerPupil(e entry) {
	w := p.w
	p.emit(e.at, RegisterPupil, e.x, 0)
	pu := &w.pupils[e.x]
	p.Stats.Pupils[pu.grade]++
	if pu.budget == 0 {
		return
	}
	ahead := int64(84 * day)
	if pu.grade == gr2de {
		ahead = 125 * day
	}
	lo := max(e.at+day, pu.start-ahead)
	if hi := pu.start - 14*day; hi > lo {
		p.push(lo+int64(w.rng.Float64()*float64(hi-lo)), qSearch, e.x, 0, 0)
	}
}

func (p *Plan) registerEmployer(e entry) {
	p.emit(e.at, RegisterEmployer, e.x, 0)
	p.Stats.Employers[p.w.employers[e.x].kind]++
}

func (p *Plan) postOffer(e entry) {
	p.emit(e.at, PostOffer, e.x, 0)
	o := &p.w.offers[e.x]
	o.visible = true
	p.refresh(e.x)
	p.Stats.OffersPosted++
	p.Stats.PlacesPosted += o.places()
	p.Stats.Seats += int(o.seats)
}

func (p *Plan) withdrawOffer(e entry) {
	if o := &p.w.offers[e.x]; o.open {
		o.open = false
		p.refresh(e.x)
		p.emit(e.at, WithdrawOffer, e.x, 0)
	}
}

func (p *Plan) sign(e entry) {
	if p.apps[e.x].status == aConfirmed {
		p.emit(e.at, Sign, e.x, e.y)
		if e.z == 1 {
			p.Stats.Signed++
		}
	}
}

// withdrawPlaced: the pupil gives up a confirmed placement.
func (p *Plan) withdrawPlaced(e entry) {
	a := &p.apps[e.x]
	if a.status == aConfirmed && e.at < a.start(p) {
		p.end(a, aWithdrawn)
		p.w.pupils[a.pupil].placed = false
		p.emit(e.at, Withdraw, e.x, heldSeat)
	}
}

func (a *app) start(p *Plan) int64 { return p.w.pupils[a.pupil].start }

// weeksOf are the season weeks the pupil's internship takes.
func (p *Plan) weeksOf(pu *pupil) []int8 { return pu.weeks[:pu.nweeks] }

// takes mirrors the domain's checks of an application: grade, weeks, a
// free seat in each, the reservation, the age for a company, and one
// application per offer.
func (p *Plan) takes(oi int32, pi int32, start int64) bool {
	s := p.seeker(pi, start)
	return p.takesFor(&s, oi)
}

// seeker is what takes needs of a pupil, gathered once for a search that
// weighs hundreds of offers: the bits an offer must have, and the offers
// the pupil applied to, rather than for each offer weighed (the list of
// the pupil's applications walked each time): a national plan is decided
// in 15.6 to 16.4 s against 16.4 to 18.7 s (`passerelle seed --national
// --dry-run`, three pairs in turn).
type seeker struct {
	pu      *pupil
	need    uint64
	young   bool    // not 14 yet when the internship starts
	applied []int32 // the offers applied to
}

// seeker gathers what takes needs of pupil pi; its applied reuses
// p.applied, and holds until the next seeker.
func (p *Plan) seeker(pi int32, start int64) seeker {
	pu := &p.w.pupils[pi]
	s := seeker{pu: pu, need: weekBits(p.weeksOf(pu)) | 1<<(gradeBits+pu.grade), young: start < pu.turns14, applied: p.applied[:0]}
	for a := pu.firstApp; a >= 0; a = p.apps[a].next {
		s.applied = append(s.applied, p.apps[a].offer)
	}
	p.applied = s.applied
	return s
}

// takesFor is takes for the pupil of s.
func (p *Plan) takesFor(s *seeker, oi int32) bool {
	t := p.takers[oi]
	if t&s.need != s.need || t&from14 != 0 && s.young {
		return false
	}
	if t&(reservedREP|reservedQPV) != 0 && !p.admits(t, s.pu) {
		return false
	}
	return !slices.Contains(s.applied, oi)
}

// admits mirrors the reservation of an offer whose takers are t.
func (p *Plan) admits(t uint64, pu *pupil) bool {
	s := &p.w.schools[pu.school]
	switch {
	case t&reservedREP != 0:
		return !s.lycee && s.priority != 0
	case t&reservedQPV != 0:
		return s.lycee && s.qpv
	}
	return true
}

func weekIndex(weeks []int8, wk int8) int {
	for i, x := range weeks {
		if x == wk {
			return i
		}
	}
	return -1
}

// search: the pupil looks for offers near their school and applies to a
// few, nearer ones more likely; a pupil without a placement looks again
// once the answers are in.
func (p *Plan) search(pi int32, now int64) {
	w := p.w
	pu := &w.pupils[pi]
	start := p.start(pu)
	if pu.placed || pu.used >= pu.budget || now > start-7*day {
		return
	}
	s := &w.schools[pu.school]
	c := w.communes[s.commune]
	total := p.candidates(pi, c, start)
	n := min(int(pu.budget-pu.used), 2+w.rng.IntN(4))
	at := now
	for ; n > 0 && total > 0; n-- {
		x := w.rng.Float64() * total
		for i := range p.buf {
			if p.buf[i].weight == 0 {
				continue
			}
			if x -= p.buf[i].weight; x < 0 || i == len(p.buf)-1 {
				at += int64(2*minute + w.rng.IntN(20*minute))
				p.push(at, qApply, pi, 0, p.buf[i].offer)
				total -= p.buf[i].weight
				p.buf[i].weight = 0
				break
			}
		}
	}
	p.push(now+10*day+int64(w.rng.IntN(day)), qSearch, pi, 0, 0)
}

// candidates gathers into p.buf the offers the pupil may apply to, each
// weighted by its distance from the school at c, nearest cells first and
// further until there is a choice; it returns the weights' sum.
func (p *Plan) candidates(pi int32, c refdata.Commune, start int64) float64 {
	w := p.w
	pu := &w.pupils[pi]
	week := pu.weeks[0]
	if pu.grade == gr2de {
		week = -1
	}
	cosLat := math.Cos(c.Lat * math.Pi / 180)
	p.buf = p.buf[:0]
	total := 0.0
	home := w.cellOf(c.Lat, c.Lon, week)
	reach2 := w.reachKm * w.reachKm
	s := p.seeker(pi, start)
	// the nearest cells first, further until there is a choice
	for k := range searchRings {
		for _, oi := range p.ring(home, k) {
			if !p.takesFor(&s, oi) {
				continue
			}
			o := &w.offers[oi]
			dx, dy := (o.lon-c.Lon)*cosLat*111, (o.lat-c.Lat)*111
			wt := 1 / (1 + (dx*dx+dy*dy)/reach2)
			p.buf = append(p.buf, candidate{oi, wt})
			total += wt
		}
		if len(p.buf) >= 8 {
			break
		}
	}
	return total
}

// ring lists the offers of the cells k rings around home: those at most
// 1<<k cells away in latitude and longitude and further than the ring
// before, row by row.
func (p *Plan) ring(home cell, k int) []int32 {
	rs := p.rings[home.key()]
	if rs == nil {
		rs = &rings{}
		p.rings[home.key()] = rs
	}
	if rs.gathered[k] {
		return rs.offers[k]
	}
	r, seen := int16(1)<<k, int16(-1)
	if k > 0 {
		seen = r / 2
	}
	var offers []int32
	for dlat := -r; dlat <= r; dlat++ {
		for dlon := -r; dlon <= r; dlon++ {
			if max(abs(dlat), abs(dlon)) > seen {
				offers = append(offers, p.w.grid[cell{home.lat + dlat, home.lon + dlon, home.week}.key()]...)
			}
		}
	}
	rs.offers[k], rs.gathered[k] = offers, true
	return offers
}

func (p *Plan) apply(pi, oi int32, now int64) {
	w := p.w
	pu := &w.pupils[pi]
	start := p.start(pu)
	if pu.placed || pu.used >= pu.budget || now >= start || !p.takes(oi, pi, start) {
		return
	}
	pu.used++
	w.offers[oi].received++
	ai := int32(len(p.apps))
	p.apps = append(p.apps, app{offer: oi, pupil: pi, next: pu.firstApp, submitted: now})
	pu.firstApp = ai
	p.emit(now, Apply, ai, 0)
	if w.rng.Float64() < 0.2 { // no answer: the application expires
		p.push(now+15*day+int64(w.rng.IntN(10*minute)), qExpire, ai, 0, 0)
		return
	}
	p.push(now+int64(hour+min(14*day, w.rng.ExpFloat64()*3*day)), qAnswer, ai, 0, 0)
}

// free reports whether the offer has a seat in each of the weeks.
func (p *Plan) free(o *offer, weeks []int8) bool {
	for _, wk := range weeks {
		if j := weekIndex(o.weeks, wk); j < 0 || o.held[j] >= o.seats {
			return false
		}
	}
	return true
}

func (p *Plan) hold(a *app, delta int) {
	w := p.w
	o := &w.offers[a.offer]
	for _, wk := range p.weeksOf(&w.pupils[a.pupil]) {
		j := weekIndex(o.weeks, wk)
		o.held[j] = uint16(int(o.held[j]) + delta)
	}
	p.refresh(a.offer)
}

// end closes an application, releasing the seat it held.
func (p *Plan) end(a *app, status appStatus) {
	if a.status == aAccepted || a.status == aConfirmed {
		p.hold(a, -1)
	}
	a.status = status
}

// answer: the employer accepts while a seat is free, else rejects, or
// lets the application expire.
func (p *Plan) answer(ai int32, now int64) {
	w := p.w
	a := &p.apps[ai]
	if a.status != aSubmitted {
		return
	}
	o, pu := &w.offers[a.offer], &w.pupils[a.pupil]
	start := p.start(pu)
	rate := earlyRate
	if int(o.received) >= o.places()*int(o.want) || now > start-30*day {
		rate = acceptRate
	}
	if o.open && now < start-2*day && p.free(o, p.weeksOf(pu)) && w.rng.Float64() < rate {
		a.status, a.accepted = aAccepted, now
		p.hold(a, 1)
		p.emit(now, Accept, ai, 0)
		if w.rng.Float64() < 0.04 { // the pupil never confirms
			p.push(now+7*day+int64(w.rng.IntN(10*minute)), qExpire, ai, 0, 0)
			return
		}
		p.push(min(now+p.days(0.1, 4), start-day), qRespond, ai, 0, 0)
		return
	}
	if w.rng.Float64() < 0.8 {
		a.status = aRejected
		p.emit(now, Reject, ai, uint8(w.rng.IntN(len(rejections))))
		return
	}
	p.push(a.submitted+15*day+int64(w.rng.IntN(10*minute)), qExpire, ai, 0, 0)
}

// respond: the pupil confirms an acceptance (the service then withdraws
// their other applications for those weeks) or declines it.
func (p *Plan) respond(ai int32, now int64) {
	w := p.w
	a := &p.apps[ai]
	if a.status != aAccepted {
		return
	}
	pu := &w.pupils[a.pupil]
	if w.rng.Float64() < 0.06 {
		p.end(a, aWithdrawn)
		p.emit(now, Withdraw, ai, heldSeat)
		p.push(now+day, qSearch, a.pupil, 0, 0)
		return
	}
	a.status = aConfirmed
	pu.placed = true
	c := p.emit(now, Confirm, ai, 0)
	for o := pu.firstApp; o >= 0; o = p.apps[o].next {
		if other := &p.apps[o]; o != ai && (other.status == aSubmitted || other.status == aAccepted) {
			if c.NExtra == 0 {
				c.Extra = int32(len(p.withdrawn))
			}
			if other.status == aAccepted && c.NExtra < 7 {
				c.Arg |= 1 << c.NExtra
			}
			p.withdrawn = append(p.withdrawn, o)
			c.NExtra++
			p.end(other, aWithdrawn)
		}
	}
	p.push(now+p.days(0.5, 8), qCompleteEmployer, ai, 0, 0)
	p.push(now+p.days(0.5, 10), qCompleteSchool, ai, 0, 0)
	if start := p.start(pu); w.rng.Float64() < 0.04 && start-day > now {
		p.push(now+int64(w.rng.Float64()*float64(start-day-now)), qWithdrawPlaced, ai, 0, 0)
	}
}

// complete records a party's part; once both are in, the four parties
// sign, most of them within days, some never.
func (p *Plan) complete(ai int32, now int64, school bool) {
	w := p.w
	a := &p.apps[ai]
	if a.status != aConfirmed {
		return
	}
	k, bit := CompleteEmployer, uint8(1)
	if school {
		k, bit = CompleteSchool, 2
	}
	p.emit(now, k, ai, 0)
	a.parts |= bit
	if a.parts != 3 {
		return
	}
	roles := w.rng.Perm(4)
	n := 4
	if w.rng.Float64() < 0.1 {
		n = 1 + w.rng.IntN(3)
	}
	at := now
	for i := range n {
		at += p.days(0.1, 4)
		last := int32(0)
		if i == 3 {
			last = 1
		}
		p.push(at, qSign, ai, uint8(roles[i]), last)
	}
}

func (p *Plan) expire(ai int32, now int64) {
	a := &p.apps[ai]
	switch {
	case a.status == aSubmitted && now >= a.submitted+15*day:
	case a.status == aAccepted && now >= a.accepted+7*day:
	default:
		return
	}
	held := uint8(0)
	if a.status == aAccepted {
		held = heldSeat
	}
	p.end(a, aExpired)
	p.emit(now, Expire, ai, held)
}

// Figures are what the read models must show once the plan is played.
type Figures struct {
	OffersOpen, SeatsTotal, SeatsAvailable int            // seat-weeks of the open offers
	Applications                           map[string]int // by status
}

// Expected returns the figures of the plan's final state.
func (p *Plan) Expected() Figures {
	f := Figures{Applications: map[string]int{}}
	for _, o := range p.w.offers {
		if !o.visible || !o.open {
			continue
		}
		f.OffersOpen++
		for _, h := range o.held {
			f.SeatsTotal += int(o.seats)
			f.SeatsAvailable += int(o.seats) - int(h)
		}
	}
	names := [...]string{"submitted", "accepted", "rejected", "withdrawn", "confirmed", "expired"}
	for _, a := range p.apps {
		f.Applications[names[a.status]]++
	}
	return f
}

func abs(x int16) int16 {
	if x < 0 {
		return -x
	}
	return x
}
