package domain_test

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"passerelle/domain"
)

func TestPostOffer(t *testing.T) {
	emp := newEmployer(t)
	in := collegeOfferInput()
	in.Title, in.Description, in.Address = " Découverte du fournil ", "\nUne semaine aux côtés des boulangers. ", " 12 rue du Général Leclerc "
	in.Reserved = domain.Reservation{REP: true}
	ev := only[*domain.OfferPosted](t, must(t)(domain.PostOffer("off-1", emp, in, places, now)))
	want := domain.OfferPosted{
		OfferID: "off-1", EmployerID: "emp-1", EmployerName: "Boulangerie Martin", EmployerKind: "company",
		Title: "Découverte du fournil", Description: "Une semaine aux côtés des boulangers.", Sector: "s12",
		Grades: []domain.Grade{domain.Grade4e, domain.Grade3e}, Weeks: []string{week25, week26}, // sorted
		Seats: 2, CommuneCode: "94028", Department: "94", Address: "12 rue du Général Leclerc",
		Lat: 48.78454, Lon: 2.45233, Reserved: domain.Reservation{REP: true},
		DailyHours: &domain.DailyHours{Start: "09:00", End: "16:00", LunchBreakMinutes: 60},
	}
	if !reflect.DeepEqual(*ev, want) {
		t.Fatalf("event = %+v\nwant    %+v", *ev, want)
	}

	var o domain.Offer
	if o.Exists() || o.Open() || o.Free(week25) != 0 {
		t.Fatal("a new offer exists, is open or has seats")
	}
	o.Apply(ev)
	if !o.Exists() || !o.Open() || !reflect.DeepEqual(o.Posted, want) {
		t.Fatalf("after Apply: exists=%v open=%v %+v", o.Exists(), o.Open(), o.Posted)
	}
	for _, tt := range []struct {
		week string
		free int
	}{{week25, 2}, {week26, 2}, {week27, 0}, {"nonsense", 0}} {
		if got := o.Free(tt.week); got != tt.free {
			t.Errorf("Free(%s) = %d, want %d", tt.week, got, tt.free)
		}
	}
}

func TestPostOfferAccepts(t *testing.T) {
	emp := newEmployer(t)
	twelve := make([]string, 12)
	for i := range twelve {
		twelve[i] = domain.WeekOf(day(2026, 9, 7).AddDate(0, 0, 7*i))
	}
	tests := []struct {
		name string
		edit func(*domain.PostOfferInput)
	}{
		{"2de only", func(in *domain.PostOfferInput) { in.Grades = []string{"2de"} }},
		{"3e only", func(in *domain.PostOfferInput) { in.Grades = []string{"3e"} }},
		{"sector s1", func(in *domain.PostOfferInput) { in.Sector = "s1" }},
		{"sector s51", func(in *domain.PostOfferInput) { in.Sector = "s51" }},
		{"one seat", func(in *domain.PostOfferInput) { in.Seats = 1 }},
		{"500 seats", func(in *domain.PostOfferInput) { in.Seats = 500 }},
		{"twelve weeks", func(in *domain.PostOfferInput) { in.Weeks = twelve }},
		{"week 53", func(in *domain.PostOfferInput) { in.Weeks = []string{"2026-W53", "2027-W01"} }},
		{"Corsica", func(in *domain.PostOfferInput) { in.CommuneCode, in.Lat, in.Lon = "2A004", 41.92274, 8.70583 }},
		{"Brest", func(in *domain.PostOfferInput) { in.CommuneCode, in.Lat, in.Lon = "29019", 48.3904, -4.4861 }},
		{"Strasbourg", func(in *domain.PostOfferInput) { in.CommuneCode, in.Lat, in.Lon = "67482", 48.5734, 7.7521 }},
		{"19 km from the commune's centre", func(in *domain.PostOfferInput) { in.Lat = 48.78454 + 19/111.2 }},
		{"the week under way", func(in *domain.PostOfferInput) { in.Weeks = []string{domain.WeekOf(now), week25} }},
		{"Guadeloupe", func(in *domain.PostOfferInput) { in.CommuneCode, in.Lat, in.Lon = "97101", 16.26775, -61.49667 }},
		{"Martinique", func(in *domain.PostOfferInput) { in.CommuneCode, in.Lat, in.Lon = "97209", 14.64925, -61.06863 }},
		{"Guyane", func(in *domain.PostOfferInput) { in.CommuneCode, in.Lat, in.Lon = "97302", 4.94639, -52.33191 }},
		{"La Réunion", func(in *domain.PostOfferInput) { in.CommuneCode, in.Lat, in.Lon = "97411", -20.94342, 55.4444 }},
		{"Mayotte", func(in *domain.PostOfferInput) { in.CommuneCode, in.Lat, in.Lon = "97611", -12.78751, 45.19642 }},
		{"no daily hours", func(in *domain.PostOfferInput) { in.DailyHours = nil }},
		{"7 hours without lunch", func(in *domain.PostOfferInput) {
			in.DailyHours = &domain.DailyHours{Start: "06:00", End: "13:00"}
		}},
		{"7 hours after a lunch break", func(in *domain.PostOfferInput) {
			in.DailyHours = &domain.DailyHours{Start: "08:30", End: "17:30", LunchBreakMinutes: 120}
		}},
		{"ends at 20:00", func(in *domain.PostOfferInput) {
			in.DailyHours = &domain.DailyHours{Start: "13:00", End: "20:00"}
		}},
		{"single-digit hour", func(in *domain.PostOfferInput) {
			in.DailyHours = &domain.DailyHours{Start: "9:00", End: "16:00", LunchBreakMinutes: 60}
		}},
		{"lunch break of 180 minutes", func(in *domain.PostOfferInput) {
			in.DailyHours = &domain.DailyHours{Start: "08:00", End: "18:00", LunchBreakMinutes: 180}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := collegeOfferInput()
			tt.edit(&in)
			ev := only[*domain.OfferPosted](t, must(t)(domain.PostOffer("off-1", emp, in, places, now)))
			if ev.Seats != in.Seats || ev.Sector != in.Sector || len(ev.Weeks) != len(in.Weeks) || len(ev.Grades) != len(in.Grades) {
				t.Errorf("event = %+v from %+v", *ev, in)
			}
			if !slices.IsSorted(ev.Weeks) {
				t.Errorf("weeks %v are not sorted", ev.Weeks)
			}
		})
	}
}

