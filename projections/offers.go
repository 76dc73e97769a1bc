package projections

import (
	"slices"
	"strings"
	"time"

	"passerelle/domain"
)

// OffersName is the offer search projection.
const OffersName = "offers"

// OfferDoc is an offer as the search API serves it. Seats count seat-weeks:
// an offer of 2 seats over 3 weeks has seats_total 6.
type OfferDoc struct {
	ID             string              `json:"id"`
	Title          string              `json:"title"`
	Description    string              `json:"description"`
	EmployerID     string              `json:"employer_id"`
	EmployerName   string              `json:"employer_name"`
	Sector         string              `json:"sector"`
	Grades         []domain.Grade      `json:"grades"`
	Weeks          []string            `json:"weeks"`
	SeatsPerWeek   int                 `json:"seats_per_week"`
	SeatsTotal     int                 `json:"seats_total"`
	SeatsAvailable int                 `json:"seats_available"`
	SeatsByWeek    map[string]WeekSeat `json:"seats_by_week"`
	CommuneCode    string              `json:"commune_code"`
	Department     string              `json:"department"`
	Address        string              `json:"address"`
	Lat            float64             `json:"lat"`
	Lon            float64             `json:"lon"`
	Status         string              `json:"status"` // open, full, withdrawn
	Reserved       domain.Reservation  `json:"reserved"`
	DailyHours     *domain.DailyHours  `json:"daily_hours,omitempty"`
	GroupSize      int                 `json:"group_size,omitempty"`
	// Collective: the offer hosts groups booked by their school, at least
	// MinGroupSize pupils a booking.
	Collective   bool `json:"collective"`
	MinGroupSize int  `json:"min_group_size,omitempty"`
	// CoHosts: the other employers of a collective programme.
	CoHosts    []domain.CoHost `json:"co_hosts,omitempty"`
	PostedAt   time.Time       `json:"posted_at"`
	DistanceKM *float64        `json:"distance_km,omitempty"`
	// Partner: the operator that pushed the offer, its remote_id and
	// permalink (partner API v2); Deleted, that the operator deleted it.
	Partner *domain.PartnerOffer `json:"partner,omitempty"`
	Deleted bool                 `json:"deleted,omitempty"`
}

// WeekSeat is the seat count of one week of an offer.
type WeekSeat struct {
	Total     int `json:"total"`
	Available int `json:"available"`
}

// OfferDocKey is an offer's search document (keys here are relative to the generation prefix).
func OfferDocKey(id string) string { return "offer:" + id }

// OfferIndexOpen is the set of the offers taking applications.
func OfferIndexOpen() string { return "idx:open" }

// OfferIndex is the set of the open offers with value v of kind (sector, department, commune, grade, week, word, reserved, available).
func OfferIndex(kind, v string) string { return "idx:" + kind + ":" + v }

// OfferIndexAvailable is the set of the open offers with a free seat in some week.
func OfferIndexAvailable() string { return "idx:available" }

// OperatorOffers is the sorted set of the offers an operator pushed and
// did not delete, withdrawn or not, by the time they were posted.
func OperatorOffers(operatorID string) string { return "operator:" + operatorID }

// OfferGeo is the geo set of the open offers' locations.
func OfferGeo() string { return "geo" }

// OfferGeoIndex is the geo set of the open offers with value v of a kind
// that has one (GeoIndexed): a nearby search for one of them walks
// outwards through its offers only, rather than through all and checking
// each.
func OfferGeoIndex(kind, v string) string { return "geo:" + kind + ":" + v }

// GeoIndexed reports whether the open offers of each value of kind have
// a geo set besides their index set: the places, which few offers share,
// and the grade, which nearly every search around a point gives (a pupil
// searches for their own grade). Each costs a point per offer written.
func GeoIndexed(kind string) bool {
	switch kind {
	case "grade", "sector", "department", "commune":
		return true
	}
	return false
}

// OfferIDs is the sorted set of the open offers, all scored 0 so that they
// are in id order: a search without a place pages through it.
func OfferIDs() string { return "ids" }

// Offers projects the search read model.
type Offers struct{}

// Name names the projection.
func (Offers) Name() string { return OffersName }

// Layout versions the model's keys and documents (4: the grades' geo
// sets; 5: no sets of common words).
func (Offers) Layout() int { return 5 }

