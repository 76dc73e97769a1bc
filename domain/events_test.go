package domain_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"passerelle/domain"
	"passerelle/domain/allocation"
)

// sampleEvents holds one event of every registered type, every field set.
func sampleEvents() []domain.Event {
	partner := domain.PartnerOffer{OperatorID: "op-1", RemoteID: "vvmt-42", Permalink: "https://vvmt.example/offres/42",
		EmployerDescription: "Boulangerie de quartier", EmployerWebsite: "https://boulangerie.example", Street: "12 rue",
		Zipcode: "94200", City: "Ivry-sur-Seine", MaxCandidates: 4, IsPublic: true, HandicapAccessible: true,
		LunchBreak: "12:00-13:00", DailyHours: map[string][]string{"lundi": {"9:00", "16:00"}}, CommuneCentre: true}
	at := time.Date(2026, 6, 15, 8, 45, 12, 345000000, time.UTC)
	hash := strings.Repeat("0123456789abcdef", 4)
	other := strings.Repeat("fedcba9876543210", 4)
	hours := &domain.DailyHours{Start: "09:00", End: "16:00", LunchBreakMinutes: 60}
	tutor := &domain.Person{Name: "Paul Martin", Email: "paul@example.fr", Phone: "0145678901"}
	sealed := &domain.Sealed{Subject: "p1", Nonce: []byte{1, 2, 3, 4}, Ciphertext: []byte("\x00\xffchiffré")}
	return []domain.Event{
		&domain.EmployerRegistered{EmployerID: "e1", Name: "Boulangerie Martin", SIRET: "73282932000074", Kind: "company", CommuneCode: "94028", Department: "94", Address: "12 rue du Général Leclerc"},
		&domain.SchoolRegistered{UAI: "0941234A", Name: "Collège Louis Pasteur", Kind: "college", CommuneCode: "94028", Department: "94", EducationPriority: "rep_plus", QPV: true},
		&domain.PupilRegistered{PupilID: "p1", SchoolUAI: "0941234A", Department: "94", Grade: domain.Grade3e, ClassName: "3eB", GuardianCount: 2,
			FirstName: "Léa", LastName: "Martin", BirthDate: "2011-05-12",
			Guardians: []domain.Guardian{{Name: "Sophie Martin", Email: "s@example.fr", Phone: "0612345678"}, {Name: "Karim Martin", Email: "k@example.fr", Phone: "+33612345678"}},
			Sealed:    sealed, Erased: true},
		&domain.PupilForgotten{PupilID: "p1"},
		&domain.TargetSet{Scope: "department", Code: "94", Metric: "offers_open", Target: 100, SetAt: time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC)},
		&domain.OfferPosted{OfferID: "o1", EmployerID: "e1", EmployerName: "Boulangerie Martin", EmployerKind: "company", Title: "Fournil", Description: "Pain & <viennoiseries>",
			Sector: "s12", Grades: []domain.Grade{domain.Grade4e, domain.Grade3e}, Weeks: []string{week25, week26}, Seats: 3, CommuneCode: "94028", Department: "94",
			Address: "12 rue", Lat: 48.78454, Lon: 2.45233, Reserved: domain.Reservation{REP: true, QPV: true, Schools: []string{"0941234A"}},
			DailyHours: hours, GroupSize: 2, FamilyBusiness: true, Collective: true, MinGroupSize: 2, Partner: &partner,
			CoHosts: []domain.CoHost{{EmployerID: "e-2", Name: "Atelier du Val"}}},
		&domain.OfferAmended{OfferID: "o1", Title: "Fournil et vente", Description: "Pain, viennoiseries et vente", Weeks: []string{week25, week26, week27}, Seats: 4,
			Reserved: domain.Reservation{REP: true, Schools: []string{"0941234A", "0945678B"}}, DailyHours: hours, GroupSize: 2, FamilyBusiness: true, MinGroupSize: 3},
		&domain.OfferWithdrawn{OfferID: "o1", Reason: "travaux"},
		&domain.OfferReopened{OfferID: "o1"},
		&domain.SeatHeld{OfferID: "o1", ApplicationID: "a1", PupilID: "p1", Weeks: []string{week25}},
		&domain.SeatReleased{OfferID: "o1", ApplicationID: "a1", Weeks: []string{week25}},
		&domain.ApplicationSubmitted{ApplicationID: "a1", OfferID: "o1", EmployerID: "e1", PupilID: "p1", SchoolUAI: "0941234A", Grade: domain.Grade3e, Weeks: []string{week25},
			Motivation: "J'aime le pain.", SubmittedAt: at, Sealed: sealed, Erased: true,
			ProposedBy: &domain.Proposer{ID: "0941234A", Role: "school"}, BookingID: "b1"},
		&domain.ApplicationRead{ApplicationID: "a1"},
		&domain.ApplicationAccepted{ApplicationID: "a1", AcceptedAt: at},
		&domain.ApplicationRejected{ApplicationID: "a1", Reason: "complet"},
		&domain.ApplicationWithdrawn{ApplicationID: "a1", SeatReleased: true, Reason: "autre stage", PupilID: "p1", Sealed: sealed, Erased: true},
		&domain.ApplicationCancelled{ApplicationID: "a1", Reason: "fermeture"},
		&domain.ApplicationExpired{ApplicationID: "a1", SeatReleased: true, Rule: "not_confirmed_in_time"},
		&domain.ApplicationConfirmed{ApplicationID: "a1", ConventionID: "c1"},
		&domain.ApplicationOfferWithdrawn{ApplicationID: "a1"},
		&domain.PupilApplied{PupilID: "p1", ApplicationID: "a1", OfferID: "o1", Weeks: []string{week25, week26}},
		&domain.PupilWeeksReserved{PupilID: "p1", ApplicationID: "a1", Weeks: []string{week25, week26}},
		&domain.PupilWeeksReleased{PupilID: "p1", ApplicationID: "a1"},
		&domain.ConventionDrafted{ConventionID: "c1", ApplicationID: "a1", OfferID: "o1", EmployerID: "e1", EmployerName: "Boulangerie Martin", CoHosts: []domain.CoHost{{EmployerID: "e-2", Name: "Atelier du Val"}}, EmployerSIRET: "73282932000074",
			PupilID: "p1", SchoolUAI: "0941234A", SchoolName: "Collège Louis Pasteur", GuardianCount: 2, Weeks: []string{week25}, StartDate: "2026-06-15", EndDate: "2026-06-19",
			OfferTitle: "Fournil", Description: "Pain", Address: "12 rue", CommuneCode: "94028", DailyHours: hours, RequiredRoles: domain.RequiredRoles, DocumentHash: hash, DocumentVersion: "pdf-1",
			ClassName: "3eB", PupilFirstName: "Léa", PupilLastName: "Martin", Guardians: []domain.Guardian{{Name: "Sophie Martin", Email: "s@example.fr", Phone: "0612345678"}},
			Sealed: sealed, Erased: true},
		&domain.ConventionCompleted{ConventionID: "c1", Party: "school", Tutor: tutor, Activities: "Vente", ReferentTeacher: &domain.Person{Name: "Claire Petit", Email: "c@ac-creteil.fr", Phone: "0102030405"},
			BothGuardians: true, RequiredRoles: append(slices.Clone(domain.RequiredRoles), domain.RoleSecondGuardian), DocumentHash: other, DocumentVersion: "pdf-1"},
		&domain.ConventionSignatureAdded{ConventionID: "c1", Role: domain.RoleGuardian, SignerName: "Sophie Martin", DocumentHash: hash, SignedAt: at,
			PupilID: "p1", Guardian: 2, Sealed: sealed, Erased: true},
		&domain.ConventionSigned{ConventionID: "c1", DocumentHash: hash},
		&domain.ConventionCancelled{ConventionID: "c1", Reason: "fermeture"},
		&domain.OperatorEmployersLinked{OperatorID: "op-1", EmployerIDs: []string{"e1", "e2"}},
		&domain.OperatorRegistered{OperatorID: "op-1", Name: "Viens voir mon taf", Email: "api@vvmt.example",
			PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", Departments: []string{"75", "94"}},
		&domain.PartnerOfferChanged{OfferID: "o1", Partner: partner},
		&domain.OfferDeleted{OfferID: "o1"},
		&domain.PupilWishesRecorded{PupilID: "p1", Sectors: []string{"s12", "s3"}, MaxDistanceKM: 15, Weeks: []string{week25, week26}, Offers: []string{"o1"}},
		&domain.SeatsBooked{OfferID: "o1", BookingID: "b1", SchoolUAI: "0941234A", Weeks: []string{week25},
			Seats: []domain.BookedSeat{{ApplicationID: "a1", PupilID: "p1", Grade: domain.Grade3e}}},
		&domain.GroupBooked{BookingID: "b1", OfferID: "o1", EmployerID: "e1", SchoolUAI: "0941234A", Weeks: []string{week25},
			Seats: []domain.BookedSeat{{ApplicationID: "a1", PupilID: "p1", Grade: domain.Grade3e}}},
		&domain.CampaignCreated{CampaignID: "k1", Name: "Val-de-Marne 3e", Target: 900, CreatedAt: at,
			Scope: allocation.Scope{Departments: []string{"94"}, Communes: []string{"94028"}, Grades: []string{"3e"}, Weeks: []string{week25}}},
		&domain.RoundMatched{RoundID: "r1", Part: 1, Matches: []allocation.Match{{PupilID: "p1", OfferID: "o1", Weeks: []string{week25}}}},
		&domain.RoundComputed{RoundID: "r1", CampaignID: "k1", Seed: 42, MaxChoices: 10, Parts: 1, Matched: 1, ComputedAt: at,
			Figures: allocation.Figures{Pupils: 2, Placed: 1, PlacedByPriority: map[string]int{"rep": 1}, PupilsByPriority: map[string]int{"rep": 2},
				DistanceKMMedian: 1.5, DistanceKMP90: 2.5, Seats: 3, SeatsLeft: 2},
			FirstCome: allocation.Figures{Pupils: 2, Placed: 1, PlacedByPriority: map[string]int{"none": 1}, PupilsByPriority: map[string]int{"rep": 2},
				DistanceKMMedian: 1, DistanceKMP90: 1, Seats: 3, SeatsLeft: 2}},
		&domain.RoundPublished{RoundID: "r1", PublishedAt: at},
	}
}

