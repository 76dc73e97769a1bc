package domain

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Offer owns its seats: holding one is decided here, against the offer's
// own revision, so two acceptances can never share the last seat.
type Offer struct {
	Posted    OfferPosted
	Withdrawn bool
	Deleted   bool                // by its operator: nothing brings it back
	held      map[string]int      // week -> seats held
	holders   map[string][]string // application -> weeks held
	pupils    map[string]string   // application holding seats -> its pupil
	bookings  map[string]SeatsBooked
	exists    bool
}

// Exists reports whether the offer was posted.
func (o *Offer) Exists() bool { return o.exists }

// Open reports whether the offer takes applications.
func (o *Offer) Open() bool { return o.exists && !o.Withdrawn }

// Free returns the number of free seats in week.
func (o *Offer) Free(week string) int {
	if !o.hasWeek(week) {
		return 0
	}
	return o.Posted.Seats - o.held[week]
}

// Holds reports whether the application holds seats on this offer.
func (o *Offer) Holds(applicationID string) bool { _, ok := o.holders[applicationID]; return ok }

// Holders are the applications holding seats on this offer, sorted.
func (o *Offer) Holders() []string {
	out := make([]string, 0, len(o.holders))
	for id := range o.holders {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

func (o *Offer) hold(applicationID, pupilID string, weeks []string) {
	for _, w := range weeks {
		o.held[w]++
	}
	o.holders[applicationID], o.pupils[applicationID] = weeks, pupilID
}

func (o *Offer) hasWeek(w string) bool { return contains(o.Posted.Weeks, w) }

func (o *Offer) hasGrade(g Grade) bool { return contains(o.Posted.Grades, g) }

// Apply folds one of the offer's events into its state.
func (o *Offer) Apply(e Event) {
	switch ev := e.(type) {
	case *OfferPosted:
		o.Posted, o.exists = *ev, true
		o.held, o.holders = map[string]int{}, map[string][]string{}
		o.pupils, o.bookings = map[string]string{}, map[string]SeatsBooked{}
	case *OfferWithdrawn:
		o.Withdrawn = true
	case *OfferReopened:
		o.Withdrawn = false
	case *OfferDeleted:
		o.Deleted = true
	case *PartnerOfferChanged:
		p := ev.Partner
		o.Posted.Partner = &p
	case *OfferAmended:
		p := &o.Posted
		p.Title, p.Description, p.Weeks, p.Seats = ev.Title, ev.Description, ev.Weeks, ev.Seats
		p.Reserved, p.DailyHours, p.GroupSize, p.FamilyBusiness = ev.Reserved, ev.DailyHours, ev.GroupSize, ev.FamilyBusiness
		p.MinGroupSize = ev.MinGroupSize
	case *SeatHeld:
		o.hold(ev.ApplicationID, ev.PupilID, ev.Weeks)
	case *SeatsBooked:
		for _, s := range ev.Seats {
			o.hold(s.ApplicationID, s.PupilID, ev.Weeks)
		}
		o.bookings[ev.BookingID] = *ev
	case *SeatReleased:
		for _, w := range o.holders[ev.ApplicationID] {
			o.held[w]--
		}
		delete(o.holders, ev.ApplicationID)
		delete(o.pupils, ev.ApplicationID)
	}
}

// PostOfferInput is the post-offer command.
type PostOfferInput struct {
	Title, Description, Sector string
	Grades                     []string
	Weeks                      []string
	Seats                      int
	CommuneCode, Address       string
	Lat, Lon                   float64
	Reserved                   Reservation
	DailyHours                 *DailyHours
	GroupSize                  int
	FamilyBusiness             bool
	Partner                    *PartnerOffer // pushed by an operator
	Collective                 bool
	MinGroupSize               int
	// CoHosts of a collective programme; the command layer names each
	// registered employer (a name left empty: no such employer).
	CoHosts []CoHost
}

// PostOffer decides the posting of a new offer by employer, at now.
func PostOffer(id string, employer *Employer, in PostOfferInput, places Places, now time.Time) ([]Event, error) {
	p := Problems{}
	if employer == nil || !employer.Exists() {
		p.Add("employer_id", "no employer is registered with this id")
	}
	required(p, "title", in.Title, 200)
	required(p, "description", in.Description, 5000)
	if !places.SectorExists(in.Sector) {
		p.Add("sector", "must be a national sector code s1…s51")
	}
	grades := checkGrades(p, in.Grades)
	weeks := checkOfferWeeks(p, in.Weeks)
	checkWeeksAhead(p, weeks, now)
	checkSeats(p, in.Seats)
	dep, ok := places.CommuneDepartment(in.CommuneCode)
	if !ok {
		p.Add("commune_code", "must be an INSEE commune code")
	}
	required(p, "address", in.Address, 300)
	checkPoint(p, places, in.CommuneCode, in.Lat, in.Lon)
	checkTerms(p, in)
	checkCoHosts(p, employer, in)
	if err := p.Err(); err != nil {
		return nil, err
	}
	return []Event{&OfferPosted{
		OfferID: id, EmployerID: employer.Registered.EmployerID, EmployerName: employer.Registered.Name,
		EmployerKind: employer.Registered.Kind, Title: strings.TrimSpace(in.Title),
		Description: strings.TrimSpace(in.Description), Sector: in.Sector, Grades: grades, Weeks: weeks,
		Seats: in.Seats, CommuneCode: in.CommuneCode, Department: dep, Address: strings.TrimSpace(in.Address),
		Lat: in.Lat, Lon: in.Lon, Reserved: in.Reserved, DailyHours: in.DailyHours,
		GroupSize: in.GroupSize, FamilyBusiness: in.FamilyBusiness, Partner: in.Partner,
		Collective: in.Collective, MinGroupSize: minGroupSize(in), CoHosts: in.CoHosts,
	}}, nil
}

// MaxCoHosts bounds the employers of one programme besides its host.
const MaxCoHosts = 20

// checkCoHosts: only a collective programme has co-hosts, each a
// registered employer named once, not the host itself.
func checkCoHosts(p Problems, employer *Employer, in PostOfferInput) {
	switch {
	case len(in.CoHosts) == 0:
		return
	case !in.Collective:
		p.Add("co_hosts", "only a collective offer is hosted by several employers")
		return
	case len(in.CoHosts) > MaxCoHosts:
		p.Add("co_hosts", fmt.Sprintf("at most %d employers besides the host", MaxCoHosts))
		return
	}
	seen := map[string]bool{}
	for i, c := range in.CoHosts {
		field := fmt.Sprintf("co_hosts[%d]", i)
		switch {
		case c.Name == "":
			p.Add(field, "no employer is registered with this id")
		case employer != nil && employer.Exists() && c.EmployerID == employer.Registered.EmployerID:
			p.Add(field, "is the employer posting the offer")
		case seen[c.EmployerID]:
			p.Add(field, "is listed twice")
		}
		seen[c.EmployerID] = true
	}
}

// checkGrades checks an offer's grades: known, listed once, and either
// collège or lycée grades.
func checkGrades(p Problems, in []string) []Grade {
	grades := make([]Grade, 0, len(in))
	lycee, college := false, false
	for _, g := range in {
		gr := Grade(g)
		switch {
		case !gr.Valid():
			p.Add("grades", fmt.Sprintf("%q: must be one of 4e, 3e, 2de", g))
			continue
		case contains(grades, gr):
			p.Add("grades", fmt.Sprintf("%q is listed twice", g))
		}
		lycee, college = lycee || gr.Lycee(), college || !gr.Lycee()
		grades = append(grades, gr)
	}
	if len(in) == 0 {
		p.Add("grades", "at least one grade is required")
	} else if lycee && college {
		p.Add("grades", "an offer for 2de cannot also be for 4e or 3e")
	}
	return grades
}

// checkOfferWeeks checks and sorts an offer's weeks, at most 12.
func checkOfferWeeks(p Problems, in []string) []string {
	weeks := checkWeeks(p, "weeks", in)
	if len(weeks) > 12 {
		p.Add("weeks", "at most 12 weeks per offer")
	}
	return weeks
}

// checkWeeksAhead refuses a week already over at now: nobody can be
// hosted in it any more.
func checkWeeksAhead(p Problems, weeks []string, now time.Time) {
	for _, w := range weeks {
		if start, err := ParseWeek(w); err == nil && !now.Before(start.AddDate(0, 0, 7)) {
			p.Add("weeks", fmt.Sprintf("%q is already over", w))
			return
		}
	}
}

// MaxKMFromCommune is how far an offer's point may lie from the centre of
// its commune.
const MaxKMFromCommune = 20

// checkPoint checks an offer's lat/lon: in France, and within
// MaxKMFromCommune of its commune's centre (an unknown commune is named
// on its own). Both fields are named: either may be the wrong one.
func checkPoint(p Problems, places Places, commune string, lat, lon float64) {
	if !inFrance(lat, lon) {
		p.Add("lat", "lat/lon must be a point in metropolitan France or an overseas département")
		p.Add("lon", "lat/lon must be a point in metropolitan France or an overseas département")
		return
	}
	clat, clon, ok := places.CommuneCentre(commune)
	if d := DistanceKM(lat, lon, clat, clon); ok && d > MaxKMFromCommune {
		rule := fmt.Sprintf("lat/lon is %.0f km from the centre of commune %s: at most %d km", d, commune, MaxKMFromCommune)
		p.Add("lat", rule)
		p.Add("lon", rule)
	}
}

// DistanceKM is the great-circle distance between two points (haversine,
// on a sphere of the Earth's mean radius).
func DistanceKM(lat1, lon1, lat2, lon2 float64) float64 {
	return PointAt(lat1, lon1).DistanceKM(PointAt(lat2, lon2))
}

const (
	earthKM = 6371.0088
	rad     = math.Pi / 180
)

// A Point is a place distances are measured from or to, with its
// latitude's cosine worked out once: the desk measures from one place to
// thousands of others.
type Point struct {
	Lat, Lon float64
	cosLat   float64
}

// PointAt is the point at lat, lon (degrees).
func PointAt(lat, lon float64) Point { return Point{Lat: lat, Lon: lon, cosLat: math.Cos(lat * rad)} }

// DistanceKM is the distance from p to q (see the function DistanceKM).
func (p Point) DistanceKM(q Point) float64 { return p.To(q).KM() }

// To is the distance from p to q.
func (p Point) To(q Point) Distance {
	// squares are products: math.Pow gives the same for any two places
	// but cost a third of the whole
	sLat, sLon := math.Sin((q.Lat-p.Lat)*rad/2), math.Sin((q.Lon-p.Lon)*rad/2)
	return Distance{h: sLat*sLat + p.cosLat*q.cosLat*(sLon*sLon)}
}

// A Distance between two points. Its length in kilometres takes an arc
// sine, the costliest part of it, which comparing it with a radius seldom
// needs: the desk compares thousands of them at every offer posted.
type Distance struct{ h float64 } // the haversine of the angle

// KM is the distance in kilometres.
func (d Distance) KM() float64 { return 2 * earthKM * math.Asin(math.Sqrt(min(1, d.h))) }

// AtMost reports whether d.KM() <= km, exactly as that comparison would.
func (d Distance) AtMost(km float64) bool { return d.Within(ReachOf(km)) }

// A Reach is a distance not to go past, with the bounds of its haversine
// worked out once: the desk compares each school's distance from an
// offer with the reach of every cohort of its pupils, tens of thousands
// of comparisons with a few reaches at every offer posted in a city.
type Reach struct{ km, lo, hi float64 }

// ReachOf is the reach of km kilometres.
func ReachOf(km float64) Reach {
	lo, hi, ok := haversineBounds(km)
	if !ok { // no bounds: every comparison takes the arc sine
		lo, hi = -1, math.Inf(1)
	}
	return Reach{km: km, lo: lo, hi: hi}
}

// KM is the reach in kilometres.
func (r Reach) KM() float64 { return r.km }

// Within reports whether d.KM() <= r.KM(), exactly as that comparison
// would.
func (d Distance) Within(r Reach) bool {
	return d.h <= r.lo || d.h <= r.hi && d.measuredWithin(r.km)
}

// A Way from one point to another knows bounds of its length, worked out
// without trigonometry, which tell whether it is within a reach unless
// the reach falls between them (they are a millionth apart at 20 km, a
// ten-thousandth at 200): the desk compares every school near an offer
// with its cohorts' reaches, and the two sines of each distance (To) were
// about half of following an offer posted in a city.
type Way struct {
	from, to Point
	lo, hi   float64 // bounds of the haversine of its angle
}

// Way is the way from p to q.
func (p Point) Way(q Point) Way {
	// sin x lies between x - x³/6 and x for x in [0, 1]
	a, b := math.Abs(q.Lat-p.Lat)*rad/2, math.Abs(q.Lon-p.Lon)*rad/2
	if !(a <= 1 && b <= 1) { // no bounds: every comparison measures it
		return Way{from: p, to: q, lo: math.Inf(-1), hi: math.Inf(1)}
	}
	c := p.cosLat * q.cosLat
	la, lb := a-a*a*a*(1.0/6), b-b*b*b*(1.0/6)
	return Way{from: p, to: q, lo: la*la + c*(lb*lb), hi: a*a + c*(b*b)}
}

// Within reports whether the way's length is within r, exactly as
// comparing its Distance would. The bounds' own rounding is a few parts
// in 10¹⁶, far inside the reach's margin of a billionth.
func (w Way) Within(r Reach) bool {
	return w.hi <= r.lo || w.lo <= r.hi && w.measuredWithin(r)
}

// AtMost reports whether the way's length is at most km (see Within).
func (w Way) AtMost(km float64) bool { return w.Within(ReachOf(km)) }

// measuredWithin compares the way's Distance with r, for a way whose
// bounds cannot tell; out of line, as Distance.measuredWithin.
//
//go:noinline
func (w Way) measuredWithin(r Reach) bool { return w.Distance().Within(r) }

// Distance is the way's length.
func (w Way) Distance() Distance { return w.from.To(w.to) }

// KM is the way's length in kilometres.
func (w Way) KM() float64 { return w.Distance().KM() }

// measuredWithin compares d in kilometres with km, for the distances too
// close to km for its bounds to tell. It is kept out of line so that
// Within, which seldom needs it, is inlined where it is called.
//
//go:noinline
func (d Distance) measuredWithin(km float64) bool { return d.KM() <= km }

// haversineBounds bound the haversine of a distance of km: a distance
// whose haversine is at most lo is at most km, one whose haversine is
// above hi is longer. Their margins (a billionth) are far above what
// rounding moves, so only distances within half a millimetre per thousand
// kilometres of km need their arc sine. ok is false for a negative km or
// one around the globe.
func haversineBounds(km float64) (lo, hi float64, ok bool) {
	if i := int(km); float64(i) == km && i >= 0 && i < len(boundsByKM) {
		b := boundsByKM[i]
		return b[0], b[1], true
	}
	a := km / (2 * earthKM)
	if !(a >= 0 && a < 1) {
		return 0, 0, false
	}
	s := math.Sin(a)
	return s * s * (1 - 1e-9), s * s * (1 + 1e-9), true
}

// boundsByKM are haversineBounds of the whole kilometres a pupil's reach
// is given in.
var boundsByKM = func() (b [1001][2]float64) {
	for km := range b {
		s := math.Sin(float64(km) / (2 * earthKM))
		b[km] = [2]float64{s * s * (1 - 1e-9), s * s * (1 + 1e-9)}
	}
	return b
}()

func checkSeats(p Problems, seats int) {
	if seats < 1 || seats > 500 {
		p.Add("seats", "must be between 1 and 500")
	}
}

// checkTerms checks the terms shared by posting and amending.
func checkTerms(p Problems, in PostOfferInput) {
	if in.DailyHours != nil {
		checkDailyHours(p, *in.DailyHours)
	}
	if in.GroupSize < 0 || (in.Seats >= 1 && in.GroupSize > in.Seats) {
		p.Add("group_size", "must be between 1 and the number of seats")
	}
	switch {
	case in.Collective && (in.MinGroupSize < 0 || (in.Seats >= 1 && in.MinGroupSize > in.Seats)):
		p.Add("min_group_size", "must be between 1 and the number of seats")
	case !in.Collective && in.MinGroupSize != 0:
		p.Add("min_group_size", "only a collective offer has a minimum group size")
	}
	if len(in.Reserved.Schools) > 50 {
		p.Add("reserved.schools", "at most 50 schools")
	}
	for _, u := range in.Reserved.Schools {
		if !ValidUAI(u) {
			p.Add("reserved.schools", fmt.Sprintf("%q is not a UAI (7 digits and a letter)", u))
		}
	}
}

// AmendOfferInput is the amend-offer command: nil fields keep their value.
type AmendOfferInput struct {
	Title, Description *string
	Weeks              []string
	Seats              *int
	Reserved           *Reservation
	DailyHours         *DailyHours
	GroupSize          *int
	FamilyBusiness     *bool
	MinGroupSize       *int
}

// Amend changes an offer's terms. It never drops a pupil whose seat is held:
// the weeks must keep every held week, and seats cannot fall below the
// seats held in any week.
func (o *Offer) Amend(in AmendOfferInput, now time.Time) ([]Event, error) {
	if !o.exists {
		return nil, NotFoundf("offer")
	}
	if o.Deleted {
		return nil, Refuse("offer_deleted", "the offer was deleted")
	}
	p := Problems{}
	next := in.onto(p, o.Posted)
	var added []string // a week kept may be over; one added may not
	for _, w := range next.Weeks {
		if !o.hasWeek(w) {
			added = append(added, w)
		}
	}
	checkWeeksAhead(p, added, now)
	checkTerms(p, next)
	if err := p.Err(); err != nil {
		return nil, err
	}
	if err := o.keepsHeldSeats(next); err != nil {
		return nil, err
	}
	ev := &OfferAmended{OfferID: o.Posted.OfferID, Title: next.Title, Description: next.Description, Weeks: next.Weeks,
		Seats: next.Seats, Reserved: next.Reserved, DailyHours: next.DailyHours, GroupSize: next.GroupSize,
		FamilyBusiness: next.FamilyBusiness, MinGroupSize: minGroupSize(next)}
	return []Event{ev}, nil
}

// onto returns the terms of cur changed by the amendment, checking each
// changed one.
func (in AmendOfferInput) onto(p Problems, cur OfferPosted) PostOfferInput {
	next := PostOfferInput{Title: cur.Title, Description: cur.Description, Weeks: cur.Weeks, Seats: cur.Seats,
		Reserved: cur.Reserved, DailyHours: cur.DailyHours, GroupSize: cur.GroupSize, FamilyBusiness: cur.FamilyBusiness,
		Collective: cur.Collective, MinGroupSize: cur.MinGroupSize}
	if in.Title != nil {
		required(p, "title", *in.Title, 200)
		next.Title = strings.TrimSpace(*in.Title)
	}
	if in.Description != nil {
		required(p, "description", *in.Description, 5000)
		next.Description = strings.TrimSpace(*in.Description)
	}
	if in.Weeks != nil {
		next.Weeks = checkOfferWeeks(p, in.Weeks)
	}
	if in.Seats != nil {
		next.Seats = *in.Seats
		checkSeats(p, next.Seats)
	}
	if in.Reserved != nil {
		next.Reserved = *in.Reserved
	}
	if in.DailyHours != nil {
		next.DailyHours = in.DailyHours
	}
	if in.GroupSize != nil {
		next.GroupSize = *in.GroupSize
	}
	if in.FamilyBusiness != nil {
		next.FamilyBusiness = *in.FamilyBusiness
	}
	if in.MinGroupSize != nil {
		next.MinGroupSize = *in.MinGroupSize
	}
	return next
}

// keepsHeldSeats refuses terms that would drop a pupil whose seat is held.
func (o *Offer) keepsHeldSeats(next PostOfferInput) error {
	for w, n := range o.held {
		if n == 0 {
			continue
		}
		if !contains(next.Weeks, w) {
			return Refuse("would_drop_accepted_pupil", "week %s has %d accepted pupil(s): it cannot be removed from the offer", w, n)
		}
		if n > next.Seats {
			return Refuse("would_drop_accepted_pupil", "week %s has %d accepted pupils: seats cannot go below that", w, n)
		}
	}
	return nil
}

// Reopen opens a withdrawn offer to applications again.
func (o *Offer) Reopen() ([]Event, error) {
	if !o.exists {
		return nil, NotFoundf("offer")
	}
	if o.Deleted {
		return nil, Refuse("offer_deleted", "the offer was deleted")
	}
	if !o.Withdrawn {
		return nil, nil
	}
	return []Event{&OfferReopened{OfferID: o.Posted.OfferID}}, nil
}

func contains[T comparable](xs []T, x T) bool { return slices.Contains(xs, x) }

// inFrance accepts metropolitan France, Corsica and the overseas
// départements (Guadeloupe, Martinique, Guyane, La Réunion, Mayotte).
func inFrance(lat, lon float64) bool {
	if math.IsNaN(lat) || math.IsNaN(lon) {
		return false
	}
	boxes := [][4]float64{
		{41.3, 51.2, -5.3, 9.7},    // metropolitan France and Corsica
		{15.8, 16.6, -61.9, -60.9}, // Guadeloupe
		{14.3, 14.9, -61.3, -60.8}, // Martinique
		{2.1, 5.8, -54.7, -51.6},   // Guyane
		{-21.4, -20.8, 55.2, 55.9}, // La Réunion
		{-13.1, -12.6, 44.9, 45.4}, // Mayotte
	}
	for _, b := range boxes {
		if lat >= b[0] && lat <= b[1] && lon >= b[2] && lon <= b[3] {
			return true
		}
	}
	return false
}

// checkDailyHours applies the limits for pupils: at most 7 h a day (so
// 35 h over five days), nothing before 6:00 or after 20:00.
func checkDailyHours(p Problems, h DailyHours) {
	start, err1 := time.Parse("15:04", h.Start)
	end, err2 := time.Parse("15:04", h.End)
	switch {
	case err1 != nil:
		p.Add("daily_hours.start", "must be a time HH:MM")
	case err2 != nil:
		p.Add("daily_hours.end", "must be a time HH:MM")
	case start.Hour() < 6:
		p.Add("daily_hours.start", "pupils cannot start before 06:00")
	case end.After(time.Date(0, 1, 1, 20, 0, 0, 0, time.UTC)):
		p.Add("daily_hours.end", "pupils cannot work after 20:00")
	case !end.After(start):
		p.Add("daily_hours.end", "must be after start")
	case h.LunchBreakMinutes < 0 || h.LunchBreakMinutes > 180:
		p.Add("daily_hours.lunch_break_minutes", "must be between 0 and 180")
	case end.Sub(start)-time.Duration(h.LunchBreakMinutes)*time.Minute > 7*time.Hour:
		p.Add("daily_hours", "pupils work at most 7 hours a day (35 hours a week)")
	}
}

// Withdraw closes the offer to new applications. Held seats stay held.
func (o *Offer) Withdraw(reason string) ([]Event, error) {
	if !o.exists {
		return nil, NotFoundf("offer")
	}
	if len(reason) > 1000 {
		return nil, Problems{"reason": "must be at most 1000 bytes"}.Err()
	}
	if o.Withdrawn {
		return nil, nil // already withdrawn: nothing to do
	}
	return []Event{&OfferWithdrawn{OfferID: o.Posted.OfferID, Reason: strings.TrimSpace(reason)}}, nil
}

// HoldSeat holds one seat in each of the application's weeks.
func (o *Offer) HoldSeat(app *Application) ([]Event, error) {
	if !o.exists {
		return nil, NotFoundf("offer")
	}
	id := app.Submitted.ApplicationID
	if o.Holds(id) {
		return nil, nil // already held: a retried acceptance
	}
	if o.Withdrawn {
		return nil, Refuse("offer_withdrawn", "the offer is withdrawn")
	}
	for _, w := range app.Submitted.Weeks {
		if o.Free(w) < 1 {
			return nil, Refuse("no_seat_left", "no seat left in week %s", w)
		}
	}
	return []Event{&SeatHeld{OfferID: o.Posted.OfferID, ApplicationID: id, PupilID: app.Submitted.PupilID, Weeks: app.Submitted.Weeks}}, nil
}

// ReleaseSeat frees the seats an application held, if any.
func (o *Offer) ReleaseSeat(applicationID string) []Event {
	weeks, ok := o.holders[applicationID]
	if !ok {
		return nil
	}
	return []Event{&SeatReleased{OfferID: o.Posted.OfferID, ApplicationID: applicationID, Weeks: weeks}}
}

// eligible checks the offer's reservation against the pupil's school: REP
// offers take pupils of REP/REP+ collèges, QPV offers pupils of lycées near
// a QPV, and named schools their own pupils.
func (o *Offer) eligible(school *School) error {
	r := o.Posted.Reserved
	if !r.Any() || school != nil && school.Exists() && r.Admits(school.Registered) {
		return nil
	}
	return Refuse("reserved_offer", "this offer is reserved (%s) and the pupil's school is not eligible", r.describe())
}

// Admits reports whether pupils of school s may take an offer reserved
// this way (any reservation it meets; an offer reserved to nobody admits
// everyone).
func (r Reservation) Admits(s SchoolRegistered) bool {
	if !r.Any() {
		return true
	}
	switch {
	case r.REP && s.Kind == "college" && (s.EducationPriority == "rep" || s.EducationPriority == "rep_plus"):
		return true
	case r.QPV && s.Kind == "lycee" && s.QPV:
		return true
	}
	return contains(r.Schools, s.UAI)
}

func (r Reservation) describe() string {
	var parts []string
	if r.REP {
		parts = append(parts, "REP/REP+ collèges")
	}
	if r.QPV {
		parts = append(parts, "lycées near a QPV")
	}
	if len(r.Schools) > 0 {
		parts = append(parts, "named schools")
	}
	return strings.Join(parts, ", ")
}

// ageAllowed: a private-sector host takes no pupil under 14 at the start of
// the internship, family businesses aside.
func (o *Offer) ageAllowed(pupil *Pupil, start time.Time) error {
	bd, err := ParseDate(pupil.Registered.BirthDate)
	if err != nil {
		return nil // birth dates are checked at registration
	}
	if !AgeAllows(o.Posted.EmployerKind, o.Posted.FamilyBusiness, bd, start) {
		return Refuse("under_14_private_host", "the pupil will be under 14 when the internship starts: a company may host them only as a family business")
	}
	return nil
}

// AgeAllows reports whether a host of this kind may take a pupil born on
// birth for an internship starting on start: a company takes no pupil
// under 14, unless it is a family business.
func AgeAllows(employerKind string, familyBusiness bool, birth, start time.Time) bool {
	return !AgeRuleApplies(employerKind, familyBusiness) || OldEnough(birth, start)
}

// AgeRuleApplies reports whether a host of this kind takes pupils of 14 or
// more only: a company, unless it is a family business.
func AgeRuleApplies(employerKind string, familyBusiness bool) bool {
	return employerKind == "company" && !familyBusiness
}

// OldEnough reports whether a pupil born on birth is 14 or more on start.
func OldEnough(birth, start time.Time) bool { return !start.Before(birth.AddDate(14, 0, 0)) }
