package readapi

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"passerelle/domain"
	"passerelle/projections"
)

// reencoded is what answering with raw used to give: the document decoded,
// its distance set when given, and encoded as api.WriteJSON encodes.
func reencoded(t testing.TB, raw string, dist *float64) ([]byte, bool) {
	t.Helper()
	var d projections.OfferDoc
	if json.Unmarshal([]byte(raw), &d) != nil {
		return nil, false
	}
	if dist != nil {
		d.DistanceKM = dist
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(d); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), true
}

// randomText mixes what encoding escapes, or writes otherwise than it
// reads: HTML characters, quotes, backslashes, control characters, line
// and paragraph separators, accents, emoji, invalid UTF-8.
func randomText(rng *rand.Rand) string {
	pieces := []string{"Boulangerie", " ", "é", "à", "R&D", "<b>", ">", "\"", "\\", "/", "\n", "\t", "\r", "\b", "\f",
		"\x00", "\x1f", "\x7f", "\u2028", "\u2029", "\ufffd", "😀", "\xff", "\xc3", "'", "«", "»", "0", "Œuvre"}
	var b strings.Builder
	for range rng.IntN(12) {
		b.WriteString(pieces[rng.IntN(len(pieces))])
	}
	return b.String()
}

func randomOfferDoc(rng *rand.Rand) projections.OfferDoc {
	maybe := func() bool { return rng.IntN(2) == 0 }
	text := func() string { return randomText(rng) }
	floats := []float64{0, math.Copysign(0, -1), 48.8566, 2.3522, 43.462656807173325, 1e-7, 1e21, 123456789.125, -5.5, 1, 100}
	d := projections.OfferDoc{
		ID: text(), Title: text(), Description: text(), EmployerID: text(), EmployerName: text(), Sector: text(),
		SeatsPerWeek: rng.IntN(5) - 1, SeatsTotal: rng.IntN(1000), SeatsAvailable: rng.IntN(3) - 1,
		CommuneCode: text(), Department: text(), Address: text(),
		Lat: floats[rng.IntN(len(floats))], Lon: floats[rng.IntN(len(floats))], Status: text(),
		Reserved:   domain.Reservation{REP: maybe(), QPV: maybe()},
		GroupSize:  rng.IntN(3),
		Collective: maybe(), MinGroupSize: rng.IntN(3), Deleted: maybe(),
		PostedAt: time.Date(2025, 9, 1+rng.IntN(28), rng.IntN(24), 0, 0, []int{0, 500_000_000, 123_456_789, 1}[rng.IntN(4)],
			[]*time.Location{time.UTC, time.FixedZone("", 3600), time.FixedZone("", -5400)}[rng.IntN(3)]),
	}
	if maybe() {
		d.Grades = []domain.Grade{}
		for range rng.IntN(3) {
			d.Grades = append(d.Grades, domain.Grade(text()))
		}
	}
	if maybe() {
		d.Weeks = []string{}
		d.SeatsByWeek = map[string]projections.WeekSeat{}
		for range rng.IntN(4) {
			// a key of invalid UTF-8 is sorted as it was, but read back
			// replaced: encoding it again may reorder the keys
			w := strings.ToValidUTF8(text(), "\ufffd")
			d.Weeks = append(d.Weeks, w)
			d.SeatsByWeek[w] = projections.WeekSeat{Total: rng.IntN(4), Available: rng.IntN(4)}
		}
	}
	if maybe() {
		d.Reserved.Schools = []string{text()}
	}
	if maybe() {
		d.DailyHours = &domain.DailyHours{Start: text(), End: text(), LunchBreakMinutes: rng.IntN(60)}
	}
	if maybe() {
		d.CoHosts = []domain.CoHost{{EmployerID: text(), Name: text()}, {}}
	}
	if maybe() {
		d.Partner = &domain.PartnerOffer{OperatorID: text(), RemoteID: text(), Permalink: "https://example.org/o?a=1&b=<2>",
			Street: text(), IsPublic: maybe(), DailyHours: map[string][]string{strings.ToValidUTF8(text(), "\ufffd"): {text()}, "lundi": nil}}
	}
	return d
}

