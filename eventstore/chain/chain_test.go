package chain_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"passerelle/commands"
	"passerelle/domain"
	"passerelle/domain/refdata"
	"passerelle/eventstore/chain"
	"passerelle/eventstore/embedded"
)

// scenario writes a small placement history through the real command
// handlers; motivations carry markers the tests look for in the file.
func scenario(t *testing.T, dir string) (acceptedApp, lastApp string) {
	t.Helper()
	s := open(t, dir)
	defer s.Close()
	svc := commands.NewService(s, refdata.MustLoad())
	ctx := context.Background()
	n := 0
	meta := func() commands.Meta {
		n++
		return commands.Meta{CommandID: "c" + string(rune('A'+n)), Now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	}
	must := func(r commands.Result, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	emp := must(svc.RegisterEmployer(ctx, meta(), domain.RegisterEmployerInput{Name: "E", SIRET: "73282932000074", Kind: "public", CommuneCode: "94028", Address: "a"}))
	must(svc.RegisterSchool(ctx, meta(), domain.RegisterSchoolInput{UAI: "0941234A", Name: "S", Kind: "college", CommuneCode: "94028", EducationPriority: "none"}))
	pupil := func() string {
		return must(svc.RegisterPupil(ctx, meta(), domain.RegisterPupilInput{SchoolUAI: "0941234A", Grade: "3e", ClassName: "3e", FirstName: "P", LastName: "Q",
			BirthDate: "2011-05-01", Guardians: []domain.Guardian{{Name: "G", Email: "g@example.fr", Phone: "0600000000"}}}))
	}
	offer := must(svc.PostOffer(ctx, meta(), commands.PostOfferInput{EmployerID: emp, PostOfferInput: domain.PostOfferInput{
		Title: "t", Description: "d", Sector: "s1", Grades: []string{"3e"}, Weeks: []string{"2027-W05"}, Seats: 3,
		CommuneCode: "94028", Address: "a", Lat: 48.8, Lon: 2.4}}))
	apply := func(marker string) string {
		return must(svc.Apply(ctx, meta(), commands.ApplyInput{OfferID: offer, PupilID: pupil(),
			SubmitInput: domain.SubmitInput{Weeks: []string{"2027-W05"}, Motivation: marker}}))
	}
	acceptedApp = apply("MARKER-WITH-SUCCESSOR")
	must(svc.Accept(ctx, meta(), acceptedApp))
	lastApp = apply("MARKER-LAST-OF-STREAM")
	if _, err := chain.NewSealer(s, commands.Chained, nil).SealOnce(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := chain.Verify(ctx, s, commands.Chained)
	if err != nil || rep.Break != nil || rep.Seals != 1 || rep.Events == 0 {
		t.Fatalf("intact log: %+v, %v", rep, err)
	}
	return acceptedApp, lastApp
}

// flip changes one byte of every copy of marker in the store's file, as a
// disk fault or a hand edit would.
func flip(t *testing.T, dir, marker string) {
	t.Helper()
	path := filepath.Join(dir, embedded.FileName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := bytes.Count(b, []byte(marker))
	if n == 0 {
		t.Fatalf("%s not found in %s", marker, path)
	}
	b = bytes.ReplaceAll(b, []byte(marker), append([]byte("X"), marker[1:]...))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func open(t *testing.T, dir string) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func verify(t *testing.T, dir string) chain.Report {
	t.Helper()
	s := open(t, dir)
	defer s.Close()
	rep, err := chain.Verify(context.Background(), s, commands.Chained)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestVerifyNamesTamperedEvent(t *testing.T) {
	dir := t.TempDir()
	app, _ := scenario(t, dir)
	flip(t, dir, "MARKER-WITH-SUCCESSOR")
	rep := verify(t, dir)
	b := rep.Break
	if b == nil || b.Stream != domain.ApplicationStream(app) || b.Revision != 0 || b.Type != "ApplicationSubmitted" {
		t.Fatalf("verify after tampering: %+v", b)
	}
}

// The last event of a stream has no successor: the seal catches it.
func TestVerifyCatchesTamperedStreamHeadThroughSeal(t *testing.T) {
	dir := t.TempDir()
	_, last := scenario(t, dir)
	flip(t, dir, "MARKER-LAST-OF-STREAM")
	b := verify(t, dir).Break
	if b == nil || b.Stream != domain.ApplicationStream(last) || b.Revision != 0 {
		t.Fatalf("verify after tampering a stream head: %+v", b)
	}
}

func TestSealOnlyWhenSomethingChanged(t *testing.T) {
	dir := t.TempDir()
	scenario(t, dir)
	s := open(t, dir)
	defer s.Close()
	sealed, err := chain.NewSealer(s, commands.Chained, nil).SealOnce(context.Background())
	if err != nil || sealed {
		t.Fatalf("a second seal with nothing new: sealed=%v err=%v", sealed, err)
	}
}