// Touches names the offer document of an offer event.
func (Offers) Touches(ev Event, _ Docs) []Ref {
	if cat, id := subject(ev); cat == "offer" {
		if _, ok := ev.Data.(*domain.OfferPosted); ok {
			return []Ref{created[OfferDoc](OfferDocKey(id))}
		}
		return []Ref{ref[OfferDoc](OfferDocKey(id))}
	}
	return nil
}

// Folds the events of offers.
func (Offers) Folds(category, _ string) bool { return category == "offer" }

// Apply folds an offer event into its search document.
func (Offers) Apply(ev Event, docs Docs) {
	_, id := subject(ev)
	if e, ok := ev.Data.(*domain.OfferPosted); ok {
		d := &OfferDoc{
			ID: e.OfferID, Title: e.Title, Description: e.Description, EmployerID: e.EmployerID,
			EmployerName: e.EmployerName, Sector: e.Sector, Grades: e.Grades, Weeks: e.Weeks,
			SeatsPerWeek: e.Seats, SeatsByWeek: map[string]WeekSeat{}, CommuneCode: e.CommuneCode,
			Department: e.Department, Address: e.Address, Lat: e.Lat, Lon: e.Lon,
			Reserved: e.Reserved, DailyHours: e.DailyHours, PostedAt: ev.OccurredAt, Partner: e.Partner,
			GroupSize: e.GroupSize, Collective: e.Collective, MinGroupSize: e.MinGroupSize, CoHosts: e.CoHosts,
		}
		for _, w := range e.Weeks {
			d.SeatsByWeek[w] = WeekSeat{Total: e.Seats, Available: e.Seats}
		}
		d.recount()
		docs[OfferDocKey(id)] = d
		return
	}
	d := doc[OfferDoc](docs, OfferDocKey(id))
	if d == nil {
		return // an event for an offer this model never saw
	}
	switch e := ev.Data.(type) {
	case *domain.OfferWithdrawn:
		d.Status = "withdrawn"
	case *domain.OfferDeleted:
		d.Deleted = true
	case *domain.PartnerOfferChanged:
		p := e.Partner
		d.Partner = &p
	case *domain.OfferReopened:
		if d.Status == "withdrawn" {
			d.Status = ""
			d.recount()
		}
	case *domain.OfferAmended:
		held := map[string]int{}
		for w, ws := range d.SeatsByWeek {
			held[w] = ws.Total - ws.Available
		}
		d.Title, d.Description, d.Weeks, d.SeatsPerWeek = e.Title, e.Description, e.Weeks, e.Seats
		d.Reserved, d.DailyHours, d.GroupSize, d.MinGroupSize = e.Reserved, e.DailyHours, e.GroupSize, e.MinGroupSize
		d.SeatsByWeek = map[string]WeekSeat{}
		for _, w := range e.Weeks {
			d.SeatsByWeek[w] = WeekSeat{Total: e.Seats, Available: e.Seats - held[w]}
		}
		d.recount()
	case *domain.SeatHeld:
		d.moveSeats(e.Weeks, -1)
	case *domain.SeatsBooked:
		d.moveSeats(e.Weeks, -len(e.Seats))
	case *domain.SeatReleased:
		d.moveSeats(e.Weeks, +1)
	}
}

func (d *OfferDoc) moveSeats(weeks []string, delta int) {
	for _, w := range weeks {
		s := d.SeatsByWeek[w]
		s.Available += delta
		d.SeatsByWeek[w] = s
	}
	d.recount()
}

// recount sums the seats of the weeks. An offer that is not withdrawn is
// open, or full when every seat of every week is held.
func (d *OfferDoc) recount() {
	d.SeatsTotal, d.SeatsAvailable = 0, 0
	for _, s := range d.SeatsByWeek {
		d.SeatsTotal += s.Total
		d.SeatsAvailable += s.Available
	}
	if d.Status != "withdrawn" {
		d.Status = "open"
		if d.SeatsAvailable <= 0 {
			d.Status = "full"
		}
	}
}