func TestPostOfferValidation(t *testing.T) {
	emp := newEmployer(t)
	thirteen := make([]string, 13)
	for i := range thirteen {
		thirteen[i] = domain.WeekOf(day(2026, 9, 7).AddDate(0, 0, 7*i))
	}
	hours := func(start, end string, lunch int) func(*domain.PostOfferInput) {
		return func(in *domain.PostOfferInput) {
			in.DailyHours = &domain.DailyHours{Start: start, End: end, LunchBreakMinutes: lunch}
		}
	}
	tests := []struct {
		name     string
		employer *domain.Employer
		edit     func(*domain.PostOfferInput)
		fields   []string
	}{
		{"no employer", nil, func(*domain.PostOfferInput) {}, []string{"employer_id"}},
		{"unregistered employer", &domain.Employer{}, func(*domain.PostOfferInput) {}, []string{"employer_id"}},
		{"no title", emp, func(in *domain.PostOfferInput) { in.Title = " " }, []string{"title"}},
		{"long title", emp, func(in *domain.PostOfferInput) { in.Title = strings.Repeat("t", 201) }, []string{"title"}},
		{"no description", emp, func(in *domain.PostOfferInput) { in.Description = "" }, []string{"description"}},
		{"long description", emp, func(in *domain.PostOfferInput) { in.Description = strings.Repeat("d", 5001) }, []string{"description"}},
		{"sector s52", emp, func(in *domain.PostOfferInput) { in.Sector = "s52" }, []string{"sector"}},
		{"sector s0", emp, func(in *domain.PostOfferInput) { in.Sector = "s0" }, []string{"sector"}},
		{"sector name", emp, func(in *domain.PostOfferInput) { in.Sector = "Agriculture" }, []string{"sector"}},
		{"no sector", emp, func(in *domain.PostOfferInput) { in.Sector = "" }, []string{"sector"}},
		{"no grade", emp, func(in *domain.PostOfferInput) { in.Grades = nil }, []string{"grades"}},
		{"unknown grade", emp, func(in *domain.PostOfferInput) { in.Grades = []string{"3e", "5e"} }, []string{"grades"}},
		{"grade twice", emp, func(in *domain.PostOfferInput) { in.Grades = []string{"3e", "3e"} }, []string{"grades"}},
		{"2de with 3e", emp, func(in *domain.PostOfferInput) { in.Grades = []string{"2de", "3e"} }, []string{"grades"}},
		{"4e with 2de", emp, func(in *domain.PostOfferInput) { in.Grades = []string{"4e", "2de"} }, []string{"grades"}},
		{"no week", emp, func(in *domain.PostOfferInput) { in.Weeks = []string{} }, []string{"weeks"}},
		{"bad week", emp, func(in *domain.PostOfferInput) { in.Weeks = []string{week25, "2026-25"} }, []string{"weeks"}},
		{"week 53 of a short year", emp, func(in *domain.PostOfferInput) { in.Weeks = []string{"2025-W53"} }, []string{"weeks"}},
		{"week twice", emp, func(in *domain.PostOfferInput) { in.Weeks = []string{week25, week26, week25} }, []string{"weeks"}},
		{"thirteen weeks", emp, func(in *domain.PostOfferInput) { in.Weeks = thirteen }, []string{"weeks"}},
		{"no seat", emp, func(in *domain.PostOfferInput) { in.Seats = 0 }, []string{"seats"}},
		// A known defect: the group size left at 0 is also reported, see
		// TestPostOfferBadSeatsDoNotBlameGroupSize.
		{"negative seats", emp, func(in *domain.PostOfferInput) { in.Seats = -3 }, []string{"seats"}},
		{"501 seats", emp, func(in *domain.PostOfferInput) { in.Seats = 501 }, []string{"seats"}},
		{"unknown commune", emp, func(in *domain.PostOfferInput) { in.CommuneCode = "00000" }, []string{"commune_code"}},
		{"no address", emp, func(in *domain.PostOfferInput) { in.Address = "\t" }, []string{"address"}},
		{"zero point", emp, func(in *domain.PostOfferInput) { in.Lat, in.Lon = 0, 0 }, []string{"lat", "lon"}},
		{"swapped lat/lon", emp, func(in *domain.PostOfferInput) { in.Lat, in.Lon = 2.45233, 48.78454 }, []string{"lat", "lon"}},
		{"London", emp, func(in *domain.PostOfferInput) { in.Lat, in.Lon = 51.5072, -0.1276 }, []string{"lat", "lon"}},
		{"Madrid", emp, func(in *domain.PostOfferInput) { in.Lat, in.Lon = 40.4168, -3.7038 }, []string{"lat", "lon"}},
		{"New York", emp, func(in *domain.PostOfferInput) { in.Lat, in.Lon = 40.7128, -74.006 }, []string{"lat", "lon"}},
		{"Saint-Pierre-et-Miquelon", emp, func(in *domain.PostOfferInput) { in.Lat, in.Lon = 46.7811, -56.1764 }, []string{"lat", "lon"}},
		{"NaN", emp, func(in *domain.PostOfferInput) { in.Lat = math.NaN() }, []string{"lat", "lon"}},
		{"infinite", emp, func(in *domain.PostOfferInput) { in.Lon = math.Inf(1) }, []string{"lat", "lon"}},
		{"Brest for Créteil", emp, func(in *domain.PostOfferInput) { in.Lat, in.Lon = 48.3904, -4.4861 }, []string{"lat", "lon"}},
		{"21 km from the commune's centre", emp, func(in *domain.PostOfferInput) { in.Lat = 48.78454 + 21/111.2 }, []string{"lat", "lon"}},
		{"a week over", emp, func(in *domain.PostOfferInput) { in.Weeks = []string{domain.WeekOf(now.AddDate(0, 0, -7)), week25} }, []string{"weeks"}},
		{"a week long over", emp, func(in *domain.PostOfferInput) { in.Weeks = []string{"2025-W10"} }, []string{"weeks"}},
		{"starts before 06:00", emp, hours("05:59", "12:00", 0), []string{"daily_hours.start"}},
		{"starts at 5:30", emp, hours("5:30", "12:00", 0), []string{"daily_hours.start"}},
		{"ends after 20:00", emp, hours("14:00", "20:01", 0), []string{"daily_hours.end"}},
		{"ends at 21:00", emp, hours("15:00", "21:00", 60), []string{"daily_hours.end"}},
		{"ends before it starts", emp, hours("14:00", "09:00", 0), []string{"daily_hours.end"}},
		{"ends when it starts", emp, hours("09:00", "09:00", 0), []string{"daily_hours.end"}},
		{"start not a time", emp, hours("9h", "16:00", 0), []string{"daily_hours.start"}},
		{"end not a time", emp, hours("09:00", "24:00", 0), []string{"daily_hours.end"}},
		{"minutes out of range", emp, hours("09:60", "16:00", 0), []string{"daily_hours.start"}},
		{"negative lunch break", emp, hours("09:00", "15:00", -30), []string{"daily_hours.lunch_break_minutes"}},
		{"lunch break of 181 minutes", emp, hours("08:00", "18:00", 181), []string{"daily_hours.lunch_break_minutes"}},
		{"7 hours and a minute", emp, hours("06:00", "13:01", 0), []string{"daily_hours"}},
		{"8 hours after lunch", emp, hours("08:00", "17:00", 60), []string{"daily_hours"}},
		{"7 hours 30 after lunch", emp, hours("08:30", "17:00", 60), []string{"daily_hours"}},
		{"everything", nil, func(in *domain.PostOfferInput) {
			*in = domain.PostOfferInput{DailyHours: &domain.DailyHours{Start: "04:00", End: "12:00"}}
		}, []string{"employer_id", "title", "description", "sector", "grades", "weeks", "seats", "commune_code", "address", "lat", "lon", "daily_hours.start"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := collegeOfferInput()
			tt.edit(&in)
			evs, err := domain.PostOffer("off-1", tt.employer, in, places, now)
			wantInvalid(t, evs, err, tt.fields...)
		})
	}
}

