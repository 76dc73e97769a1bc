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