// TestPassThroughAsEncoded passes documents as the projection writes them
// (json.Marshal) through, with and without a distance, and compares them
// with decoding and encoding them again: every one passes, the same.
func TestPassThroughAsEncoded(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		stored, err := json.Marshal(randomOfferDoc(rng))
		if err != nil {
			t.Fatal(err)
		}
		for _, dist := range []*float64{nil, new(0.0), new(3.14), new(1234.5), new(1e-7)} {
			want, _ := reencoded(t, string(stored), dist)
			var extra []byte
			if dist != nil {
				extra = appendFloat(nil, *dist)
			}
			got, ok := offerDocSchema.appendDoc([]byte("x"), string(stored), distanceField, extra)
			if !ok {
				t.Fatalf("document %d refused:\n%s", i, stored)
			}
			if !bytes.Equal(got[1:], want) || got[0] != 'x' {
				t.Fatalf("document %d:\nstored %s\ngot    %s\nwant   %s", i, stored, got[1:], want)
			}
			// checked, then remembered: the same both times
			known := newKnownDocs(offerDocSchema, distanceField, 8)
			for pass := range 2 {
				got, ok := known.appendDoc([]byte("x"), string(stored), extra)
				if !ok || !bytes.Equal(got[1:], want) || got[0] != 'x' {
					t.Fatalf("document %d, pass %d through the known documents (%v):\nstored %s\ngot    %s\nwant   %s", i, pass, ok, stored, got[1:], want)
				}
			}
			// remembered when it passes through as stored (json.Marshal
			// escapes the HTML characters a page leaves as they are)
			asStored, _ := reencoded(t, string(stored), nil)
			if remembered := len(known.marks) == 1; remembered != bytes.Equal(asStored, stored) {
				t.Fatalf("document %d remembered: %v, though it passes through as %s", i, remembered, asStored)
			}
		}
	}
}

// A document stored otherwise than encoding writes it (spaces, an escape
// written another way) passes through as encoding writes it, checked each
// time; one that does not pass is refused each time; past their limit,
// the documents remembered are forgotten.
func TestKnownDocs(t *testing.T) {
	known := newKnownDocs(offerDocSchema, distanceField, 2)
	spaced := strings.Replace(storedOffer, `"title":`, ` "title" : `, 1)
	escaped := strings.Replace(storedOffer, `Mairie`, `M\u0061irie`, 1)
	broken := strings.Replace(storedOffer, `"title":`, `"titel":`, 1)
	for _, raw := range []string{spaced, escaped} {
		want, _ := reencoded(t, raw, new(2.5))
		for pass := range 2 {
			if got, ok := known.appendDoc(nil, raw, appendFloat(nil, 2.5)); !ok || !bytes.Equal(got, want) {
				t.Fatalf("pass %d of %s: %v %s, want %s", pass, raw, ok, got, want)
			}
		}
	}
	for pass := range 2 {
		if got, ok := known.appendDoc([]byte("x"), broken, nil); ok || string(got) != "x" {
			t.Fatalf("pass %d of a field encoding does not write: %v %s, want it refused", pass, ok, got)
		}
	}
	if len(known.marks) != 0 {
		t.Fatalf("%d documents not stored as encoding writes them remembered", len(known.marks))
	}
	for _, id := range []string{"a", "b", "c"} {
		raw := strings.Replace(storedOffer, "5f971849", id, 1)
		// checked, then twice remembered: with a distance and without
		for pass, dist := range []*float64{new(2.5), new(0.25), nil} {
			var extra []byte
			if dist != nil {
				extra = appendFloat(nil, *dist)
			}
			want, _ := reencoded(t, raw, dist)
			if got, ok := known.appendDoc([]byte("x"), raw, extra); !ok || !bytes.Equal(got, append([]byte("x"), want...)) {
				t.Fatalf("pass %d of %s: %v %s, want %s", pass, raw, ok, got, want)
			}
			if _, remembered := known.marks[raw]; !remembered {
				t.Fatalf("pass %d of a document as encoding writes it: not remembered", pass)
			}
		}
	}
	if len(known.marks) != 1 {
		t.Fatalf("%d remembered past a limit of 2, want 1 (forgotten all at the third)", len(known.marks))
	}
}