// An offer posted or amended with invalid seats and no group size (0: an
// individual placement) is refused for its seats only: the group size the
// employer never gave is not to blame.
func TestPostOfferBadSeatsDoNotBlameGroupSize(t *testing.T) {
	emp := newEmployer(t)
	for _, seats := range []int{-1, -3} {
		in := collegeOfferInput()
		in.Seats, in.GroupSize = seats, 0
		_, err := domain.PostOffer("off-1", emp, in, places, now)
		var ve *domain.ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("seats %d: error %v, want a validation error", seats, err)
		}
		if msg, ok := ve.Fields["group_size"]; ok {
			t.Errorf("DOMAIN BUG (offer.go checkTerms): PostOffer with seats=%d and no group size also reports group_size %q; "+
				"only seats is wrong (checkTerms compares the group size 0 with the invalid seat count)", seats, msg)
		}
		o := newOffer(t, "off-1", collegeOfferInput())
		_, err = o.Amend(domain.AmendOfferInput{Seats: ptr(seats)}, now)
		if !errors.As(err, &ve) {
			t.Fatalf("amend seats %d: error %v, want a validation error", seats, err)
		}
		if msg, ok := ve.Fields["group_size"]; ok {
			t.Errorf("DOMAIN BUG (offer.go checkTerms): Amend to seats=%d with no group size also reports group_size %q", seats, msg)
		}
	}
}

func TestOfferWithdraw(t *testing.T) {
	var missing domain.Offer
	evs, err := missing.Withdraw("")
	wantIs(t, evs, err, domain.ErrNotFound)

	o := newOffer(t, "off-1", collegeOfferInput())
	evs, err = o.Withdraw(strings.Repeat("r", 1001))
	if len(evs) != 0 {
		t.Fatalf("events %v with a long reason", types(evs))
	}
	wantFields(t, err, "reason")

	ev := only[*domain.OfferWithdrawn](t, must(t)(o.Withdraw("  Fermeture pour travaux ")))
	if *ev != (domain.OfferWithdrawn{OfferID: "off-1", Reason: "Fermeture pour travaux"}) {
		t.Fatalf("event = %+v", *ev)
	}
	if !o.Open() {
		t.Fatal("deciding changed the aggregate")
	}
	o.Apply(ev)
	if o.Open() || !o.Withdrawn || !o.Exists() {
		t.Fatalf("after Apply: open=%v withdrawn=%v exists=%v", o.Open(), o.Withdrawn, o.Exists())
	}
	wantNothing(t)(o.Withdraw("again"))
}

