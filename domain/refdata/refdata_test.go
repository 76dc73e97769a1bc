package refdata

import (
	"bytes"
	"encoding/csv"
	"reflect"
	"strconv"
	"testing"
)

func TestLoad(t *testing.T) {
	d, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if d.CommuneCount() != 34976 || len(d.Departments) != 101 || len(d.Sectors) != 51 {
		t.Fatalf("counts: %d communes, %d départements, %d sectors", d.CommuneCount(), len(d.Departments), len(d.Sectors))
	}
	c, ok := d.Commune("94028")
	if !ok || c.Department != "94" || c.Name != "Créteil" {
		t.Fatalf("94028 = %+v, %v", c, ok)
	}
	if a, ok := d.Commune("75101"); !ok || a.Department != "75" {
		t.Fatalf("Paris 1er arrondissement missing: %+v", a)
	}
	if _, ok := d.Sector("s51"); !ok {
		t.Fatal("s51 missing")
	}
	if _, ok := d.Sector("s52"); ok {
		t.Fatal("s52 should not exist")
	}
}

func TestCommuneOfPostalCode(t *testing.T) {
	d := MustLoad()
	for _, c := range []struct{ zip, city, want string }{
		{"75001", "Paris", "75056"},          // the commune, not its arrondissement
		{"94200", "Ivry-sur-Seine", "94041"}, // by its main postal code
		{"31200", "Toulouse", "31555"},       // another postal code of the city: by name in the département
		{"42100", "saint etienne", "42218"},  // folded name
		{"97400", "Saint-Denis", "97411"},    // overseas
		{"20000", "Ajaccio", "2A004"},        // Corsica
		{"01400", "Nom inconnu", "01093"},    // a name none of them has: the most populous
	} {
		got, ok := d.CommuneOfPostalCode(c.zip, c.city)
		if !ok || got.Code != c.want {
			t.Errorf("%s %s: %s %v, want %s", c.zip, c.city, got.Code, ok, c.want)
		}
	}
	for _, zip := range []string{"00000", "99999", "7500", "ABCDE"} {
		if c, ok := d.CommuneOfPostalCode(zip, "Paris"); ok {
			t.Errorf("%s: found %s", zip, c.Code)
		}
	}
	if !d.PostalCodeKnown("75001") || d.PostalCodeKnown("00000") {
		t.Error("PostalCodeKnown")
	}
}

// TestCommunesAsInTheFile reads communes.csv plainly and finds every row
// as Commune, CommuneDepartment and CommuneCentre give it, and Communes
// in code order; a code not in the file, or too long to pack, is found
// nowhere.
func TestCommunesAsInTheFile(t *testing.T) {
	d := MustLoad()
	rows, err := csv.NewReader(bytes.NewReader(communesCSV)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Commune{}
	for _, r := range rows[1:] {
		lat, _ := strconv.ParseFloat(r[5], 64)
		lon, _ := strconv.ParseFloat(r[6], 64)
		pop, _ := strconv.Atoi(r[7])
		want[r[0]] = Commune{Code: r[0], Name: r[1], Department: r[2], Region: r[3], PostalCode: r[4], Lat: lat, Lon: lon, Population: pop}
	}
	var last string
	n := 0
	for c := range d.Communes() {
		if c != want[c.Code] {
			t.Fatalf("Communes: %+v, the file has %+v", c, want[c.Code])
		}
		if c.Code <= last {
			t.Fatalf("Communes: %s after %s", c.Code, last)
		}
		last = c.Code
		n++
	}
	if n != len(want) {
		t.Fatalf("Communes yielded %d, the file has %d", n, len(want))
	}
	for code, w := range want {
		c, ok := d.Commune(code)
		dep, depOK := d.CommuneDepartment(code)
		lat, lon, centreOK := d.CommuneCentre(code)
		if !ok || c != w || !depOK || dep != w.Department || !centreOK || lat != w.Lat || lon != w.Lon {
			t.Fatalf("%s: %+v %v, %q %v, %v %v %v; want %+v", code, c, ok, dep, depOK, lat, lon, centreOK, w)
		}
	}
	for _, code := range []string{"", "9402", "940280", "94028 ", "abcdefgh", "2a004"} {
		if c, ok := d.Commune(code); ok {
			t.Errorf("Commune(%q) = %+v", code, c)
		}
		if _, ok := d.CommuneDepartment(code); ok {
			t.Errorf("CommuneDepartment(%q) found", code)
		}
	}
}

// TestCommunesHoldNoPointers guards what keeps the reference data cheap
// for the garbage collector: the communes and their indexes hold no
// pointer but the one string of their text.
func TestCommunesHoldNoPointers(t *testing.T) {
	if !hasPointers(reflect.TypeOf(Commune{})) || !hasPointers(reflect.TypeOf(map[string]int32{})) {
		t.Fatal("the check sees no pointer in a struct of strings or a map keyed by string")
	}
	for _, v := range []any{commune{}, keyed{}, map[uint64]int32{}} {
		if typ := reflect.TypeOf(v); hasPointers(typ) {
			t.Errorf("%v holds pointers", typ)
		}
	}
}

func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
		return false
	case reflect.Array:
		return hasPointers(t.Elem())
	case reflect.Map: // the map is one pointer; its entries are what counts
		return hasPointers(t.Key()) || hasPointers(t.Elem())
	case reflect.Pointer, reflect.Slice, reflect.String, reflect.Interface, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return true
	}
	return false
}
