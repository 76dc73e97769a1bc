package domain_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"passerelle/domain"
)

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func TestParseWeek(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time // the Monday; zero when the week is refused
	}{
		{"2025-W25", day(2025, time.June, 16)}, // the 2025 national seconde period started here
		{"2025-W26", day(2025, time.June, 23)},
		{"2026-W25", day(2026, time.June, 15)},
		{"2026-W01", day(2025, time.December, 29)}, // week 1 may start in the previous year
		{"2021-W01", day(2021, time.January, 4)},
		{"2000-W01", day(2000, time.January, 3)},
		{"2100-W01", day(2100, time.January, 4)},
		{"2024-W52", day(2024, time.December, 23)},
		// Week 53 exists only in long years (starting on a Thursday, or
		// leap years starting on a Wednesday).
		{"2020-W53", day(2020, time.December, 28)},
		{"2026-W53", day(2026, time.December, 28)},
		{"2015-W53", day(2015, time.December, 28)},
		{"2004-W53", day(2004, time.December, 27)},
		{"2021-W53", time.Time{}},
		{"2024-W53", time.Time{}},
		{"2025-W53", time.Time{}},
		{"2027-W53", time.Time{}},
		{"2026-W54", time.Time{}},
		{"2026-W99", time.Time{}},
		{"2026-W00", time.Time{}},
		// Out of range years.
		{"1999-W10", time.Time{}},
		{"2101-W10", time.Time{}},
		{"0000-W01", time.Time{}},
		// Bad shapes.
		{"", time.Time{}},
		{"2026W25", time.Time{}},
		{"2026-25", time.Time{}},
		{"2026-w25", time.Time{}},
		{"2026-W5", time.Time{}},
		{"2026-W025", time.Time{}},
		{"26-W25", time.Time{}},
		{" 2026-W25", time.Time{}},
		{"2026-W25 ", time.Time{}},
		{"2026-W25\n", time.Time{}},
		{"2026-W25-1", time.Time{}},
		{"2026-06-15", time.Time{}},
		{"२०२६-W25", time.Time{}}, // non-ASCII digits
		{"2026-W2a", time.Time{}},
		{"2026-W+5", time.Time{}},
		{"2026-W-1", time.Time{}},
		{"+026-W25", time.Time{}},
		{"2026:W25", time.Time{}},
		{"2026-X25", time.Time{}},
		{"2026-W2/", time.Time{}}, // the bytes beside the digits
		{"2026-W2:", time.Time{}},
	}
	for _, tt := range tests {
		got, err := domain.ParseWeek(tt.in)
		if tt.want.IsZero() {
			if err == nil {
				t.Errorf("ParseWeek(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseWeek(%q): unexpected error %v", tt.in, err)
			continue
		}
		if !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("ParseWeek(%q) = %v, want %v", tt.in, got, tt.want)
		}
		if got.Weekday() != time.Monday {
			t.Errorf("ParseWeek(%q) = %v, a %v", tt.in, got, got.Weekday())
		}
		if w := domain.WeekOf(got); w != tt.in {
			t.Errorf("WeekOf(ParseWeek(%q)) = %q", tt.in, w)
		}
	}
}

// Every week of every supported year parses, and week 53 only where the
// standard library's ISOWeek says the year has one.
func TestParseWeekAllYears(t *testing.T) {
	for year := 2000; year <= 2100; year++ {
		_, last := day(year, time.December, 28).ISOWeek() // 28 December is in the last week
		for week := 1; week <= 53; week++ {
			s := fmt.Sprintf("%04d-W%02d", year, week)
			got, err := domain.ParseWeek(s)
			if week > last {
				if err == nil {
					t.Errorf("ParseWeek(%q) = %v, but %d has %d weeks", s, got, year, last)
				}
				continue
			}
			if err != nil {
				t.Errorf("ParseWeek(%q): %v", s, err)
				continue
			}
			if w := domain.WeekOf(got); w != s || got.Weekday() != time.Monday {
				t.Errorf("ParseWeek(%q) = %v (%v, week %s)", s, got, got.Weekday(), w)
			}
		}
	}
}

func TestWeekOf(t *testing.T) {
	tests := []struct {
		t    time.Time
		want string
	}{
		{day(2026, time.June, 15), "2026-W25"},
		{time.Date(2026, time.June, 21, 23, 59, 0, 0, time.UTC), "2026-W25"}, // Sunday
		{day(2026, time.June, 22), "2026-W26"},
		{day(2026, time.December, 31), "2026-W53"},
		{day(2027, time.January, 3), "2026-W53"},
		{day(2024, time.December, 30), "2025-W01"},
		{day(2026, time.January, 5), "2026-W02"},
	}
	for _, tt := range tests {
		if got := domain.WeekOf(tt.t); got != tt.want {
			t.Errorf("WeekOf(%v) = %q, want %q", tt.t, got, tt.want)
		}
	}
}

