// Package reconcile finishes placements that a crash left half-made. It
// follows the log, folds what each aggregate holds for each application
// (View), and settles every placement that is not settled through the
// command layer's own steps (commands.Service.Settle), as the reconciler:
// the same rules (domain.PlacementState.Next) a command runs after its
// decision.
package reconcile

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"passerelle/domain"
	"passerelle/eventstore"
)

// Categories are the streams whose events the view folds.
var Categories = []string{"application", "offer", "pupil", "convention"}

// placement is what the log says one application holds, with its IDs
// and values as references into the view's tables: it holds no pointer,
// and neither do the view's maps, which the collector then does not
// scan. A national view holds 3.2 million placements: held as strings,
// lists and pointers, they were 11.9 million objects to mark, and a full
// collection took 3.95 s (7.4 s of processor time); held so, 32,000
// objects and 11 ms (BenchmarkViewHeap -apps 3200000).
type placement struct {
	id, offer, pupil, booking ref
	weeks                     int32 // in View.weekLists; 0: none
	status, convention        int32 // in View.words; 0: ""
	tracked, seat, pupilWeeks bool
	last                      eventstore.Position
	// the next application of the same offer, of the same pupil (slots
	// plus one; 0: none), in the order the view first placed them
	nextOfOffer, nextOfPupil int32
}

// record is a placement with its IDs and values spelled out: what a
// snapshot holds, and what repair reads.
type record struct {
	Offer, Pupil string
	Weeks        []string
	Status       string
	Tracked      bool
	Seat         bool
	PupilWeeks   bool
	Convention   string // domain.PlacementNoConvention, …Live, …Cancelled
	Booking      string // the group booking that holds its seat and makes it
	Last         eventstore.Position
}

// list is the applications of one offer or one pupil (slots plus one).
type list struct{ first, last int32 }

// View is every placement as the log tells it, folded from the events of
// Categories in log order. It reads only what events say, never an
// aggregate, so it is also the independent check of the log (Broken).
type View struct {
	Position eventstore.Position

	ids       idTable
	slots     []int32 // by ref: its placement in places, plus one (0: none)
	places    []placement
	convs     map[ref]ref  // convention -> application
	withdrawn map[ref]bool // offer -> withdrawn
	forgotten map[ref]bool // pupil -> forgotten
	seats     map[ref]int  // offer -> seats per week
	byOffer   map[ref]list
	byPupil   map[ref]list

	// values many placements share: statuses, conventions' states, lists
	// of weeks (a national season has a few hundred)
	words     strTable
	weekLists [][]string
	weekIndex map[string]int32
}

// NewView is an empty view.
func NewView() *View {
	return &View{ids: newIDTable(), convs: map[ref]ref{}, withdrawn: map[ref]bool{},
		forgotten: map[ref]bool{}, seats: map[ref]int{}, byOffer: map[ref]list{}, byPupil: map[ref]list{},
		words: strTable{index: map[string]int32{}, strs: []string{""}}, weekLists: [][]string{nil},
		weekIndex: map[string]int32{}}
}

// Len is the number of applications the view knows.
func (v *View) Len() int { return len(v.places) }

// Applications lists the applications the view knows, in no order.
func (v *View) Applications() []string {
	out := make([]string, len(v.places))
	for i := range v.places {
		out[i] = v.ids.name(v.places[i].id)
	}
	return out
}

// weeksRef is the reference of a list of weeks, kept once.
func (v *View) weeksRef(weeks []string) int32 {
	if len(weeks) == 0 {
		return 0
	}
	key := strings.Join(weeks, ",")
	if i, ok := v.weekIndex[key]; ok {
		return i
	}
	kept := make([]string, len(weeks))
	for i, w := range weeks {
		kept[i] = v.words.str(v.words.ref(w))
	}
	v.weekLists = append(v.weekLists, kept)
	i := int32(len(v.weekLists) - 1)
	v.weekIndex[key] = i
	return i
}

// record spells out the placement in slot i.
func (v *View) record(i int32) record {
	p := &v.places[i]
	return record{Offer: v.ids.name(p.offer), Pupil: v.ids.name(p.pupil), Weeks: v.weekLists[p.weeks],
		Status: v.words.str(p.status), Tracked: p.tracked, Seat: p.seat, PupilWeeks: p.pupilWeeks,
		Convention: v.words.str(p.convention), Booking: v.ids.name(p.booking), Last: p.last}
}