// Entries puts an offer that is not withdrawn in the search indexes: open,
// by sector, place, grade, week, word and reservation, available (per week
// and at all) while it has a free seat, in id order, and on the maps (all
// offers', its sector's, département's, commune's and grades').
func (d *OfferDoc) Entries(dst []Entry) []Entry {
	dst = d.operatorEntries(dst)
	if d.Status == "withdrawn" {
		return dst
	}
	in := func(set string) { dst = append(dst, member(set, d.ID)) }
	in(OfferIndexOpen())
	d.placesAndGrades(func(kind, v string) { in(OfferIndex(kind, v)) })
	for i, w := range d.Weeks {
		if slices.Contains(d.Weeks[:i], w) {
			continue
		}
		in(OfferIndex("week", w))
		if d.SeatsByWeek[w].Available > 0 {
			in(OfferIndex("available", w))
		}
	}
	if d.SeatsAvailable > 0 {
		in(OfferIndexAvailable())
	}
	for _, w := range Words(d.Title + " " + d.Description) {
		in(OfferIndex("word", w))
	}
	r := d.Reserved
	if !r.Any() {
		in(OfferIndex("reserved", "none"))
	}
	if r.REP {
		in(OfferIndex("reserved", "rep"))
	}
	if r.QPV {
		in(OfferIndex("reserved", "qpv"))
	}
	for i, u := range r.Schools {
		if !slices.Contains(r.Schools[:i], u) {
			in(OfferIndex("reserved", "school:"+u))
		}
	}
	dst = append(dst, scored(OfferIDs(), d.ID, 0), point(OfferGeo(), d.ID, d.Lon, d.Lat))
	d.placesAndGrades(func(kind, v string) {
		if GeoIndexed(kind) {
			dst = append(dst, point(OfferGeoIndex(kind, v), d.ID, d.Lon, d.Lat))
		}
	})
	return dst
}

// placesAndGrades calls index with each of the offer's places and grades.
func (d *OfferDoc) placesAndGrades(index func(kind, v string)) {
	index("sector", d.Sector)
	index("department", d.Department)
	index("commune", d.CommuneCode)
	for i, g := range d.Grades {
		if !slices.Contains(d.Grades[:i], g) {
			index("grade", string(g))
		}
	}
}

// operatorEntries put an offer an operator pushed in its list, withdrawn
// or not, until the operator deletes it.
func (d *OfferDoc) operatorEntries(dst []Entry) []Entry {
	if d.Partner == nil || d.Deleted {
		return dst
	}
	return append(dst, scored(OperatorOffers(d.Partner.OperatorID), d.ID, float64(d.PostedAt.UnixMilli())))
}

// Words splits text into the lower-case, accent-folded words that full-text
// search matches (école, Ecole and ECOLE are the same word), leaving out
// the common words that say nothing of an offer (see commonWords).
func Words(text string) []string {
	seen := map[string]bool{}
	var out []string
	var b strings.Builder
	flush := func() {
		if w := b.String(); len([]rune(w)) >= 2 && !seen[w] && !commonWords[w] && len(out) < 200 {
			seen[w] = true
			out = append(out, w)
		}
		b.Reset()
	}
	for _, r := range strings.ToLower(text) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			if f, ok := folds[r]; ok {
				b.WriteString(f)
			} else {
				flush()
			}
		}
	}
	flush()
	return out
}

// commonWords are French articles, prepositions, conjunctions and
// pronouns, accents folded. Nearly every offer holds several: indexed,
// each was a set of nearly every offer (in a national seed's read model,
// 7.5 of the 28.9 sets an open offer was a member of), and in a query
// ("stage de cuisine") each asked for nearly every offer. Words that also
// name a thing are kept: son (sound), est (east), pas (a dance step),
// car, plus.
var commonWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`au aux avec ce ces cet cette chez dans de des du elle elles en et eux
		il ils je jusqu la le les leur leurs lui ma mais me mes moi mon ne ni nos notre nous on ou par
		pour qu que qui sa sans se ses sur ta te tes toi ton tous tout toute toutes tu un une vos votre vous`) {
		m[w] = true
	}
	return m
}()

var folds = map[rune]string{
	'à': "a", 'â': "a", 'ä': "a", 'á': "a", 'ã': "a", 'å': "a", 'ç': "c", 'é': "e", 'è': "e", 'ê': "e", 'ë': "e",
	'î': "i", 'ï': "i", 'í': "i", 'ì': "i", 'ô': "o", 'ö': "o", 'ó': "o", 'ò': "o", 'õ': "o", 'ù': "u", 'û': "u",
	'ü': "u", 'ú': "u", 'ÿ': "y", 'ñ': "n", 'œ': "oe", 'æ': "ae",
}