// TestSampleEventsEveryField: each sample sets every field, so that the
// round trip below covers the whole schema.
func TestSampleEventsEveryField(t *testing.T) {
	for _, e := range sampleEvents() {
		v := reflect.ValueOf(e).Elem()
		for i := range v.NumField() {
			if v.Field(i).IsZero() {
				t.Errorf("%s: field %s is not set", e.EventType(), v.Type().Field(i).Name)
			}
		}
	}
}

func TestSampleEventsCoverRegistry(t *testing.T) {
	var sampled []string
	for _, e := range sampleEvents() {
		sampled = append(sampled, e.EventType())
	}
	slices.Sort(sampled)
	if got := domain.EventTypes(); !slices.Equal(got, sampled) {
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
		{&domain.ApplicationWithdrawn{ApplicationID: "a1", Reason: "x"}, `{"application_id":"a1","seat_released":false,"reason":"x"}`},
		{&domain.ApplicationExpired{ApplicationID: "a1", Rule: "no_employer_answer"}, `{"application_id":"a1","seat_released":false,"rule":"no_employer_answer"}`},
		{&domain.PupilWeeksReserved{PupilID: "p1", ApplicationID: "a1", Weeks: []string{week25}}, `{"pupil_id":"p1","application_id":"a1","weeks":["2026-W25"]}`},
		{&domain.ConventionSignatureAdded{ConventionID: "c1", Role: domain.RoleSecondGuardian, SignerName: "K", DocumentHash: "h", SignedAt: time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)},
			`{"convention_id":"c1","role":"second_guardian","signer_name":"K","document_hash":"h","signed_at":"2026-06-01T08:00:00Z"}`},
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

// Decode reads stored events exactly as encoding/json would, including
// what its faster decoder alone would read otherwise or refuse.
func TestDecodeAsEncodingJSON(t *testing.T) {
	for _, e := range sampleEvents() {
		b, err := domain.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(b, &fields); err != nil {
			t.Fatal(err)
		}
		first := slices.Sorted(maps.Keys(fields))[0]
		variants := map[string][]byte{
			"as stored":          b,
			"names in capitals":  bytes.ToUpper(b),
			"a name given twice": append([]byte(`{"`+first+`":`+string(fields[first])+`,`), b[1:]...),
			"invalid UTF-8":      bytes.Replace(b, []byte(`":"`), []byte("\":\"\xff"), 1),
			"nulls and unknown":  append([]byte(`{"`+first+`":null,"not_a_field":[1,{"a":2}],`), b[1:]...),
		}
		for name, data := range variants {
			got, gotErr := domain.Decode(e.EventType(), data)
			want := reflect.New(reflect.TypeOf(e).Elem()).Interface()
			wantErr := json.Unmarshal(data, want)
			if (gotErr != nil) != (wantErr != nil) {
				t.Errorf("%s, %s: Decode error %v, encoding/json error %v", e.EventType(), name, gotErr, wantErr)
				continue
			}
			if gotErr == nil && !reflect.DeepEqual(got, want) {
				t.Errorf("%s, %s: Decode = %+v\nencoding/json = %+v", e.EventType(), name, got, want)
			}
		}
	}
}

// BenchmarkDecode decodes one stored event of every type, against
// encoding/json decoding the same bytes in the same run.
func BenchmarkDecode(b *testing.B) {
	type stored struct {
		typ  string
		data []byte
		into func() any
	}
	var events []stored
	for _, e := range sampleEvents() {
		data, err := domain.Encode(e)
		if err != nil {
			b.Fatal(err)
		}
		typ := reflect.TypeOf(e).Elem()
		events = append(events, stored{e.EventType(), data, func() any { return reflect.New(typ).Interface() }})
	}
	b.Run("Decode", func(b *testing.B) {
		for b.Loop() {
			for _, e := range events {
				if _, err := domain.Decode(e.typ, e.data); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			for _, e := range events {
				if err := json.Unmarshal(e.data, e.into()); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// TestUnmarshalAsEncodingJSON decodes a value with the kinds of fields
// the read models and sealed data hold, and variants of it that
// encoding/json accepts and the JSON v2 decoder refuses, as encoding/json
// does.
func TestUnmarshalAsEncodingJSON(t *testing.T) {
	type inner struct {
		Name string `json:"name"`
	}
	type doc struct {
		inner
		ID     string            `json:"id"`
		N      int               `json:"n,omitempty"`
		F      float64           `json:"f"`
		Tags   []string          `json:"tags"`
		Counts map[string]int    `json:"counts"`
		Ref    *inner            `json:"ref,omitempty"`
		At     time.Time         `json:"at"`
		Raw    json.RawMessage   `json:"raw,omitempty"`
		Skip   string            `json:"-"`
		Nested map[string]inner  `json:"nested"`
		Flags  map[string]bool   `json:"flags,omitempty"`
		Any    map[string]any    `json:"any,omitempty"`
		Lists  map[string][]int  `json:"lists,omitempty"`
		Sealed *domain.Sealed    `json:"sealed,omitempty"`
		Opt    *string           `json:"opt"`
		Words  [2]string         `json:"words"`
		Note   string            `json:"note,omitempty"`
		Empty  struct{}          `json:"empty"`
		Big    uint64            `json:"big"`
		Neg    int64             `json:"neg"`
		Extra  map[string]string `json:"extra,omitempty"`
	}
	opt := "é"
	v := doc{inner: inner{"Zoé"}, ID: "o1", N: 3, F: 2.5, Tags: []string{"a", "b"}, Counts: map[string]int{"2030-W05": 2},
		Ref: &inner{"x"}, At: time.Date(2030, 1, 28, 9, 0, 0, 0, time.UTC), Raw: json.RawMessage(`{"k":[1,2]}`),
		Nested: map[string]inner{"a": {"b"}}, Flags: map[string]bool{"rep": true}, Any: map[string]any{"x": 1.5, "y": "z"},
		Lists: map[string][]int{"l": {1, 2}}, Sealed: &domain.Sealed{Subject: "p1", Nonce: []byte{1, 2}, Ciphertext: []byte{3}},
		Opt: &opt, Words: [2]string{"u", "v"}, Big: 1 << 60, Neg: -7, Extra: map[string]string{"<b>": "&"}}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	variants := map[string][]byte{
		"as stored":          b,
		"names in capitals":  bytes.ToUpper(b),
		"a name given twice": append([]byte(`{"id":"o0","counts":{"2030-W06":9},`), b[1:]...),
		"invalid UTF-8":      bytes.Replace(b, []byte(`"name":"`), []byte("\"name\":\"\xff"), 1),
		"nulls and unknown":  append([]byte(`{"tags":null,"not_a_field":[1,{"a":2}],`), b[1:]...),
		"a wrong type":       bytes.Replace(b, []byte(`"n":3`), []byte(`"n":"3"`), 1),
		"not JSON":           b[:len(b)-1],
	}
	for name, data := range variants {
		var got, want doc
		gotErr, wantErr := domain.Unmarshal(data, &got), json.Unmarshal(data, &want)
		if (gotErr != nil) != (wantErr != nil) {
			t.Errorf("%s: Unmarshal error %v, encoding/json error %v", name, gotErr, wantErr)
			continue
		}
		if gotErr == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Unmarshal = %+v\nencoding/json = %+v", name, got, want)
		}
	}
}