// lookUp returns the placement of application id as a record.
func (v *View) lookUp(id string) (record, bool) {
	r, ok := v.ids.find(id)
	if !ok {
		return record{}, false
	}
	i, ok := v.slotOf(r)
	if !ok {
		return record{}, false
	}
	return v.record(i), true
}

// put sets the placement of application id from a record, as a snapshot
// is read.
func (v *View) put(id string, rec record) {
	i := v.slot(v.ids.ref(id))
	v.listUnder(i, v.ids.ref(rec.Offer), v.ids.ref(rec.Pupil))
	p := &v.places[i]
	p.weeks, p.status, p.convention = v.weeksRef(rec.Weeks), v.words.ref(rec.Status), v.words.ref(rec.Convention)
	p.tracked, p.seat, p.pupilWeeks = rec.Tracked, rec.Seat, rec.PupilWeeks
	p.booking, p.last = v.ids.ref(rec.Booking), rec.Last
}

// slot is the slot of application r's placement, made when it has none.
func (v *View) slot(r ref) int32 {
	if i, ok := v.slotOf(r); ok {
		return i
	}
	i := int32(len(v.places))
	v.places = append(v.places, placement{id: r})
	if n := int(r) + 1; n > len(v.slots) {
		v.slots = slices.Grow(v.slots, n-len(v.slots))[:n]
	}
	v.slots[r] = i + 1
	return i
}

// slotOf is the slot of application r's placement, if it has one.
func (v *View) slotOf(r ref) (int32, bool) {
	if int(r) >= len(v.slots) || v.slots[r] == 0 {
		return 0, false
	}
	return v.slots[r] - 1, true
}

// listUnder sets the offer and the pupil of the placement in slot i and,
// the first time, lists it under both. A placement with no offer yet
// (only a step's event seen) is listed under none.
func (v *View) listUnder(i int32, offer, pupil ref) {
	p := &v.places[i]
	if p.offer == 0 && offer != 0 {
		v.byOffer[offer] = v.appendTo(v.byOffer[offer], i, func(p *placement) *int32 { return &p.nextOfOffer })
		v.byPupil[pupil] = v.appendTo(v.byPupil[pupil], i, func(p *placement) *int32 { return &p.nextOfPupil })
	}
	p.offer, p.pupil = offer, pupil
}

// appendTo appends slot i to l, linked through next.
func (v *View) appendTo(l list, i int32, next func(*placement) *int32) list {
	if l.last == 0 {
		return list{first: i + 1, last: i + 1}
	}
	*next(&v.places[l.last-1]) = i + 1
	l.last = i + 1
	return l
}

// Touched is the applications an event may have unsettled or settled,
// as the view refers to them (see IDs).
type Touched []ref

// IDs spells out the applications of t.
func (v *View) IDs(t Touched) []string {
	out := make([]string, len(t))
	for i, r := range t {
		out[i] = v.ids.name(r)
	}
	return out
}

// touched is the applications of l.
func (v *View) touched(l list, next func(*placement) int32) Touched {
	var out Touched
	for s := l.first; s != 0; s = next(&v.places[s-1]) {
		out = append(out, v.places[s-1].id)
	}
	return out
}

func ofOffer(p *placement) int32 { return p.nextOfOffer }
func ofPupil(p *placement) int32 { return p.nextOfPupil }

