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

// placement is what the log says one application holds.
type placement struct {
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

// View is every placement as the log tells it, folded from the events of
// Categories in log order. It reads only what events say, never an
// aggregate, so it is also the independent check of the log (Broken).
type View struct {
	Position  eventstore.Position
	Apps      map[string]*placement
	Convs     map[string]string // convention -> application
	Withdrawn map[string]bool   // offer -> withdrawn
	Forgotten map[string]bool   // pupil -> forgotten
	Seats     map[string]int    // offer -> seats per week

	byOffer map[string][]string // offer -> applications
	byPupil map[string][]string // pupil -> applications
	shared  shared
}

// shared keeps one copy of the values many placements hold alike: an
// offer's ID, a status, a list of weeks. A national view holds 3.2
// million placements of 67,000 offers, a handful of statuses and a few
// hundred lists of weeks; decoded, each placement had copies of its own.
type shared struct {
	strs  map[string]string
	weeks map[string][]string
}

// str is the copy of s kept.
func (sh *shared) str(s string) string {
	if s == "" {
		return ""
	}
	if kept, ok := sh.strs[s]; ok {
		return kept
	}
	if sh.strs == nil {
		sh.strs = map[string]string{}
	}
	sh.strs[s] = s
	return s
}

// list is the copy of weeks kept, never changed by those sharing it.
func (sh *shared) list(weeks []string) []string {
	if len(weeks) == 0 {
		return weeks
	}
	key := strings.Join(weeks, ",")
	if kept, ok := sh.weeks[key]; ok {
		return kept
	}
	if sh.weeks == nil {
		sh.weeks = map[string][]string{}
	}
	kept := make([]string, len(weeks))
	for i, w := range weeks {
		kept[i] = sh.str(w)
	}
	sh.weeks[key] = kept
	return kept
}

// NewView is an empty view.
func NewView() *View {
	v := &View{Apps: map[string]*placement{}, Convs: map[string]string{}, Withdrawn: map[string]bool{},
		Forgotten: map[string]bool{}, Seats: map[string]int{}}
	v.index()
	return v
}

// index rebuilds the lookups that are not kept in a snapshot.
func (v *View) index() {
	v.byOffer, v.byPupil = map[string][]string{}, map[string][]string{}
	ids := make([]string, 0, len(v.Apps))
	for id := range v.Apps {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		p := v.Apps[id]
		v.byOffer[p.Offer] = append(v.byOffer[p.Offer], id)
		v.byPupil[p.Pupil] = append(v.byPupil[p.Pupil], id)
	}
}

// Apply folds one event and returns the applications it may have
// unsettled or settled; an event of no interest returns none. A forgotten
// pupil's id is returned as forgotten.
func (v *View) Apply(re eventstore.RecordedEvent) (touched []string, forgotten string) {
	v.Position = max(v.Position, re.Position)
	e, err := domain.Decode(re.Type, re.Data)
	if err != nil {
		return nil, "" // not a placement event this version knows
	}
	if id, status, ok := statusAfter(e); ok {
		v.app(id, re.Position).Status = status // a constant: shared already
		return []string{id}, ""
	}
	switch ev := e.(type) {
	case *domain.OfferPosted:
		v.Seats[ev.OfferID] = ev.Seats
	case *domain.OfferAmended:
		v.Seats[ev.OfferID] = ev.Seats
	case *domain.OfferWithdrawn:
		v.Withdrawn[ev.OfferID] = true
		return v.byOffer[ev.OfferID], ""
	case *domain.OfferReopened:
		delete(v.Withdrawn, ev.OfferID)
	case *domain.PupilForgotten:
		v.Forgotten[ev.PupilID] = true
		return v.byPupil[ev.PupilID], ev.PupilID
	case *domain.ApplicationSubmitted:
		p := v.place(ev.ApplicationID, ev.OfferID, ev.PupilID, ev.Weeks, re.Position)
		p.Status, p.Booking = domain.StatusSubmitted, ev.BookingID
		return v.byPupil[ev.PupilID], "" // a confirmed one may now have a rival
	case *domain.SeatsBooked:
		// the seats of applications the booking makes next
		var touched []string
		for _, s := range ev.Seats {
			p := v.place(s.ApplicationID, ev.OfferID, s.PupilID, ev.Weeks, re.Position)
			p.Seat, p.Booking = true, ev.BookingID
			touched = append(touched, s.ApplicationID)
		}
		return touched, ""
	case *domain.ApplicationConfirmed:
		p := v.app(ev.ApplicationID, re.Position)
		p.Status = domain.StatusConfirmed
		v.Convs[ev.ConventionID] = ev.ApplicationID
		if p.Pupil == "" {
			// its submission is not in the log: it has no rivals to name
			return []string{ev.ApplicationID}, ""
		}
		return v.byPupil[p.Pupil], ""
	default:
		return v.applyHold(e, re.Position)
	}
	return nil, ""
}

// applyHold folds what the offer, the pupil and the convention hold for
// an application.
func (v *View) applyHold(e domain.Event, pos eventstore.Position) ([]string, string) {
	var id string
	switch ev := e.(type) {
	case *domain.SeatHeld:
		id = ev.ApplicationID
		v.app(id, pos).Seat = true
	case *domain.SeatReleased:
		id = ev.ApplicationID
		v.app(id, pos).Seat = false
	case *domain.PupilApplied:
		v.app(ev.ApplicationID, pos).Tracked = true
		return v.byPupil[ev.PupilID], "" // a confirmed one may now see it as a rival
	case *domain.PupilWeeksReserved:
		id = ev.ApplicationID
		v.app(id, pos).PupilWeeks = true
	case *domain.PupilWeeksReleased:
		id = ev.ApplicationID
		v.app(id, pos).PupilWeeks = false
	case *domain.ConventionDrafted:
		id = ev.ApplicationID
		v.Convs[ev.ConventionID] = id
		v.app(id, pos).Convention = domain.PlacementConventionLive
	case *domain.ConventionCancelled:
		var ok bool
		if id, ok = v.Convs[ev.ConventionID]; !ok {
			return nil, ""
		}
		v.app(id, pos).Convention = domain.PlacementConventionCancelled
	default:
		return nil, ""
	}
	return []string{id}, ""
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
	if p.Offer == "" {
		v.byOffer[offer] = append(v.byOffer[offer], id)
		v.byPupil[pupil] = append(v.byPupil[pupil], id)
	}
	p.Offer, p.Pupil, p.Weeks = v.shared.str(offer), pupil, v.shared.list(weeks)
	return p
}

// app is the placement of application id, touched at pos.
func (v *View) app(id string, pos eventstore.Position) *placement {
	p := v.Apps[id]
	if p == nil {
		// a step's event before its application's (never in a log written
		// by the command layer): an application the view does not know
		p = &placement{}
		v.Apps[id] = p
	}
	p.Last = pos
	return p
}

// State is the placement of application id as the log tells it.
func (v *View) State(id string) domain.PlacementState {
	p := v.Apps[id]
	if p == nil {
		return domain.PlacementState{ApplicationID: id}
	}
	st := domain.PlacementState{
		ApplicationID: id, Status: p.Status, Weeks: p.Weeks, Tracked: p.Tracked, SeatHeld: p.Seat,
		WeeksHeld: p.PupilWeeks, Convention: p.Convention, OfferWithdrawn: v.Withdrawn[p.Offer],
		PupilForgotten: v.Forgotten[p.Pupil], Booked: p.Booking != "",
	}
	st.ConfirmedRival, st.OverlappingPending = v.rivals(id, p)
	return st
}

// pending reports whether an application may still become a placement.
func pending(status string) bool {
	return status == domain.StatusSubmitted || status == domain.StatusRead || status == domain.StatusAccepted
}

// rivals are what commands.Service reads of the pupil's other
// applications sharing a week: for a pending one, whether one of them is
// confirmed; for a confirmed one, those still pending.
func (v *View) rivals(id string, p *placement) (confirmed bool, others []string) {
	if !pending(p.Status) && p.Status != domain.StatusConfirmed {
		return false, nil // ended: rivals are nothing to it (most of a season's applications)
	}
	for _, other := range v.byPupil[p.Pupil] {
		o := v.Apps[other]
		if other == id || !domain.Overlaps(o.Weeks, p.Weeks) {
			continue
		}
		switch {
		case pending(p.Status) && o.Status == domain.StatusConfirmed && o.PupilWeeks:
			confirmed = true
		case p.Status == domain.StatusConfirmed && pending(o.Status) && o.Tracked:
			// one not yet on the pupil's record withdraws itself once it is
			others = append(others, other)
		}
	}
	return confirmed, others
}

// Unsettled lists the applications whose placement is not settled, sorted.
func (v *View) Unsettled() []string {
	var out []string
	for id := range v.Apps {
		if _, ok := v.State(id).Next(); ok {
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
	held := map[string]map[string]int{}
	for id, p := range v.Apps {
		for _, b := range v.State(id).Broken() {
			out = append(out, fmt.Sprintf("application %s: %s", id, b))
		}
		if p.Seat {
			if held[p.Offer] == nil {
				held[p.Offer] = map[string]int{}
			}
			for _, w := range p.Weeks {
				held[p.Offer][w]++
			}
		}
	}
	for offer, weeks := range held {
		for w, n := range weeks {
			if seats, ok := v.Seats[offer]; ok && n > seats {
				out = append(out, fmt.Sprintf("offer %s: %d seats held in week %s, it has %d", offer, n, w, seats))
			}
		}
	}
	slices.Sort(out)
	return out
}