func TestOfferSeats(t *testing.T) {
	offer := newOffer(t, "off-2de", lyceeOfferInput()) // one seat in weeks 25, 26, 27
	school := newSchool(t, lyceeInput())
	pupils := make([]*domain.Pupil, 4)
	for i := range pupils {
		pupils[i] = newPupil(t, "pupil-"+string(rune('a'+i)), school, "2de")
	}
	a := submitted(t, "app-a", offer, pupils[0], week25, week26)
	b := submitted(t, "app-b", offer, pupils[1], week26, week27)
	c := submitted(t, "app-c", offer, pupils[2], week27)
	d := submitted(t, "app-d", offer, pupils[3], week25)

	hold := only[*domain.SeatHeld](t, must(t)(offer.HoldSeat(a)))
	if want := (domain.SeatHeld{OfferID: "off-2de", ApplicationID: "app-a", PupilID: "pupil-a", Weeks: []string{week25, week26}}); !reflect.DeepEqual(*hold, want) {
		t.Fatalf("SeatHeld = %+v, want %+v", *hold, want)
	}
	if offer.Holds("app-a") || offer.Free(week25) != 1 {
		t.Fatal("deciding changed the aggregate")
	}
	offer.Apply(hold)
	if !offer.Holds("app-a") || offer.Holds("app-b") {
		t.Fatalf("Holds: a=%v b=%v", offer.Holds("app-a"), offer.Holds("app-b"))
	}
	wantFree := func(w25, w26, w27 int) {
		t.Helper()
		if got := [3]int{offer.Free(week25), offer.Free(week26), offer.Free(week27)}; got != [3]int{w25, w26, w27} {
			t.Fatalf("free seats = %v, want %v", got, [3]int{w25, w26, w27})
		}
	}
	wantFree(0, 0, 1)

	// A retried acceptance of a holds nothing more, although the offer is full.
	wantNothing(t)(offer.HoldSeat(a))
	// b wants weeks 26 and 27: 27 is free, 26 is not, so nothing is held.
	evs, err := offer.HoldSeat(b)
	wantRule(t, evs, err, "no_seat_left")
	if !strings.Contains(err.Error(), week26) {
		t.Errorf("error %q does not name the full week", err)
	}
	evs, err = offer.HoldSeat(d)
	wantRule(t, evs, err, "no_seat_left")
	// c wants week 27 only, which is free.
	apply(offer, only[*domain.SeatHeld](t, must(t)(offer.HoldSeat(c))))
	wantFree(0, 0, 0)

	// Releasing a frees weeks 25 and 26; d (week 25) may now hold.
	rel := only[*domain.SeatReleased](t, must(t)(offer.ReleaseSeat("app-a"), nil))
	if want := (domain.SeatReleased{OfferID: "off-2de", ApplicationID: "app-a", Weeks: []string{week25, week26}}); !reflect.DeepEqual(*rel, want) {
		t.Fatalf("SeatReleased = %+v, want %+v", *rel, want)
	}
	offer.Apply(rel)
	wantFree(1, 1, 0)
	if offer.Holds("app-a") {
		t.Fatal("a still holds after the release")
	}
	if evs := offer.ReleaseSeat("app-a"); len(evs) != 0 {
		t.Fatalf("second release: %v", types(evs))
	}
	if evs := offer.ReleaseSeat("app-unknown"); len(evs) != 0 {
		t.Fatalf("release of an unknown application: %v", types(evs))
	}
	apply(offer, must(t)(offer.HoldSeat(d))...)
	wantFree(0, 1, 0)

	// A withdrawn offer refuses new holds but keeps the held ones, and a
	// retried hold of a held seat is still no change.
	apply(offer, must(t)(offer.Withdraw("closing"))...)
	apply(offer, must(t)(offer.ReleaseSeat("app-c"), nil)...)
	wantFree(0, 1, 1)
	evs, err = offer.HoldSeat(c)
	wantRule(t, evs, err, "offer_withdrawn")
	wantNothing(t)(offer.HoldSeat(d))
	if !offer.Holds("app-d") {
		t.Fatal("withdrawal dropped a held seat")
	}

	var missing domain.Offer
	evs, err = missing.HoldSeat(a)
	wantIs(t, evs, err, domain.ErrNotFound)
	if evs := missing.ReleaseSeat("app-a"); len(evs) != 0 {
		t.Fatalf("release on a missing offer: %v", types(evs))
	}
}

// Seats are counted per week: an offer with n seats takes n holds in each
// week, and the (n+1)th is refused.
func TestOfferSeatsPerWeek(t *testing.T) {
	for _, seats := range []int{1, 2, 5} {
		in := collegeOfferInput()
		in.Seats = seats
		offer := newOffer(t, "off", in)
		school := newSchool(t, collegeInput())
		for _, week := range []string{week25, week26} {
			// n+1 pupils apply while the week is free, then are accepted
			// one by one.
			apps := make([]*domain.Application, seats+1)
			for i := range apps {
				id := week + "-" + string(rune('a'+i))
				apps[i] = submitted(t, "app-"+id, offer, newPupil(t, "p-"+id, school, "3e"), week)
			}
			for i, app := range apps {
				evs, err := offer.HoldSeat(app)
				if i == seats {
					wantRule(t, evs, err, "no_seat_left")
					continue
				}
				apply(offer, only[*domain.SeatHeld](t, must(t)(evs, err)))
				if got := offer.Free(week); got != seats-i-1 {
					t.Fatalf("seats=%d %s: Free = %d after %d holds", seats, week, got, i+1)
				}
			}
		}
	}
}

// hold holds app's seat on offer and applies it, as an acceptance does.
func hold(t *testing.T, offer *domain.Offer, app *domain.Application) {
	t.Helper()
	apply(offer, only[*domain.SeatHeld](t, must(t)(offer.HoldSeat(app))))
}

func ptr[T any](v T) *T { return &v }

// An amended offer may keep a week that is over, but not add one.
func TestOfferAmendWeeksOver(t *testing.T) {
	offer := newOffer(t, "off-1", collegeOfferInput()) // weeks 25 to 27
	later, _ := domain.ParseWeek(week26)               // week 25 is over
	ev := only[*domain.OfferAmended](t, must(t)(offer.Amend(domain.AmendOfferInput{Weeks: []string{week25, week26, week28}}, later)))
	if !slices.Equal(ev.Weeks, []string{week25, week26, week28}) {
		t.Errorf("weeks %v", ev.Weeks)
	}
	evs, err := offer.Amend(domain.AmendOfferInput{Weeks: []string{"2026-W24", week25, week26}}, later)
	wantInvalid(t, evs, err, "weeks")
}