// Apply folds one event and returns the applications it may have
// unsettled or settled; an event of no interest returns none. A forgotten
// pupil's id is returned as forgotten.
func (v *View) Apply(re eventstore.RecordedEvent) (touched Touched, forgotten string) {
	v.Position = max(v.Position, re.Position)
	e, err := domain.Decode(re.Type, re.Data)
	if err != nil {
		return nil, "" // not a placement event this version knows
	}
	if id, status, ok := statusAfter(e); ok {
		p := v.app(id, re.Position)
		p.status = v.words.ref(status)
		return Touched{p.id}, ""
	}
	switch ev := e.(type) {
	case *domain.OfferPosted:
		v.seats[v.ids.ref(ev.OfferID)] = ev.Seats
	case *domain.OfferAmended:
		v.seats[v.ids.ref(ev.OfferID)] = ev.Seats
	case *domain.OfferWithdrawn:
		offer := v.ids.ref(ev.OfferID)
		v.withdrawn[offer] = true
		return v.touched(v.byOffer[offer], ofOffer), ""
	case *domain.OfferReopened:
		delete(v.withdrawn, v.ids.ref(ev.OfferID))
	case *domain.PupilForgotten:
		pupil := v.ids.ref(ev.PupilID)
		v.forgotten[pupil] = true
		return v.touched(v.byPupil[pupil], ofPupil), ev.PupilID
	case *domain.ApplicationSubmitted:
		p := v.place(ev.ApplicationID, ev.OfferID, ev.PupilID, ev.Weeks, re.Position)
		p.status, p.booking = v.words.ref(domain.StatusSubmitted), v.ids.ref(ev.BookingID)
		return v.touched(v.byPupil[p.pupil], ofPupil), "" // a confirmed one may now have a rival
	case *domain.SeatsBooked:
		// the seats of applications the booking makes next
		var touched Touched
		for _, s := range ev.Seats {
			p := v.place(s.ApplicationID, ev.OfferID, s.PupilID, ev.Weeks, re.Position)
			p.seat, p.booking = true, v.ids.ref(ev.BookingID)
			touched = append(touched, p.id)
		}
		return touched, ""
	case *domain.ApplicationConfirmed:
		p := v.app(ev.ApplicationID, re.Position)
		p.status = v.words.ref(domain.StatusConfirmed)
		v.convs[v.ids.ref(ev.ConventionID)] = p.id
		if p.pupil == 0 {
			// its submission is not in the log: it has no rivals to name
			return Touched{p.id}, ""
		}
		return v.touched(v.byPupil[p.pupil], ofPupil), ""
	default:
		return v.applyHold(e, re.Position)
	}
	return nil, ""
}

// applyHold folds what the offer, the pupil and the convention hold for
// an application.
func (v *View) applyHold(e domain.Event, pos eventstore.Position) (Touched, string) {
	var p *placement
	switch ev := e.(type) {
	case *domain.SeatHeld:
		p = v.app(ev.ApplicationID, pos)
		p.seat = true
	case *domain.SeatReleased:
		p = v.app(ev.ApplicationID, pos)
		p.seat = false
	case *domain.PupilApplied:
		v.app(ev.ApplicationID, pos).tracked = true
		return v.touched(v.byPupil[v.ids.ref(ev.PupilID)], ofPupil), "" // a confirmed one may now see it as a rival
	case *domain.PupilWeeksReserved:
		p = v.app(ev.ApplicationID, pos)
		p.pupilWeeks = true
	case *domain.PupilWeeksReleased:
		p = v.app(ev.ApplicationID, pos)
		p.pupilWeeks = false
	case *domain.ConventionDrafted:
		p = v.app(ev.ApplicationID, pos)
		v.convs[v.ids.ref(ev.ConventionID)] = p.id
		p.convention = v.words.ref(domain.PlacementConventionLive)
	case *domain.ConventionCancelled:
		conv, known := v.ids.find(ev.ConventionID)
		app, ok := v.convs[conv]
		i, placed := v.slotOf(app)
		if !known || !ok || !placed {
			return nil, ""
		}
		p = &v.places[i]
		p.last = pos
		p.convention = v.words.ref(domain.PlacementConventionCancelled)
	default:
		return nil, ""
	}
	return Touched{p.id}, ""
}

// statusAfter is the status an application event sets, for those that
// only set one.
func statusAfter(e domain.Event) (id, status string, ok bool) {
	switch ev := e.(type) {
	case *domain.ApplicationRead:
		return ev.ApplicationID, domain.StatusRead, true
	case *domain.ApplicationAccepted:
		return ev.ApplicationID, domain.StatusAccepted, true
	case *domain.ApplicationRejected:
		return ev.ApplicationID, domain.StatusRejected, true
	case *domain.ApplicationWithdrawn:
		return ev.ApplicationID, domain.StatusWithdrawn, true
	case *domain.ApplicationCancelled:
		return ev.ApplicationID, domain.StatusCancelled, true
	case *domain.ApplicationExpired:
		return ev.ApplicationID, domain.StatusExpired, true
	case *domain.ApplicationOfferWithdrawn:
		return ev.ApplicationID, domain.StatusOfferWithdrawn, true
	}
	return "", "", false
}

