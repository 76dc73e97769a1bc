package refdata

import "testing"

func TestLoad(t *testing.T) {
	d, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Communes) != 34976 || len(d.Departments) != 101 || len(d.Sectors) != 51 {
		t.Fatalf("counts: %d communes, %d départements, %d sectors", len(d.Communes), len(d.Departments), len(d.Sectors))
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