// A document as the projection stores it, HTML characters and all, passes
// through as stored and is remembered.
func TestStoredDocsPassThroughAsStored(t *testing.T) {
	var d projections.OfferDoc
	if err := json.Unmarshal([]byte(storedOffer), &d); err != nil {
		t.Fatal(err)
	}
	d.Title, d.EmployerName = "Pain & viennoiseries <bio>", "Dupont & Fils"
	stored, err := projections.AppendJSON(nil, &d)
	if err != nil {
		t.Fatal(err)
	}
	known := newKnownDocs(offerDocSchema, distanceField, 4)
	for pass := range 2 {
		want, _ := reencoded(t, string(stored), new(1.5))
		if got, ok := known.appendDoc(nil, string(stored), appendFloat(nil, 1.5)); !ok || !bytes.Equal(got, want) {
			t.Fatalf("pass %d of %s: %v %s, want %s", pass, stored, ok, got, want)
		}
		if _, remembered := known.marks[string(stored)]; !remembered {
			t.Fatalf("pass %d: a document as the projection stores it is not remembered:\n%s", pass, stored)
		}
	}
}

// FuzzPassThrough checks that whatever a document passed through is, it is
// what decoding and encoding it again gives.
func FuzzPassThrough(f *testing.F) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 30 {
		b, _ := json.Marshal(randomOfferDoc(rng))
		f.Add(string(b))
	}
	b, _ := json.Marshal(randomOfferDoc(rng))
	doc := string(b)
	for _, edit := range [][2]string{
		{`"id":`, ` "id" : `}, {`"title":`, `"Title":`}, {`"title":`, `"extra":1,"title":`}, {`"status":`, `"group_size":0,"status":`},
		{`"collective":`, `"distance_km":1,"collective":`}, {`"lat":`, `"lat":1.0,"x":`}, {`"reserved":{`, `"reserved":null,"y":{`},
		{`Z"`, `.000Z"`}, {`"sector":"`, `"sector":"\u00e9\u003C\/\uD83D\uDE00`}, {`"seats_total":`, `"seats_total":-0,"z":`},
		{`"grades":`, `"grades":null,"w":`}, {`"rep":`, `"qpv":true,"rep":`}, {`{`, `{"id":"a",`}, {`}`, `}}`},
	} {
		f.Add(strings.Replace(doc, edit[0], edit[1], 1))
	}
	b, _ = json.Marshal(projections.OfferDoc{SeatsByWeek: map[string]projections.WeekSeat{"\xff": {}, "\ufffd\xff": {}, "\u2028": {}, "a": {}}})
	doc = string(b)
	for _, edit := range [][2]string{{``, ``}, {`"a":`, `"\u0061":`}, {`"a":`, `"\u2029":`}, {`"a":`, `"\u2028":`}} {
		f.Add(strings.Replace(doc, edit[0], edit[1], 1))
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, dist := range []*float64{nil, new(2.5)} {
			var extra []byte
			if dist != nil {
				extra = appendFloat(nil, *dist)
			}
			got, ok := offerDocSchema.appendDoc(nil, raw, distanceField, extra)
			known := newKnownDocs(offerDocSchema, distanceField, 4)
			for range 2 { // checked, then perhaps remembered
				if again, same := known.appendDoc(nil, raw, extra); same != ok || !bytes.Equal(again, got) {
					t.Fatalf("%q through the known documents: %v %s, checked: %v %s", raw, same, again, ok, got)
				}
			}
			if !ok {
				continue
			}
			want, decoded := reencoded(t, raw, dist)
			if !decoded || !bytes.Equal(got, want) {
				t.Fatalf("passed through %q as %s, decoding and encoding give %s (decoded: %v)", raw, got, want, decoded)
			}
		}
	})
}