// place is the placement of application id on offer for pupil, listed
// under both once.
func (v *View) place(id, offer, pupil string, weeks []string, pos eventstore.Position) *placement {
	p := v.app(id, pos)
	i, _ := v.slotOf(p.id)
	v.listUnder(i, v.ids.ref(offer), v.ids.ref(pupil))
	p.weeks = v.weeksRef(weeks)
	return p
}

// app is the placement of application id, touched at pos: valid until
// the next placement is made.
func (v *View) app(id string, pos eventstore.Position) *placement {
	// a step's event before its application's (never in a log written
	// by the command layer) makes an application the view does not know
	p := &v.places[v.slot(v.ids.ref(id))]
	p.last = pos
	return p
}

// State is the placement of application id as the log tells it.
func (v *View) State(id string) domain.PlacementState {
	r, known := v.ids.find(id)
	i, ok := v.slotOf(r)
	if !known || !ok {
		return domain.PlacementState{ApplicationID: id}
	}
	return v.state(id, i)
}

// state is the placement in slot i, of application id.
func (v *View) state(id string, i int32) domain.PlacementState {
	p := &v.places[i]
	st := domain.PlacementState{
		ApplicationID: id, Status: v.words.str(p.status), Weeks: v.weekLists[p.weeks], Tracked: p.tracked,
		SeatHeld: p.seat, WeeksHeld: p.pupilWeeks, Convention: v.words.str(p.convention),
		OfferWithdrawn: v.withdrawn[p.offer], PupilForgotten: v.forgotten[p.pupil], Booked: p.booking != 0,
	}
	st.ConfirmedRival, st.OverlappingPending = v.rivals(i, st.Status)
	return st
}

// pending reports whether an application may still become a placement.
func pending(status string) bool {
	return status == domain.StatusSubmitted || status == domain.StatusRead || status == domain.StatusAccepted
}

// rivals are what commands.Service reads of the pupil's other
// applications sharing a week: for a pending one, whether one of them is
// confirmed; for a confirmed one, those still pending.
func (v *View) rivals(i int32, status string) (confirmed bool, others []string) {
	if !pending(status) && status != domain.StatusConfirmed {
		return false, nil // ended: rivals are nothing to it (most of a season's applications)
	}
	p := &v.places[i]
	if p.pupil == 0 {
		return false, nil
	}
	weeks := v.weekLists[p.weeks]
	for s := v.byPupil[p.pupil].first; s != 0; s = v.places[s-1].nextOfPupil {
		o := &v.places[s-1]
		if s-1 == i || !domain.Overlaps(v.weekLists[o.weeks], weeks) {
			continue
		}
		other := v.words.str(o.status)
		switch {
		case pending(status) && other == domain.StatusConfirmed && o.pupilWeeks:
			confirmed = true
		case status == domain.StatusConfirmed && pending(other) && o.tracked:
			// one not yet on the pupil's record withdraws itself once it is
			others = append(others, v.ids.name(o.id))
		}
	}
	return confirmed, others
}

// Unsettled lists the applications whose placement is not settled, sorted.
func (v *View) Unsettled() []string {
	var out []string
	for i := range v.places {
		id := v.ids.name(v.places[i].id)
		if _, ok := v.state(id, int32(i)).Next(); ok {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// Broken lists every invariant of settled placements the log breaks: what
// each application holds against its status, and seats held beyond an
// offer's seats in any week.
func (v *View) Broken() []string {
	var out []string
	type offerWeek struct {
		offer ref
		week  string
	}
	held := map[offerWeek]int{}
	for i := range v.places {
		p := &v.places[i]
		id := v.ids.name(p.id)
		for _, b := range v.state(id, int32(i)).Broken() {
			out = append(out, fmt.Sprintf("application %s: %s", id, b))
		}
		if p.seat {
			for _, w := range v.weekLists[p.weeks] {
				held[offerWeek{p.offer, w}]++
			}
		}
	}
	for ow, n := range held {
		if seats, ok := v.seats[ow.offer]; ok && n > seats {
			out = append(out, fmt.Sprintf("offer %s: %d seats held in week %s, it has %d", v.ids.name(ow.offer), n, ow.week, seats))
		}
	}
	slices.Sort(out)
	return out
}