func TestValidSIRET(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"73282932000074", true},  // Luhn key valid
		{"44306184100047", true},  // Luhn key valid
		{"55208131766522", true},  // Luhn key valid
		{"73282932000075", false}, // last digit changed
		{"73282932000047", false}, // last two digits swapped
		{"83282932000074", false}, // first digit changed
		{"00000000000001", false},
		// La Poste (SIREN 356000000): its head office has a valid Luhn key,
		// its other establishments may only have a digit sum that is a
		// multiple of 5.
		{"35600000000048", true},
		{"35600000049837", true},  // digit sum 45, Luhn key invalid
		{"35600000009075", true},  // digit sum 35, Luhn key invalid
		{"35600000012345", false}, // neither rule
		{"35600000000049", false}, // neither rule
		{"35600000100041", false}, // digit sum 20, but the digit-sum rule is La Poste's only
		{"73282932000040", false}, // digit sum 35, Luhn key invalid
		// Wrong length or characters.
		{"", false},
		{"7328293200007", false},
		{"732829320000740", false},
		{"732829320 00074", false},
		{"7328293200007A", false},
		{"-3282932000074", false},
		{"٧٣٢٨٢٩٣٢٠٠٠٠٧٤", false}, // Arabic-Indic digits
	}
	for _, tt := range tests {
		if got := domain.ValidSIRET(tt.in); got != tt.want {
			t.Errorf("ValidSIRET(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestValidUAI(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"0941234A", true},
		{"0751234Z", true},
		{"9741234K", true},
		{"0941234a", false},
		{"094123A", false},
		{"09412345A", false},
		{"0941234", false},
		{"0941234AB", false},
		{"A0941234", false},
		{"0941234É", false},
		{"0941234 ", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := domain.ValidUAI(tt.in); got != tt.want {
			t.Errorf("ValidUAI(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParseDate(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time // zero when refused
	}{
		{"2011-05-12", day(2011, time.May, 12)},
		{"2012-02-29", day(2012, time.February, 29)},
		{"2000-02-29", day(2000, time.February, 29)},
		{"2013-02-29", time.Time{}},
		{"1900-02-29", time.Time{}},
		{"2011-13-01", time.Time{}},
		{"2011-04-31", time.Time{}},
		{"2011-00-10", time.Time{}},
		{"2011-5-12", time.Time{}},
		{"12/05/2011", time.Time{}},
		{"2011-05-12T00:00:00Z", time.Time{}},
		{" 2011-05-12", time.Time{}},
		{"", time.Time{}},
	}
	for _, tt := range tests {
		got, err := domain.ParseDate(tt.in)
		if tt.want.IsZero() {
			if err == nil {
				t.Errorf("ParseDate(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("ParseDate(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestGrade(t *testing.T) {
	tests := []struct {
		g            domain.Grade
		valid, lycee bool
	}{
		{domain.Grade4e, true, false},
		{domain.Grade3e, true, false},
		{domain.Grade2de, true, true},
		{"5e", false, false},
		{"2nde", false, false},
		{"", false, false},
	}
	for _, tt := range tests {
		if got := tt.g.Valid(); got != tt.valid {
			t.Errorf("Grade(%q).Valid() = %v", tt.g, got)
		}
		if got := tt.g.Lycee(); got != tt.lycee {
			t.Errorf("Grade(%q).Lycee() = %v", tt.g, got)
		}
	}
}

func TestProblems(t *testing.T) {
	if err := (domain.Problems{}).Err(); err != nil {
		t.Fatalf("empty Problems: Err() = %v, want nil", err)
	}
	p := domain.Problems{}
	p.Add("weeks", "first rule")
	p.Add("weeks", "second rule")
	p.Add("grades", "is required")
	err := p.Err()
	var ve *domain.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Err() = %T, want *ValidationError", err)
	}
	if ve.Fields["weeks"] != "first rule" {
		t.Errorf("weeks = %q, want the first rule recorded", ve.Fields["weeks"])
	}
	if want := "invalid input: grades: is required; weeks: first rule"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}

func TestErrorKinds(t *testing.T) {
	c := domain.Conflictf("no seat left in week %s", week25)
	n := domain.NotFoundf("offer %s", "o-1")
	if !errors.Is(c, domain.ErrConflict) || errors.Is(c, domain.ErrNotFound) {
		t.Errorf("Conflictf: %v", c)
	}
	if !errors.Is(n, domain.ErrNotFound) || errors.Is(n, domain.ErrConflict) {
		t.Errorf("NotFoundf: %v", n)
	}
	if !strings.Contains(c.Error(), "no seat left in week 2026-W25") || !strings.Contains(n.Error(), "offer o-1") {
		t.Errorf("messages lost their details: %q, %q", c, n)
	}
}

func TestStreamNames(t *testing.T) {
	tests := []struct{ got, want string }{
		{domain.EmployerStream("e1"), "employer-e1"},
		{domain.SchoolStream("0941234A"), "school-0941234A"},
		{domain.PupilStream("p1"), "pupil-p1"},
		{domain.OfferStream("o1"), "offer-o1"},
		{domain.ApplicationStream("a1"), "application-a1"},
		{domain.ConventionStream("c1"), "convention-c1"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("stream = %q, want %q", tt.got, tt.want)
		}
		category, _, _ := strings.Cut(tt.want, "-")
		found := false
		for _, c := range domain.Categories {
			found = found || c == category
		}
		if !found {
			t.Errorf("category %q is not in Categories %v", category, domain.Categories)
		}
	}
}