// TestOfferAmend amends an offer of 3 seats in weeks 25 and 26 where two
// pupils are accepted in week 25 and one in week 26. Amending never drops
// an accepted pupil: a held week cannot be removed and the seats cannot
// go below the seats held in any week.
func TestOfferAmend(t *testing.T) {
	setup := func(t *testing.T) *domain.Offer {
		t.Helper()
		in := collegeOfferInput()
		in.Seats = 3
		offer := newOffer(t, "off-1", in)
		school := newSchool(t, collegeInput())
		for i, week := range []string{week25, week25, week26} {
			id := fmt.Sprint(i)
			hold(t, offer, submitted(t, "app-"+id, offer, newPupil(t, "p-"+id, school, "3e"), week))
		}
		if offer.Free(week25) != 1 || offer.Free(week26) != 2 {
			t.Fatalf("free seats %d, %d", offer.Free(week25), offer.Free(week26))
		}
		return offer
	}
	hours := &domain.DailyHours{Start: "08:00", End: "15:00", LunchBreakMinutes: 60}
	tests := []struct {
		name   string
		in     domain.AmendOfferInput
		want   func(*domain.OfferAmended) // the terms expected, from the current ones
		fields []string                   // a validation error naming these fields
		refuse bool                       // a conflict: an accepted pupil would be dropped
	}{
		{name: "title", in: domain.AmendOfferInput{Title: ptr(" Au fournil ")}, want: func(e *domain.OfferAmended) { e.Title = "Au fournil" }},
		{name: "description", in: domain.AmendOfferInput{Description: ptr("Nouveau.\n")}, want: func(e *domain.OfferAmended) { e.Description = "Nouveau." }},
		{name: "more seats", in: domain.AmendOfferInput{Seats: ptr(5)}, want: func(e *domain.OfferAmended) { e.Seats = 5 }},
		{name: "seats down to the held ones", in: domain.AmendOfferInput{Seats: ptr(2)}, want: func(e *domain.OfferAmended) { e.Seats = 2 }},
		{name: "a week added", in: domain.AmendOfferInput{Weeks: []string{week27, week26, week25}}, want: func(e *domain.OfferAmended) { e.Weeks = []string{week25, week26, week27} }},
		{name: "weeks moved, held ones kept", in: domain.AmendOfferInput{Weeks: []string{week26, week28, week25}}, want: func(e *domain.OfferAmended) { e.Weeks = []string{week25, week26, week28} }},
		{name: "reserved", in: domain.AmendOfferInput{Reserved: &domain.Reservation{REP: true, Schools: []string{"0941234A"}}}, want: func(e *domain.OfferAmended) {
			e.Reserved = domain.Reservation{REP: true, Schools: []string{"0941234A"}}
		}},
		{name: "daily hours", in: domain.AmendOfferInput{DailyHours: hours}, want: func(e *domain.OfferAmended) { e.DailyHours = hours }},
		{name: "group size", in: domain.AmendOfferInput{GroupSize: ptr(3)}, want: func(e *domain.OfferAmended) { e.GroupSize = 3 }},
		{name: "family business", in: domain.AmendOfferInput{FamilyBusiness: ptr(true)}, want: func(e *domain.OfferAmended) { e.FamilyBusiness = true }},

		{name: "a held week removed", in: domain.AmendOfferInput{Weeks: []string{week26}}, refuse: true},
		{name: "the other held week removed", in: domain.AmendOfferInput{Weeks: []string{week25, week27}}, refuse: true},
		{name: "every week replaced", in: domain.AmendOfferInput{Weeks: []string{week27, week28}}, refuse: true},
		{name: "seats below the held ones", in: domain.AmendOfferInput{Seats: ptr(1)}, refuse: true},
		{name: "fewer seats and a held week removed", in: domain.AmendOfferInput{Seats: ptr(2), Weeks: []string{week25}}, refuse: true},

		{name: "no seat", in: domain.AmendOfferInput{Seats: ptr(0)}, fields: []string{"seats"}},
		{name: "501 seats", in: domain.AmendOfferInput{Seats: ptr(501)}, fields: []string{"seats"}},
		{name: "no week", in: domain.AmendOfferInput{Weeks: []string{}}, fields: []string{"weeks"}},
		{name: "bad week", in: domain.AmendOfferInput{Weeks: []string{week25, "2026-W60"}}, fields: []string{"weeks"}},
		{name: "blank title", in: domain.AmendOfferInput{Title: ptr("  ")}, fields: []string{"title"}},
		{name: "long description", in: domain.AmendOfferInput{Description: ptr(strings.Repeat("d", 5001))}, fields: []string{"description"}},
		{name: "group larger than the seats", in: domain.AmendOfferInput{GroupSize: ptr(4)}, fields: []string{"group_size"}},
		{name: "seats below the group", in: domain.AmendOfferInput{Seats: ptr(2), GroupSize: ptr(3)}, fields: []string{"group_size"}},
		{name: "hours after 20:00", in: domain.AmendOfferInput{DailyHours: &domain.DailyHours{Start: "14:00", End: "21:00"}}, fields: []string{"daily_hours.end"}},
		{name: "reserved for a bad UAI", in: domain.AmendOfferInput{Reserved: &domain.Reservation{Schools: []string{"94"}}}, fields: []string{"reserved.schools"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			offer := setup(t)
			before := offer.Posted
			evs, err := offer.Amend(tt.in, now)
			if !reflect.DeepEqual(offer.Posted, before) {
				t.Fatal("deciding changed the aggregate")
			}
			switch {
			case tt.refuse:
				wantIs(t, evs, err, domain.ErrConflict)
				if !strings.Contains(err.Error(), "accepted") {
					t.Errorf("error %q does not say an accepted pupil is in the way", err)
				}
				return
			case tt.fields != nil:
				if len(evs) != 0 {
					t.Fatalf("events %v", types(evs))
				}
				wantFields(t, err, tt.fields...)
				return
			}
			ev := only[*domain.OfferAmended](t, must(t)(evs, err))
			p := before
			want := domain.OfferAmended{OfferID: "off-1", Title: p.Title, Description: p.Description, Weeks: p.Weeks, Seats: p.Seats,
				Reserved: p.Reserved, DailyHours: p.DailyHours, GroupSize: p.GroupSize, FamilyBusiness: p.FamilyBusiness}
			tt.want(&want)
			if !reflect.DeepEqual(*ev, want) {
				t.Fatalf("event = %+v\nwant    %+v", *ev, want)
			}
			offer.Apply(ev)
			// Every accepted pupil keeps their seat.
			for _, id := range []string{"app-0", "app-1", "app-2"} {
				if !offer.Holds(id) {
					t.Fatalf("%s lost its seat", id)
				}
			}
			if got, want := offer.Free(week25), want.Seats-2; got != want {
				t.Errorf("Free(%s) = %d, want %d", week25, got, want)
			}
			if got, want := offer.Free(week26), want.Seats-1; got != want {
				t.Errorf("Free(%s) = %d, want %d", week26, got, want)
			}
			if offer.Posted.EmployerID != before.EmployerID || offer.Posted.Sector != before.Sector || !slices.Equal(offer.Posted.Grades, before.Grades) {
				t.Errorf("amending changed what it cannot: %+v", offer.Posted)
			}
		})
	}

	var missing domain.Offer
	evs, err := missing.Amend(domain.AmendOfferInput{Title: ptr("x")}, now)
	wantIs(t, evs, err, domain.ErrNotFound)

	// Once the pupils are gone, the weeks and seats are free to change.
	offer := setup(t)
	for _, id := range []string{"app-0", "app-1", "app-2"} {
		apply(offer, offer.ReleaseSeat(id)...)
	}
	ev := only[*domain.OfferAmended](t, must(t)(offer.Amend(domain.AmendOfferInput{Seats: ptr(1), Weeks: []string{week28}}, now)))
	if ev.Seats != 1 || !slices.Equal(ev.Weeks, []string{week28}) {
		t.Fatalf("event = %+v", *ev)
	}
}

