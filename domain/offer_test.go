package domain_test

import (
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
	ev := only[*domain.OfferPosted](t, must(t)(domain.PostOffer("off-1", emp, in, places)))
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
		{"Brest", func(in *domain.PostOfferInput) { in.Lat, in.Lon = 48.3904, -4.4861 }},
		{"Strasbourg", func(in *domain.PostOfferInput) { in.Lat, in.Lon = 48.5734, 7.7521 }},
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
			ev := only[*domain.OfferPosted](t, must(t)(domain.PostOffer("off-1", emp, in, places)))
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
		{"negative seats", emp, func(in *domain.PostOfferInput) { in.Seats = -3 }, []string{"seats"}},
		{"501 seats", emp, func(in *domain.PostOfferInput) { in.Seats = 501 }, []string{"seats"}},
		{"unknown commune", emp, func(in *domain.PostOfferInput) { in.CommuneCode = "00000" }, []string{"commune_code"}},
		{"no address", emp, func(in *domain.PostOfferInput) { in.Address = "\t" }, []string{"address"}},
		{"zero point", emp, func(in *domain.PostOfferInput) { in.Lat, in.Lon = 0, 0 }, []string{"lat"}},
		{"swapped lat/lon", emp, func(in *domain.PostOfferInput) { in.Lat, in.Lon = 2.45233, 48.78454 }, []string{"lat"}},
		{"London", emp, func(in *domain.PostOfferInput) { in.Lat, in.Lon = 51.5072, -0.1276 }, []string{"lat"}},
		{"Madrid", emp, func(in *domain.PostOfferInput) { in.Lat, in.Lon = 40.4168, -3.7038 }, []string{"lat"}},
		{"New York", emp, func(in *domain.PostOfferInput) { in.Lat, in.Lon = 40.7128, -74.006 }, []string{"lat"}},
		{"Saint-Pierre-et-Miquelon", emp, func(in *domain.PostOfferInput) { in.Lat, in.Lon = 46.7811, -56.1764 }, []string{"lat"}},
		{"NaN", emp, func(in *domain.PostOfferInput) { in.Lat = math.NaN() }, []string{"lat"}},
		{"infinite", emp, func(in *domain.PostOfferInput) { in.Lon = math.Inf(1) }, []string{"lat"}},
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
		}, []string{"employer_id", "title", "description", "sector", "grades", "weeks", "seats", "commune_code", "address", "lat", "daily_hours.start"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := collegeOfferInput()
			tt.edit(&in)
			evs, err := domain.PostOffer("off-1", tt.employer, in, places)
			if len(evs) != 0 {
				t.Fatalf("events %v with invalid input", types(evs))
			}
			wantFields(t, err, tt.fields...)
		})
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
	wantIs(t, evs, err, domain.ErrConflict)
	if !strings.Contains(err.Error(), week26) {
		t.Errorf("error %q does not name the full week", err)
	}
	evs, err = offer.HoldSeat(d)
	wantIs(t, evs, err, domain.ErrConflict)
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
	wantIs(t, evs, err, domain.ErrConflict)
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
			for i := 0; i <= seats; i++ {
				id := week + "-" + string(rune('a'+i))
				app := submitted(t, "app-"+id, offer, newPupil(t, "p-"+id, school, "3e"), week)
				evs, err := offer.HoldSeat(app)
				if i == seats {
					wantIs(t, evs, err, domain.ErrConflict)
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
