package desk

import (
	"slices"
	"testing"
	"time"
	"unsafe"

	"passerelle/domain"
	"passerelle/domain/refdata"
)

// TestSharedListsStayApart: offers posted with the same employer, sector,
// grades and weeks share one copy of each in the index, and a change to
// one offer (new weeks, a seat held) leaves the other's as they were.
func TestSharedListsStayApart(t *testing.T) {
	now := time.Date(2027, 1, 4, 9, 0, 0, 0, time.UTC)
	ix := New(refdata.MustLoad(), func() time.Time { return now })
	post := func(id string) *domain.OfferPosted {
		// each event its own strings and lists, as decoded from the log
		return &domain.OfferPosted{OfferID: id, EmployerID: string([]byte("emp-1")), EmployerName: string([]byte("Mairie")),
			EmployerKind: string([]byte("public")), Title: "Accueil", Sector: string([]byte("s12")), Seats: 2,
			CommuneCode: "94016", Department: "94", Lat: 48.79, Lon: 2.33,
			Grades: []domain.Grade{domain.Grade4e, domain.Grade3e}, Weeks: []string{"2027-W10", "2027-W09"}}
	}
	ix.Apply(Event{Position: 1, Data: post("a")}, Event{Position: 2, Data: post("b")})
	a, b := ix.offers["a"], ix.offers["b"]
	if !sameString(a.employerName, b.employerName) || !sameString(a.employerID, b.employerID) || !sameString(a.sector, b.sector) ||
		!sameString(a.kind, b.kind) || &a.grades[0] != &b.grades[0] || &a.weeks[0] != &b.weeks[0] {
		t.Fatal("two offers of the same employer, sector, grades and weeks hold their own copies")
	}
	if got := ix.weeks.namesOf(b.weeks); !slices.Equal(got, []string{"2027-W09", "2027-W10"}) {
		t.Fatalf("weeks of b: %v, want them sorted", got)
	}

	ix.Apply(Event{Position: 3, Data: &domain.OfferAmended{OfferID: "a", Title: "Accueil", Weeks: []string{"2027-W11"}, Seats: 2}},
		Event{Position: 4, Data: &domain.SeatHeld{OfferID: "b", ApplicationID: "app-1", PupilID: "p-1", Weeks: []string{"2027-W09"}}})
	if got := ix.weeks.namesOf(a.weeks); !slices.Equal(got, []string{"2027-W11"}) {
		t.Errorf("weeks of a after its amendment: %v", got)
	}
	if got := ix.weeks.namesOf(b.weeks); !slices.Equal(got, []string{"2027-W09", "2027-W10"}) {
		t.Errorf("weeks of b after a's amendment: %v", got)
	}
	if !slices.Equal(b.held, []int{1, 0}) || !slices.Equal(a.held, []int{0}) {
		t.Errorf("seats held: a %v, b %v; want only b's first week", a.held, b.held)
	}
	if !slices.Equal(a.grades, []domain.Grade{domain.Grade4e, domain.Grade3e}) {
		t.Errorf("grades of a: %v, in the order posted", a.grades)
	}
}

// sameString: a and b are one copy in memory.
func sameString(a, b string) bool { return len(a) > 0 && unsafe.StringData(a) == unsafe.StringData(b) }