// TestOfferOpenClose runs withdraw and reopen from every state of an
// offer; held seats survive both.
func TestOfferOpenClose(t *testing.T) {
	type state int
	const (
		missing state = iota
		open
		withdrawn
	)
	tests := []struct {
		name    string
		from    state
		command func(*domain.Offer) ([]domain.Event, error)
		event   string // "" for no change
		open    bool   // after
		notFnd  bool
	}{
		{"withdraw an open offer", open, func(o *domain.Offer) ([]domain.Event, error) { return o.Withdraw("travaux") }, "OfferWithdrawn", false, false},
		{"withdraw a withdrawn offer", withdrawn, func(o *domain.Offer) ([]domain.Event, error) { return o.Withdraw("again") }, "", false, false},
		{"withdraw a missing offer", missing, func(o *domain.Offer) ([]domain.Event, error) { return o.Withdraw("") }, "", false, true},
		{"reopen a withdrawn offer", withdrawn, (*domain.Offer).Reopen, "OfferReopened", true, false},
		{"reopen an open offer", open, (*domain.Offer).Reopen, "", true, false},
		{"reopen a missing offer", missing, (*domain.Offer).Reopen, "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			offer := &domain.Offer{}
			if tt.from != missing {
				offer = newOffer(t, "off-1", collegeOfferInput())
				hold(t, offer, submitted(t, "app-1", offer, pupil3e(t), week25))
			}
			if tt.from == withdrawn {
				apply(offer, must(t)(offer.Withdraw(""))...)
			}
			evs, err := tt.command(offer)
			if tt.notFnd {
				wantIs(t, evs, err, domain.ErrNotFound)
				return
			}
			if tt.event == "" {
				wantNothing(t)(evs, err)
			} else {
				if err != nil || len(evs) != 1 || evs[0].EventType() != tt.event {
					t.Fatalf("got %v, %v; want one %s", types(evs), err, tt.event)
				}
				apply(offer, evs...)
			}
			if offer.Open() != tt.open || offer.Withdrawn == tt.open {
				t.Fatalf("open = %v, withdrawn = %v; want open %v", offer.Open(), offer.Withdrawn, tt.open)
			}
			if !offer.Holds("app-1") || offer.Free(week25) != 1 {
				t.Fatal("the held seat was dropped")
			}
			// An open offer takes applications and acceptances; a withdrawn
			// one neither, but a retried acceptance is still no change.
			other := newPupil(t, "pupil-b", newSchool(t, collegeInput()), "3e")
			var b domain.Application
			evs, err = b.Submit("app-b", offer, other, newSchool(t, collegeInput()), domain.SubmitInput{Weeks: []string{week25}, Motivation: "x"}, now)
			heldApp := &domain.Application{Submitted: domain.ApplicationSubmitted{ApplicationID: "app-1", Weeks: []string{week25}}}
			newApp := &domain.Application{Submitted: domain.ApplicationSubmitted{ApplicationID: "app-c", Weeks: []string{week26}}}
			if tt.open {
				only[*domain.ApplicationSubmitted](t, must(t)(evs, err))
				only[*domain.SeatHeld](t, must(t)(offer.HoldSeat(newApp)))
			} else {
				wantRule(t, evs, err, "offer_withdrawn")
				evs, err = offer.HoldSeat(newApp)
				wantRule(t, evs, err, "offer_withdrawn")
			}
			wantNothing(t)(offer.HoldSeat(heldApp))
		})
	}
}

