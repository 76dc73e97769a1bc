package projections

import (
	"strconv"
	"strings"
	"sync"

	"passerelle/domain"
	"passerelle/domain/refdata"
)

// StatsName is the live statistics projection.
const StatsName = "stats"

// StatsCountersKey is the hash of counters "<scope>:<metric>". Offer
// scopes are "all", "sector:<code>", "department:<code>",
// "region:<code>", "grade:<grade>" and "week:<ISO week>", with metrics
// offers_open, seats_total and seats_available (seat-weeks; for a week
// scope, the seats of that week), and proposals_pending and pupils_booked
// (see statsApplication). "applications:<status>" and
// "conventions:<status>" count applications and conventions by status.
func StatsCountersKey() string { return "counters" }

// StatsTargetsKey is the hash of campaign targets "<scope>:<code>:<metric>"
// → target, set by the back office (event domain.TargetSet).
func StatsTargetsKey() string { return "targets" }

// Stats projects the counters of the dashboards: each offer, application
// and convention has a small document whose entries are its share of the
// counters, so a change moves them by the difference.
type Stats struct{}

// Name names the projection.
func (Stats) Name() string { return StatsName }

// Layout versions the model's keys and documents.
func (Stats) Layout() int { return 2 }

// Touches names the statistics documents an event changes.
func (Stats) Touches(ev Event, _ Docs) []Ref {
	switch cat, id := subject(ev); cat {
	case "offer":
		if _, ok := ev.Data.(*domain.OfferPosted); ok {
			return []Ref{created[statsOffer](statsKey(cat, id))}
		}
		return []Ref{ref[statsOffer](statsKey(cat, id))}
	case "application":
		refs := []Ref{ref[statsApplication](statsKey(cat, id))}
		if e, ok := ev.Data.(*domain.ApplicationSubmitted); ok && (e.ProposedBy != nil || e.BookingID != "") {
			// where a proposal or a booking counts is where its offer does
			refs = append(refs, ref[statsOffer](statsKey("offer", e.OfferID)))
		}
		return refs
	case "convention":
		return []Ref{ref[statsConvention](statsKey(cat, id))}
	case "target":
		return []Ref{ref[statsTarget](statsKey(cat, id))}
	}
	return nil
}

// Folds the events of offers, applications, conventions and targets.
func (Stats) Folds(category, _ string) bool {
	switch category {
	case "offer", "application", "convention", "target":
		return true
	}
	return false
}

// statsKey is the key of a document of the statistics.
func statsKey(category, id string) string { return category + ":" + id }

// Apply folds an event into the statistics documents, whose entries are the counters.
func (Stats) Apply(ev Event, docs Docs) {
	cat, id := subject(ev)
	key := statsKey(cat, id)
	switch cat {
	case "offer":
		if e, ok := ev.Data.(*domain.OfferPosted); ok {
			docs[key] = &statsOffer{Sector: e.Sector, Department: e.Department, Grades: e.Grades, Weeks: e.Weeks, Seats: e.Seats, Held: map[string]int{}, Open: true}
		} else if o := doc[statsOffer](docs, key); o != nil {
			o.apply(ev.Data)
		}
	case "application":
		d := create[statsApplication](docs, key)
		a := domain.Application{Status: d.Status}
		a.Apply(ev.Data)
		d.Status = a.Status
		if e, ok := ev.Data.(*domain.ApplicationSubmitted); ok && (e.ProposedBy != nil || e.BookingID != "") {
			d.Proposed, d.Booked = e.BookingID == "", e.BookingID != ""
			d.Scopes = applicationScopes(e, doc[statsOffer](docs, statsKey("offer", e.OfferID)))
		}
	case "convention":
		create[statsConvention](docs, key).Apply(ev.Data)
	case "target":
		create[statsTarget](docs, key).Apply(ev.Data)
	}
}

// statsOffer is what the statistics need to remember of an offer.
type statsOffer struct {
	Sector     string         `json:"sector"`
	Department string         `json:"department"`
	Grades     []domain.Grade `json:"grades"`
	Weeks      []string       `json:"week_list"`
	Seats      int            `json:"seats"`
	Held       map[string]int `json:"held_by_week"`
	Open       bool           `json:"open"`
}

func (o *statsOffer) apply(e domain.Event) {
	switch e := e.(type) {
	case *domain.OfferWithdrawn:
		o.Open = false
	case *domain.OfferReopened:
		o.Open = true
	case *domain.OfferAmended:
		o.Weeks, o.Seats = e.Weeks, e.Seats
	case *domain.SeatHeld:
		for _, w := range e.Weeks {
			o.Held[w]++
		}
	case *domain.SeatsBooked:
		for _, w := range e.Weeks {
			o.Held[w] += len(e.Seats)
		}
	case *domain.SeatReleased:
		for _, w := range e.Weeks {
			o.Held[w]--
		}
	}
}

func (*statsOffer) counts() {}

