package chain_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"passerelle/commands"
	"passerelle/domain"
	"passerelle/domain/refdata"
	"passerelle/eventstore"
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

// Events after the last seal are counted as unsealed, and their links are
// checked: an edit of one with a successor is named by verify, and the
// sealer refuses to vouch for it.
func TestUnsealedTail(t *testing.T) {
	dir := t.TempDir()
	scenario(t, dir)
	s := open(t, dir)
	svc := commands.NewService(s, refdata.MustLoad())
	ctx := context.Background()
	m := func(id string) commands.Meta {
		return commands.Meta{CommandID: id, Now: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)}
	}
	emp, err := svc.RegisterEmployer(ctx, m("tail-1"), domain.RegisterEmployerInput{Name: "TAIL-MARKER-EMPLOYER", SIRET: "44201123456701", Kind: "public", CommuneCode: "94028", Address: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.WithdrawOffer(ctx, m("tail-2"), "00000000-0000-0000-0000-000000000000", ""); err == nil {
		t.Fatal("withdrawing an unknown offer")
	}
	s.Close()
	rep := verify(t, dir)
	if rep.Break != nil || rep.Unsealed != 1 || rep.Seals != 1 {
		t.Fatalf("a log with one unsealed event: %+v", rep)
	}
	// a seal vouches for the tail: with it, nothing is unsealed
	s = open(t, dir)
	if ok, err := chain.NewSealer(s, commands.Chained, nil).SealOnce(ctx); !ok || err != nil {
		t.Fatalf("sealing the tail: %v %v", ok, err)
	}
	svc = commands.NewService(s, refdata.MustLoad())
	offer, err := svc.PostOffer(ctx, m("tail-3"), commands.PostOfferInput{EmployerID: emp.ID, PostOfferInput: domain.PostOfferInput{
		Title: "TAIL-MARKER-TITLE", Description: "d", Sector: "s1", Grades: []string{"3e"}, Weeks: []string{"2027-W05"}, Seats: 3,
		CommuneCode: "94028", Address: "a", Lat: 48.8, Lon: 2.4}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.WithdrawOffer(ctx, m("tail-4"), offer.ID, "closed"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if rep := verify(t, dir); rep.Break != nil || rep.Unsealed != 2 || rep.Seals != 2 {
		t.Fatalf("after sealing the tail and writing two events: %+v", rep)
	}
	flip(t, dir, "TAIL-MARKER-TITLE")
	b := verify(t, dir).Break
	if b == nil || b.Stream != domain.OfferStream(offer.ID) || b.Revision != 0 || b.Type != "OfferPosted" {
		t.Fatalf("an edit in the unsealed tail: %+v", b)
	}
	s = open(t, dir)
	defer s.Close()
	sealed, err := chain.NewSealer(s, commands.Chained, nil).SealOnce(ctx)
	var broken *chain.Break
	if sealed || !errors.As(err, &broken) || broken.Stream != domain.OfferStream(offer.ID) {
		t.Fatalf("sealing a tampered tail: sealed %v, %v", sealed, err)
	}
}

// A log with more changed streams than a seal names gets several seals in
// a row, each within its bound; verify walks them all and still catches
// an edited stream head through the seal that names it.
func TestSealsAreBounded(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	svc := commands.NewService(s, refdata.MustLoad())
	ctx := context.Background()
	var employers []string
	for i, siret := range []string{"73282932000009", "73282932000017", "73282932000025", "73282932000033", "73282932000041"} {
		r, err := svc.RegisterEmployer(ctx, commands.Meta{CommandID: "bounded-" + siret, Now: time.Date(2026, 12, 1, 9, i, 0, 0, time.UTC)},
			domain.RegisterEmployerInput{Name: "BOUNDED-MARKER-" + string(rune('A'+i)), SIRET: siret, Kind: "public", CommuneCode: "94028", Address: "a"})
		if err != nil {
			t.Fatal(err)
		}
		employers = append(employers, r.ID)
	}
	sealer := chain.NewSealer(s, commands.Chained, nil)
	sealer.MaxHeads = 2
	n, err := sealer.SealAll(ctx)
	if err != nil || n != 3 {
		t.Fatalf("sealing 5 streams two at a time: %d seals, %v", n, err)
	}
	seals, err := s.ReadStream(ctx, chain.SealStream, eventstore.Forwards, 0, 10)
	if err != nil || len(seals) != 3 {
		t.Fatalf("seal stream: %d events, %v", len(seals), err)
	}
	for _, e := range seals {
		var seal chain.Seal
		if err := json.Unmarshal(e.Data, &seal); err != nil || len(seal.Heads) == 0 || len(seal.Heads) > 2 {
			t.Fatalf("seal %d names %d streams (%v)", e.Revision, len(seal.Heads), err)
		}
	}
	if n, err := sealer.SealAll(ctx); err != nil || n != 0 {
		t.Fatalf("sealing again with nothing new: %d seals, %v", n, err)
	}
	s.Close()
	if rep := verify(t, dir); rep.Break != nil || rep.Seals != 3 || rep.Unsealed != 0 {
		t.Fatalf("a log under three seals: %+v", rep)
	}
	flip(t, dir, "BOUNDED-MARKER-C") // the third stream: named by the second seal
	b := verify(t, dir).Break
	if b == nil || b.Stream != domain.EmployerStream(employers[2]) || b.Revision != 0 {
		t.Fatalf("an edited head under the second seal: %+v", b)
	}
}

// A seal naming SealHeads streams of long names fits in one append.
func TestSealHeadsFitInAnAppend(t *testing.T) {
	seal := chain.Seal{UpTo: "18446744073709551615", Heads: map[string]chain.Head{}, Previous: strings.Repeat("f", 64)}
	for i := range chain.SealHeads {
		seal.Heads[fmt.Sprintf("convention-%08d-0000-0000-0000-000000000000-with-a-longer-name", i)] = chain.Head{Revision: 1 << 40, Hash: strings.Repeat("f", 64)}
	}
	data, err := json.Marshal(seal)
	if err != nil || len(data)+1024 > eventstore.DefaultMaxAppendSize {
		t.Fatalf("a full seal is %d bytes (%v), the most an append holds is %d", len(data), err, eventstore.DefaultMaxAppendSize)
	}
}

// predecessorReads counts the reads of one event forwards from a given
// revision: a sealer's reads of a stream's event before the first it walks.
type predecessorReads struct {
	*embedded.Store
	n int
}

func (p *predecessorReads) ReadStream(ctx context.Context, stream string, dir eventstore.Direction, from uint64, max int) ([]eventstore.RecordedEvent, error) {
	if dir == eventstore.Forwards && stream != chain.SealStream {
		p.n++
	}
	return p.Store.ReadStream(ctx, stream, dir, from, max)
}

// A sealer keeps the streams it walked from one seal to the next: the
// links of their next events are checked without reading the store; once
// another sealer sealed in between, it reads them again, and a log
// sealed in turns by both stays intact.
func TestSealerKeepsHeadsBetweenSeals(t *testing.T) {
	dir := t.TempDir()
	s := &predecessorReads{Store: open(t, dir)}
	svc := commands.NewService(s, refdata.MustLoad())
	ctx := context.Background()
	n := 0
	meta := func() commands.Meta {
		n++
		return commands.Meta{CommandID: fmt.Sprintf("keep-%d", n), Now: time.Date(2026, 12, 1, 9, n, 0, 0, time.UTC)}
	}
	emp, err := svc.RegisterEmployer(ctx, meta(), domain.RegisterEmployerInput{Name: "E", SIRET: "73282932000074", Kind: "public", CommuneCode: "94028", Address: "a"})
	if err != nil {
		t.Fatal(err)
	}
	offer, err := svc.PostOffer(ctx, meta(), commands.PostOfferInput{EmployerID: emp.ID, PostOfferInput: domain.PostOfferInput{
		Title: "t", Description: "d", Sector: "s1", Grades: []string{"3e"}, Weeks: []string{"2027-W05"}, Seats: 3,
		CommuneCode: "94028", Address: "a", Lat: 48.8, Lon: 2.4}})
	if err != nil {
		t.Fatal(err)
	}
	amend := func() {
		t.Helper()
		title := fmt.Sprintf("title %d", n)
		if _, err := svc.AmendOffer(ctx, meta(), offer.ID, domain.AmendOfferInput{Title: &title}); err != nil {
			t.Fatal(err)
		}
	}
	sealer, other := chain.NewSealer(s, commands.Chained, nil), chain.NewSealer(s, commands.Chained, nil)
	sealOnce := func(sl *chain.Sealer) int {
		t.Helper()
		before := s.n
		if k, err := sl.SealAll(ctx); err != nil || k != 1 {
			t.Fatalf("%d seals, %v; want one", k, err)
		}
		return s.n - before
	}
	if reads := sealOnce(sealer); reads != 0 {
		t.Fatalf("first seal of new streams read %d predecessors", reads)
	}
	amend()
	if reads := sealOnce(sealer); reads != 0 {
		t.Fatalf("the offer's next event was checked by reading %d predecessors, want its kept head", reads)
	}
	amend()
	sealOnce(other) // the first sealer's heads are now behind
	amend()
	if reads := sealOnce(sealer); reads != 1 {
		t.Fatalf("after another sealer's seal: %d predecessors read, want the offer's one", reads)
	}
	amend()
	if reads := sealOnce(sealer); reads != 0 {
		t.Fatalf("back to its own seals: %d predecessors read", reads)
	}
	s.Close()
	if rep := verify(t, dir); rep.Break != nil || rep.Seals != 5 || rep.Unsealed != 0 {
		t.Fatalf("a log sealed in turns by two sealers: %+v", rep)
	}
}

// A sealer takes up where its own last seal ended without decoding it
// again: a seal of many streams is large (SealHeads of them, about 530
// KB), and a busy log gets one every few seconds.
func TestSealerTrustsItsOwnLastSeal(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	ctx := context.Background()
	const streams = 1000
	var wg sync.WaitGroup
	for i := range streams {
		wg.Go(func() {
			id := fmt.Sprintf("own-%d", i)
			if _, err := s.Append(ctx, "target-"+id, eventstore.NoStream, eventstore.EventData{ID: eventstore.EventID(id, 0), Type: "Targeted",
				Data: []byte(`{}`), Metadata: eventstore.Metadata{CommandID: id, OccurredAt: time.Now().UTC()}.Encode()}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	sealer := chain.NewSealer(s, commands.Chained, nil)
	if n, err := sealer.SealAll(ctx); err != nil || n != 1 {
		t.Fatalf("sealing %d streams: %d seals, %v", streams, n, err)
	}
	// with nothing new, a seal reads the last one and walks nothing;
	// decoding the last one would take an allocation or more a stream
	allocs := testing.AllocsPerRun(3, func() {
		if sealed, err := sealer.SealOnce(ctx); sealed || err != nil {
			t.Fatalf("nothing new: sealed %v, %v", sealed, err)
		}
	})
	if allocs >= streams {
		t.Fatalf("looking for the next seal's start after its own seal of %d streams took %.0f allocations", streams, allocs)
	}
	s.Close()
	if rep := verify(t, dir); rep.Break != nil || rep.Seals != 1 || rep.Unsealed != 0 {
		t.Fatalf("the sealed log: %+v", rep)
	}
}