// TestOfferHoldRelease: holding a seat and releasing it, from every state
// of an offer's seats.
func TestOfferHoldRelease(t *testing.T) {
	app := func(id string, weeks ...string) *domain.Application {
		return &domain.Application{Submitted: domain.ApplicationSubmitted{ApplicationID: id, PupilID: "p-" + id, Weeks: weeks}}
	}
	// a one-seat 2de offer in weeks 25, 26, 27 where "a" holds week 25
	setup := func(t *testing.T) *domain.Offer {
		offer := newOffer(t, "off-1", lyceeOfferInput())
		apply(offer, must(t)(offer.HoldSeat(app("a", week25)))...)
		return offer
	}
	tests := []struct {
		name   string
		decide func(*domain.Offer) ([]domain.Event, error)
		want   string // event type, "" for none, or a rule
		free   [3]int // free seats in weeks 25, 26, 27 afterwards
	}{
		{"hold a free week", func(o *domain.Offer) ([]domain.Event, error) { return o.HoldSeat(app("b", week26)) }, "SeatHeld", [3]int{0, 0, 1}},
		{"hold two free weeks", func(o *domain.Offer) ([]domain.Event, error) { return o.HoldSeat(app("b", week26, week27)) }, "SeatHeld", [3]int{0, 0, 0}},
		{"hold a full week", func(o *domain.Offer) ([]domain.Event, error) { return o.HoldSeat(app("b", week25)) }, "no_seat_left", [3]int{0, 1, 1}},
		{"hold a free and a full week", func(o *domain.Offer) ([]domain.Event, error) { return o.HoldSeat(app("b", week25, week26)) }, "no_seat_left", [3]int{0, 1, 1}},
		{"hold a week the offer does not run", func(o *domain.Offer) ([]domain.Event, error) { return o.HoldSeat(app("b", week28)) }, "no_seat_left", [3]int{0, 1, 1}},
		{"hold again (a retry)", func(o *domain.Offer) ([]domain.Event, error) { return o.HoldSeat(app("a", week25)) }, "", [3]int{0, 1, 1}},
		{"release a held seat", func(o *domain.Offer) ([]domain.Event, error) { return o.ReleaseSeat("a"), nil }, "SeatReleased", [3]int{1, 1, 1}},
		{"release a seat not held", func(o *domain.Offer) ([]domain.Event, error) { return o.ReleaseSeat("b"), nil }, "", [3]int{0, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			offer := setup(t)
			evs, err := tt.decide(offer)
			switch tt.want {
			case "":
				wantNothing(t)(evs, err)
			case "SeatHeld", "SeatReleased":
				if err != nil || len(evs) != 1 || evs[0].EventType() != tt.want {
					t.Fatalf("got %v, %v; want one %s", types(evs), err, tt.want)
				}
				apply(offer, evs...)
			default:
				wantRule(t, evs, err, tt.want)
			}
			if got := [3]int{offer.Free(week25), offer.Free(week26), offer.Free(week27)}; got != tt.free {
				t.Fatalf("free seats = %v, want %v", got, tt.free)
			}
		})
	}
	var missing domain.Offer
	evs, err := missing.HoldSeat(app("a", week25))
	wantIs(t, evs, err, domain.ErrNotFound)
}

// An offer whose every seat is taken stops accepting applications, and
// accepts them again once a seat is released or added; applications still
// pending take no seat.
func TestOfferFullRefusesApplications(t *testing.T) {
	in := collegeOfferInput()
	in.Seats, in.Weeks = 1, []string{week25, week26}
	offer := newOffer(t, "off-1", in)
	school := newSchool(t, collegeInput())
	pupils := make([]*domain.Pupil, 4)
	for i := range pupils {
		pupils[i] = newPupil(t, fmt.Sprintf("p-%d", i), school, "3e")
	}
	submit := func(i int, week string) ([]domain.Event, error) {
		var a domain.Application
		return a.Submit(fmt.Sprintf("app-%d", i), offer, pupils[i], school, domain.SubmitInput{Weeks: []string{week}, Motivation: "x"}, now)
	}

	// Two pending applications for the one seat of week 25 are fine.
	a0 := submitted(t, "app-0", offer, pupils[0], week25)
	submitted(t, "app-1", offer, pupils[1], week25)
	hold(t, offer, a0)

	evs, err := submit(2, week25)
	wantRule(t, evs, err, "no_seat_left")
	if !strings.Contains(err.Error(), week25) {
		t.Errorf("error %q does not name the full week", err)
	}
	// Week 26 still has its seat.
	only[*domain.ApplicationSubmitted](t, must(t)(submit(2, week26)))

	// The seat is released: week 25 takes applications again.
	apply(offer, offer.ReleaseSeat("app-0")...)
	only[*domain.ApplicationSubmitted](t, must(t)(submit(3, week25)))

	// Full again, then a seat is added by an amendment.
	hold(t, offer, a0)
	evs, err = submit(3, week25)
	wantRule(t, evs, err, "no_seat_left")
	apply(offer, must(t)(offer.Amend(domain.AmendOfferInput{Seats: ptr(2)}, now))...)
	only[*domain.ApplicationSubmitted](t, must(t)(submit(3, week25)))

	// A 2de pupil wanting two weeks is refused if either one is full.
	lycee := newOffer(t, "off-2de", lyceeOfferInput()) // one seat, weeks 25–27
	ls := newSchool(t, lyceeInput())
	hold(t, lycee, submitted(t, "app-l0", lycee, newPupil(t, "l-0", ls, "2de"), week26))
	var b domain.Application
	evs, err = b.Submit("app-l1", lycee, newPupil(t, "l-1", ls, "2de"), ls, domain.SubmitInput{Weeks: []string{week25, week26}, Motivation: "x"}, now)
	wantRule(t, evs, err, "no_seat_left")
	only[*domain.ApplicationSubmitted](t, must(t)(b.Submit("app-l1", lycee, newPupil(t, "l-1", ls, "2de"), ls, domain.SubmitInput{Weeks: []string{week27}, Motivation: "x"}, now)))
}

