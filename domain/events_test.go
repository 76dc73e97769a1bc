package domain_test

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"passerelle/domain"
)

// sampleEvents holds one event of every type, every field set.
func sampleEvents() []domain.Event {
	at := time.Date(2026, 6, 15, 8, 45, 12, 345000000, time.UTC)
	hash := strings.Repeat("0123456789abcdef", 4)
	return []domain.Event{
		&domain.EmployerRegistered{EmployerID: "e1", Name: "Boulangerie Martin", SIRET: "73282932000074", Kind: "company", CommuneCode: "94028", Department: "94", Address: "12 rue du Général Leclerc"},
		&domain.SchoolRegistered{UAI: "0941234A", Name: "Collège Louis Pasteur", Kind: "college", CommuneCode: "94028", Department: "94", EducationPriority: "rep_plus", QPV: true},
		&domain.PupilRegistered{PupilID: "p1", SchoolUAI: "0941234A", Department: "94", Grade: domain.Grade3e, ClassName: "3eB", FirstName: "Léa", LastName: "Martin", BirthDate: "2011-05-12",
			Guardians: []domain.Guardian{{Name: "Sophie Martin", Email: "s@example.fr", Phone: "0612345678"}, {Name: "Karim Martin", Email: "k@example.fr", Phone: "+33612345678"}}},
		&domain.OfferPosted{OfferID: "o1", EmployerID: "e1", EmployerName: "Boulangerie Martin", EmployerKind: "company", Title: "Fournil", Description: "Pain & <viennoiseries>",
			Sector: "s12", Grades: []domain.Grade{domain.Grade4e, domain.Grade3e}, Weeks: []string{week25, week26}, Seats: 3, CommuneCode: "94028", Department: "94",
			Address: "12 rue", Lat: 48.78454, Lon: 2.45233, Reserved: domain.Reservation{REP: true, QPV: true},
			DailyHours: &domain.DailyHours{Start: "09:00", End: "16:00", LunchBreakMinutes: 60}},
		&domain.OfferWithdrawn{OfferID: "o1", Reason: "travaux"},
		&domain.SeatHeld{OfferID: "o1", ApplicationID: "a1", PupilID: "p1", Weeks: []string{week25}},
		&domain.SeatReleased{OfferID: "o1", ApplicationID: "a1", Weeks: []string{week25}},
		&domain.ApplicationSubmitted{ApplicationID: "a1", OfferID: "o1", EmployerID: "e1", PupilID: "p1", SchoolUAI: "0941234A", Grade: domain.Grade3e, Weeks: []string{week25}, Motivation: "J'aime le pain.", SubmittedAt: at},
		&domain.ApplicationAccepted{ApplicationID: "a1"},
		&domain.ApplicationRejected{ApplicationID: "a1", Reason: "complet"},
		&domain.ApplicationWithdrawn{ApplicationID: "a1", SeatReleased: true},
		&domain.ApplicationConfirmed{ApplicationID: "a1", ConventionID: "c1"},
		&domain.ConventionDrafted{ConventionID: "c1", ApplicationID: "a1", OfferID: "o1", EmployerID: "e1", PupilID: "p1", SchoolUAI: "0941234A", Weeks: []string{week25},
			OfferTitle: "Fournil", RequiredRoles: domain.RequiredRoles, DocumentHash: hash},
		&domain.ConventionSignatureAdded{ConventionID: "c1", Role: domain.RoleGuardian, SignerName: "Sophie Martin", DocumentHash: hash, SignedAt: at},
		&domain.ConventionSigned{ConventionID: "c1", DocumentHash: hash},
	}
}