// TestOfferPageAsEncoded compares a search's page, written by passing its
// documents through, with the page as it was encoded before: documents
// decoded, a missing one left out, one stored in a form encoding changes.
func TestOfferPageAsEncoded(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var raw []any
	var found []candidate
	for i := range 7 {
		d := randomOfferDoc(rng)
		d.ID = string(rune('a' + i))
		b, _ := json.Marshal(d)
		raw = append(raw, string(b))
		found = append(found, candidate{id: d.ID, dist: rng.Float64() * 30})
	}
	raw[2] = nil                                                                    // gone since it was found
	raw[4] = strings.Replace(raw[4].(string), `"title":`, `"title" : "x", "t":`, 1) // stored otherwise
	for _, near := range []bool{false, true} {
		type oldPage struct {
			Items      []projections.OfferDoc `json:"items"`
			Total      int                    `json:"total"`
			TotalExact bool                   `json:"total_exact"`
			Page       int                    `json:"page"`
			PerPage    int                    `json:"per_page"`
			Position   string                 `json:"position"`
		}
		old := oldPage{Items: []projections.OfferDoc{}, Total: 1234, Page: 3, PerPage: 7, Position: "98765"}
		for i, r := range raw {
			if r == nil {
				continue
			}
			var d projections.OfferDoc
			if err := json.Unmarshal([]byte(r.(string)), &d); err != nil {
				t.Fatal(err)
			}
			if near {
				dist := math.Round(found[i].dist*100) / 100
				d.DistanceKM = &dist
			}
			old.Items = append(old.Items, d)
		}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(old); err != nil {
			t.Fatal(err)
		}
		got, err := appendOfferPage(nil, searchResult{found: found, total: 1234, page: 3, perPage: 7, position: "98765"}, raw, near)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("near %v:\ngot  %s\nwant %s", near, got, want.Bytes())
		}
	}
	// a document that does not decode fails the page, as it did
	if _, err := appendOfferPage(nil, searchResult{found: found[:1]}, []any{""}, true); err == nil {
		t.Fatal("an empty document passed")
	}
	got, _ := appendOfferPage(nil, searchResult{exact: true, page: 1, perPage: 20, position: `a"<`}, nil, true)
	if want := `{"items":[],"total":0,"total_exact":true,"page":1,"per_page":20,"position":"a\"<"}` + "\n"; string(got) != want {
		t.Fatalf("empty page %s, want %s", got, want)
	}
}

type selfMarshalled struct{}

func (selfMarshalled) MarshalJSON() ([]byte, error) { return []byte("1"), nil }

// TestSchemaRefusesWhatItCannotPassThrough: a type that marshals itself,
// or holds such a type, has no schema.
func TestSchemaRefusesWhatItCannotPassThrough(t *testing.T) {
	for _, typ := range []reflect.Type{reflect.TypeFor[selfMarshalled](), reflect.TypeFor[struct {
		X []selfMarshalled `json:"x"`
	}](), reflect.TypeFor[struct {
		X uint `json:"x"`
	}](), reflect.TypeFor[struct {
		X []byte `json:"x"`
	}]()} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s has a schema", typ)
				}
			}()
			schemaOf(typ)
		}()
	}
}

// storedOffer is an offer's document as the projection stores it.
const storedOffer = `{"id":"5f971849-314f-4237-b678-c1734a0d861a","title":"Mairie : service état civil","description":"Au programme : cuisson, cuisson, clients.","employer_id":"7368e741-6394-4c01-857c-131331cb9ced","employer_name":"Entreprise 6","sector":"s4","grades":["4e","3e"],"weeks":["2026-W04","2026-W05"],"seats_per_week":2,"seats_total":4,"seats_available":3,"seats_by_week":{"2026-W04":{"total":2,"available":1},"2026-W05":{"total":2,"available":2}},"commune_code":"83118","department":"83","address":"2 avenue de la Gare","lat":43.462656807173325,"lon":6.850158864931583,"status":"open","reserved":{"rep":true,"qpv":false},"collective":false,"posted_at":"2025-09-23T08:02:28Z"}`

// BenchmarkOfferDoc compares passing an offer's document through with
// decoding and encoding it, with its distance.
func BenchmarkOfferDoc(b *testing.B) {
	b.Run("pass-through", func(b *testing.B) {
		b.ReportAllocs()
		out := make([]byte, 0, 4096)
		for b.Loop() {
			var ok bool
			if out, ok = offerDocSchema.appendDoc(out[:0], storedOffer, distanceField, appendFloat(nil, 3.14)); !ok {
				b.Fatal("refused")
			}
		}
	})
	b.Run("known", func(b *testing.B) {
		b.ReportAllocs()
		known := newKnownDocs(offerDocSchema, distanceField, 16)
		out := make([]byte, 0, 4096)
		for b.Loop() {
			var ok bool
			if out, ok = known.appendDoc(out[:0], storedOffer, appendFloat(nil, 3.14)); !ok {
				b.Fatal("refused")
			}
		}
	})
	b.Run("decode-encode", func(b *testing.B) {
		b.ReportAllocs()
		out := make([]byte, 0, 4096)
		for b.Loop() {
			var err error
			if out, err = appendDecoded(out[:0], storedOffer, "5f971849-314f-4237-b678-c1734a0d861a", 3.14, true); err != nil {
				b.Fatal(err)
			}
		}
	})
}