// Reserved offers: rep takes only pupils of REP/REP+ collèges, qpv only
// pupils of lycées near a QPV, a list of schools only their pupils; with
// several restrictions, any of them will do.
func TestOfferReservations(t *testing.T) {
	school := func(uai, kind, priority string, qpv bool) *domain.School {
		return newSchool(t, domain.RegisterSchoolInput{UAI: uai, Name: "Établissement " + uai, Kind: kind, CommuneCode: "94028", EducationPriority: priority, QPV: qpv})
	}
	schools := map[string]*domain.School{
		"collège":             school("0941001A", "college", "none", false),
		"collège REP":         school("0941002B", "college", "rep", false),
		"collège REP+":        school("0941003C", "college", "rep_plus", false),
		"collège with QPV":    school("0941004D", "college", "none", true),
		"lycée near a QPV":    school("0941005E", "lycee", "none", true),
		"lycée":               school("0941006F", "lycee", "none", false),
		"lycée REP":           school("0941007G", "lycee", "rep", false),
		"lycée REP near QPV":  school("0941008H", "lycee", "rep_plus", true),
		"collège REP+ in QPV": school("0941009J", "college", "rep_plus", true),
	}
	reservations := []struct {
		name     string
		r        domain.Reservation
		eligible []string
	}{
		{"none", domain.Reservation{}, slices.Collect(maps.Keys(schools))},
		{"rep", domain.Reservation{REP: true}, []string{"collège REP", "collège REP+", "collège REP+ in QPV"}},
		{"qpv", domain.Reservation{QPV: true}, []string{"lycée near a QPV", "lycée REP near QPV"}},
		{"named schools", domain.Reservation{Schools: []string{"0941001A", "0941006F"}}, []string{"collège", "lycée"}},
		{"rep or qpv", domain.Reservation{REP: true, QPV: true}, []string{"collège REP", "collège REP+", "collège REP+ in QPV", "lycée near a QPV", "lycée REP near QPV"}},
		{"rep or a named collège", domain.Reservation{REP: true, Schools: []string{"0941001A"}}, []string{"collège", "collège REP", "collège REP+", "collège REP+ in QPV"}},
	}
	for _, res := range reservations {
		collegeIn, lyceeIn := collegeOfferInput(), lyceeOfferInput()
		collegeIn.Reserved, lyceeIn.Reserved = res.r, res.r
		offers := map[bool]*domain.Offer{false: newOffer(t, "off-c", collegeIn), true: newOffer(t, "off-l", lyceeIn)}
		for _, name := range slices.Sorted(maps.Keys(schools)) {
			s := schools[name]
			t.Run(res.name+"/"+name, func(t *testing.T) {
				lycee := s.Registered.Kind == "lycee"
				grade := "3e"
				if lycee {
					grade = "2de"
				}
				pupil := newPupil(t, "p", s, grade)
				var a domain.Application
				evs, err := a.Submit("app", offers[lycee], pupil, s, domain.SubmitInput{Weeks: []string{week25}, Motivation: "x"}, now)
				if slices.Contains(res.eligible, name) {
					ev := only[*domain.ApplicationSubmitted](t, must(t)(evs, err))
					if ev.SchoolUAI != s.Registered.UAI {
						t.Fatalf("SchoolUAI = %s", ev.SchoolUAI)
					}
					return
				}
				wantRule(t, evs, err, "reserved_offer")
			})
		}
		// Without the pupil's school, only an unreserved offer takes them.
		pupil := pupil3e(t)
		var a domain.Application
		evs, err := a.Submit("app", offers[false], pupil, nil, domain.SubmitInput{Weeks: []string{week25}, Motivation: "x"}, now)
		if res.r.Any() {
			wantRule(t, evs, err, "reserved_offer")
		} else {
			only[*domain.ApplicationSubmitted](t, must(t)(evs, err))
		}
	}
}

// A company takes no pupil under 14 on the first day of the internship,
// unless it is a family business; public employers and associations may.
func TestOfferUnder14(t *testing.T) {
	employer := func(kind string) *domain.Employer {
		in := employerInput()
		in.Kind = kind
		var e domain.Employer
		apply(&e, must(t)(domain.RegisterEmployer("emp-"+kind, in, places))...)
		return &e
	}
	const (
		thirteen = "2012-06-16" // turns 14 on Tuesday of week 25
		fourteen = "2012-06-15" // turns 14 on Monday of week 25
		fifteen  = "2011-05-12"
	)
	school := newSchool(t, collegeInput())
	tests := []struct {
		kind      string
		family    bool
		birthDate string
		week      string
		ok        bool
	}{
		{"company", false, thirteen, week25, false},
		{"company", false, fourteen, week25, true},
		{"company", false, fifteen, week25, true},
		{"company", false, thirteen, week26, true}, // 14 by week 26
		{"company", true, thirteen, week25, true},
		{"public", false, thirteen, week25, true},
		{"association", false, thirteen, week25, true},
		{"public", true, thirteen, week25, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s family=%v born %s in %s", tt.kind, tt.family, tt.birthDate, tt.week), func(t *testing.T) {
			in := collegeOfferInput()
			in.FamilyBusiness = tt.family
			var offer domain.Offer
			apply(&offer, must(t)(domain.PostOffer("off-1", employer(tt.kind), in, places, now))...)
			pupil := newPupilWith(t, "p", school, "4e", func(in *domain.RegisterPupilInput) { in.BirthDate = tt.birthDate })
			var a domain.Application
			evs, err := a.Submit("app", &offer, pupil, school, domain.SubmitInput{Weeks: []string{tt.week}, Motivation: "x"}, now)
			if tt.ok {
				only[*domain.ApplicationSubmitted](t, must(t)(evs, err))
				return
			}
			wantRule(t, evs, err, "under_14_private_host")
			// Declaring the family business lifts the refusal.
			apply(&offer, must(t)(offer.Amend(domain.AmendOfferInput{FamilyBusiness: ptr(true)}, now))...)
			only[*domain.ApplicationSubmitted](t, must(t)(a.Submit("app", &offer, pupil, school, domain.SubmitInput{Weeks: []string{tt.week}, Motivation: "x"}, now)))
		})
	}
}