func TestSampleEventsCoverRegistry(t *testing.T) {
	var sampled []string
	for _, e := range sampleEvents() {
		sampled = append(sampled, e.EventType())
	}
	slices.Sort(sampled)
	if got := domain.RegisteredEventTypes(); !slices.Equal(got, sampled) {
		t.Fatalf("registered %v\nsampled    %v", got, sampled)
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, e := range sampleEvents() {
		t.Run(e.EventType(), func(t *testing.T) {
			if reflect.ValueOf(e).Elem().IsZero() {
				t.Fatal("sample is empty")
			}
			b, err := domain.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			got, err := domain.Decode(e.EventType(), b)
			if err != nil {
				t.Fatalf("Decode(%s): %v", b, err)
			}
			if reflect.TypeOf(got) != reflect.TypeOf(e) {
				t.Fatalf("decoded a %T, want %T", got, e)
			}
			if !reflect.DeepEqual(got, e) {
				t.Fatalf("round trip changed the event:\n got %+v\nwant %+v", got, e)
			}
			if got.EventType() != e.EventType() {
				t.Fatalf("EventType = %q", got.EventType())
			}
			again, err := domain.Encode(got)
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("re-encoding: %s, %v; want %s", again, err, b)
			}
		})
	}
}

// The JSON field names are the stored schema: renaming one breaks every
// event already stored.
func TestEncodeFieldNames(t *testing.T) {
	tests := []struct {
		e    domain.Event
		want string
	}{
		{&domain.ApplicationWithdrawn{ApplicationID: "a1", SeatReleased: true}, `{"application_id":"a1","seat_released":true}`},
		{&domain.OfferWithdrawn{OfferID: "o1"}, `{"offer_id":"o1"}`},
		{&domain.SeatHeld{OfferID: "o1", ApplicationID: "a1", PupilID: "p1", Weeks: []string{week25}}, `{"offer_id":"o1","application_id":"a1","pupil_id":"p1","weeks":["2026-W25"]}`},
		{&domain.ConventionSigned{ConventionID: "c1", DocumentHash: "h"}, `{"convention_id":"c1","document_hash":"h"}`},
	}
	for _, tt := range tests {
		b, err := domain.Encode(tt.e)
		if err != nil || string(b) != tt.want {
			t.Errorf("Encode(%T) = %s, %v; want %s", tt.e, b, err, tt.want)
		}
	}
	b, _ := domain.Encode(&domain.OfferPosted{OfferID: "o1"})
	if bytes.Contains(b, []byte("daily_hours")) {
		t.Errorf("an offer without daily hours encodes them: %s", b)
	}
}

func TestDecode(t *testing.T) {
	e, err := domain.Decode("SeatHeld", []byte(`{"offer_id":"o1","application_id":"a1","weeks":["2026-W25","2026-W26"],"extra":1}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &domain.SeatHeld{OfferID: "o1", ApplicationID: "a1", Weeks: []string{week25, week26}}
	if !reflect.DeepEqual(e, want) {
		t.Fatalf("Decode = %+v, want %+v", e, want)
	}

	for _, typ := range []string{"", "OfferCreated", "seatheld", "SeatHeld ", "$metadata"} {
		e, err := domain.Decode(typ, []byte(`{}`))
		if !errors.Is(err, domain.ErrUnknownEvent) || e != nil {
			t.Errorf("Decode(%q) = %v, %v; want ErrUnknownEvent", typ, e, err)
			continue
		}
		if !strings.Contains(err.Error(), strconv.Quote(typ)) {
			t.Errorf("error %q does not name the type %q", err, typ)
		}
	}

	bad := []struct{ typ, data string }{
		{"OfferPosted", ``},
		{"OfferPosted", `{`},
		{"OfferPosted", `[]`},
		{"OfferPosted", `{"seats":"three"}`},
		{"OfferPosted", `{"lat":"north"}`},
		{"ApplicationSubmitted", `{"submitted_at":"yesterday"}`},
		{"ConventionSignatureAdded", `{"signed_at":12}`},
		{"PupilRegistered", `{"guardians":{}}`},
		{"ApplicationWithdrawn", `{"seat_released":"yes"}`},
	}
	for _, tt := range bad {
		e, err := domain.Decode(tt.typ, []byte(tt.data))
		if err == nil || e != nil {
			t.Errorf("Decode(%s, %q) = %v, %v; want an error", tt.typ, tt.data, e, err)
			continue
		}
		if errors.Is(err, domain.ErrUnknownEvent) || !strings.Contains(err.Error(), tt.typ) {
			t.Errorf("Decode(%s, %q): error %q", tt.typ, tt.data, err)
		}
	}
}
