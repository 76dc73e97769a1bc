package domain_test

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"passerelle/domain"
)

// FuzzDecode feeds Decode any type name and bytes: it must never panic,
// a decoded event must be of the type asked for, and whatever it decodes
// must encode to JSON that decodes to the same encoding again.
func FuzzDecode(f *testing.F) {
	for _, e := range sampleEvents() {
		b, err := domain.Encode(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(e.EventType(), b)
	}
	f.Add("OfferPosted", []byte(`{"seats":1e400}`))
	f.Add("OfferPosted", []byte(`{"daily_hours":null,"grades":[null]}`))
	f.Add("ApplicationSubmitted", []byte(`{"submitted_at":"2026-06-15T08:45:12+14:00"}`))
	f.Add("PupilRegistered", []byte(`{"guardians":[{"name":"\ud800"}]}`))
	f.Add("SeatHeld", []byte("null"))
	f.Add("SeatHeld", []byte{0xff, 0xfe})
	f.Add("Unknown", []byte(`{}`))
	f.Fuzz(func(t *testing.T, eventType string, data []byte) {
		e, err := domain.Decode(eventType, data)
		if err != nil {
			if e != nil {
				t.Fatalf("Decode returned %v with error %v", e, err)
			}
			return
		}
		if e == nil || e.EventType() != eventType {
			t.Fatalf("Decode(%q) = %#v", eventType, e)
		}
		b, err := domain.Encode(e)
		if err != nil {
			// JSON cannot hold a time outside the years 0–9999; nothing
			// else decoded may fail to encode.
			if !strings.Contains(err.Error(), "Time.MarshalJSON") {
				t.Fatalf("Encode(%#v): %v", e, err)
			}
			return
		}
		e2, err := domain.Decode(eventType, b)
		if err != nil {
			t.Fatalf("Decode(Encode(e)) = %v for %s", err, b)
		}
		b2, err := domain.Encode(e2)
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("encoding is not stable:\n%s\n%s (%v)", b, b2, err)
		}
	})
}

var weekShape = regexp.MustCompile(`^\d{4}-W\d{2}$`)

// FuzzParseWeek checks that ParseWeek never panics and that every week it
// accepts is well formed and is the ISO week of the Monday it returns.
func FuzzParseWeek(f *testing.F) {
	for _, s := range []string{"2026-W25", "2026-W53", "2025-W53", "2026-W00", "2000-W01", "2100-W53", "1999-W52", "2026-W5", "", "2026-W25\n", "९९९९-W01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := domain.ParseWeek(s)
		if err != nil {
			if !got.IsZero() {
				t.Fatalf("ParseWeek(%q) = %v with error %v", s, got, err)
			}
			return
		}
		if !weekShape.MatchString(s) {
			t.Fatalf("ParseWeek accepted %q", s)
		}
		if got.Weekday() != time.Monday || got.Location() != time.UTC || !got.Equal(got.Truncate(24*time.Hour)) {
			t.Fatalf("ParseWeek(%q) = %v, not a Monday at midnight UTC", s, got)
		}
		if w := domain.WeekOf(got); w != s {
			t.Fatalf("ParseWeek(%q) = %v, in week %s", s, got, w)
		}
		if y, _ := got.ISOWeek(); y < 2000 || y > 2100 {
			t.Fatalf("ParseWeek(%q) accepted year %d", s, y)
		}
	})
}