// Entries are the offer's share of the counters: nothing once withdrawn.
func (o *statsOffer) Entries(out []Entry) []Entry {
	if !o.Open {
		return out
	}
	figures := func(kind, v string, total, free int) {
		f := offerFields(kind, v)
		out = append(out, counter(StatsCountersKey(), f[0], 1),
			counter(StatsCountersKey(), f[1], int64(total)),
			counter(StatsCountersKey(), f[2], int64(free)))
	}
	total, free := 0, 0
	for _, w := range o.Weeks {
		f := o.Seats - o.Held[w]
		total, free = total+o.Seats, free+f
		figures("week", w, o.Seats, f)
	}
	figures("all", "", total, free)
	figures("sector", o.Sector, total, free)
	figures("department", o.Department, total, free)
	if d, ok := refdata.MustLoad().Department(o.Department); ok {
		figures("region", d.Region, total, free)
	}
	for _, g := range o.Grades {
		figures("grade", string(g), total, free)
	}
	return out
}

// offerFields are the counter fields of an offer scope (kind "all", or
// kind:v): offers_open, seats_total and seats_available. They are joined
// once: every change of every offer lists them, and the scopes are few
// (weeks, sectors, départements, régions, grades).
func offerFields(kind, v string) *[3]string {
	k := [2]string{kind, v}
	fieldsOf.RLock()
	f := fieldsOf.m[k]
	fieldsOf.RUnlock()
	if f != nil {
		return f
	}
	scope := kind
	if kind != "all" {
		scope += ":" + v
	}
	f = &[3]string{scope + ":offers_open", scope + ":seats_total", scope + ":seats_available"}
	fieldsOf.Lock()
	defer fieldsOf.Unlock()
	if len(fieldsOf.m) < maxOfferScopes {
		fieldsOf.m[[2]string{kind, strings.Clone(v)}] = f // not a view into a larger buffer
	}
	return f
}

// maxOfferScopes bounds offerFields's memory (a national campaign has a
// few hundred scopes), whatever the log holds.
const maxOfferScopes = 1 << 12

var fieldsOf = struct {
	sync.RWMutex
	m map[[2]string]*[3]string
}{m: map[[2]string]*[3]string{}}

// statsApplication is an application's status, counted once. A proposal
// awaiting its answer counts in the proposals_pending of its scopes (its
// offer's, its grade, its weeks); a group booking's application, while it
// holds its seat, counts one pupil in their pupils_booked.
type statsApplication struct {
	Status   string   `json:"status"`
	Proposed bool     `json:"proposed,omitempty"`
	Booked   bool     `json:"booked,omitempty"`
	Scopes   []string `json:"scopes,omitempty"`
}

func (*statsApplication) counts() {}

func (a *statsApplication) Entries(out []Entry) []Entry {
	field, ok := applicationsByStatus[a.Status]
	if !ok {
		field = "applications:" + a.Status
	}
	out = append(out, counter(StatsCountersKey(), field, 1))
	st := domain.Application{Status: a.Status}
	metric := ""
	switch {
	case a.Proposed && st.Pending() && !st.HoldsSeat():
		metric = "proposals_pending"
	case a.Booked && st.HoldsSeat():
		metric = "pupils_booked"
	default:
		return out
	}
	for _, s := range a.Scopes {
		out = append(out, counter(StatsCountersKey(), s+":"+metric, 1))
	}
	return out
}

// applicationsByStatus is the counter field of the applications of each
// status, joined once: every event of an application lists it.
var applicationsByStatus = func() map[string]string {
	m := map[string]string{}
	for _, st := range []string{domain.StatusSubmitted, domain.StatusRead, domain.StatusAccepted, domain.StatusRejected,
		domain.StatusWithdrawn, domain.StatusConfirmed, domain.StatusCancelled, domain.StatusExpired} {
		m[st] = "applications:" + st
	}
	return m
}()

// applicationScopes are the scopes an application counts in: its offer's
// (all, sector, département, région; all only when the offer is unknown),
// its grade and each of its weeks.
func applicationScopes(e *domain.ApplicationSubmitted, o *statsOffer) []string {
	out := []string{"all"}
	if o != nil {
		out = append(out, "sector:"+o.Sector, "department:"+o.Department)
		if d, ok := refdata.MustLoad().Department(o.Department); ok {
			out = append(out, "region:"+d.Region)
		}
	}
	out = append(out, "grade:"+string(e.Grade))
	for _, w := range e.Weeks {
		out = append(out, "week:"+w)
	}
	return out
}

// statsConvention is where a convention stands, counted once by status.
type statsConvention struct{ domain.ConventionProgress }

func (*statsConvention) counts() {}

func (c *statsConvention) Entries(dst []Entry) []Entry {
	return append(dst, counter(StatsCountersKey(), "conventions:"+c.Status(), 1))
}

// statsTarget is a campaign target: a field of the targets hash while set.
type statsTarget struct{ domain.Target }

func (t *statsTarget) Entries(dst []Entry) []Entry {
	e := t.Current
	if e == nil || e.Target <= 0 {
		return dst
	}
	return append(dst, field(StatsTargetsKey(), e.Scope+":"+e.Code+":"+e.Metric, strconv.FormatInt(e.Target, 10)))
}
