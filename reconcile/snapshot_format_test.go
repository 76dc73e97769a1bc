package reconcile

import (
	"bytes"
	"context"
	"encoding/gob"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/eventstore/embedded"
)

// randomView is a view of n applications with every field set at random,
// empty strings and no weeks among them.
func randomView(r *rand.Rand, n int) *View {
	v := NewView()
	v.Position = eventstore.Position(r.Uint64() >> r.UintN(64))
	str := func() string {
		if r.IntN(8) == 0 {
			return ""
		}
		return uuid.NewString()
	}
	for range n {
		p := record{Offer: str(), Pupil: str(), Status: str(), Tracked: r.IntN(2) == 0, Seat: r.IntN(2) == 0,
			PupilWeeks: r.IntN(2) == 0, Convention: str(), Booking: str(), Last: eventstore.Position(r.Uint64())}
		for range r.IntN(4) {
			p.Weeks = append(p.Weeks, fmt.Sprintf("2027-W%02d", 1+r.IntN(52)))
		}
		v.put(uuid.NewString(), p)
		if r.IntN(3) == 0 {
			v.convs[v.ids.ref(uuid.NewString())] = v.ids.ref(str())
		}
		v.withdrawn[v.ids.ref(uuid.NewString())] = r.IntN(2) == 0
		v.forgotten[v.ids.ref(uuid.NewString())] = r.IntN(2) == 0
		v.seats[v.ids.ref(uuid.NewString())] = r.IntN(20) - 5
	}
	return v
}

// viewContents is what a view holds, spelled out.
type viewContents struct {
	Position             eventstore.Position
	Apps                 map[string]record
	Convs                map[string]string
	Withdrawn, Forgotten map[string]bool
	Seats                map[string]int
	ByOffer, ByPupil     map[string][]string
}

func contents(v *View) viewContents {
	c := viewContents{Position: v.Position, Apps: map[string]record{}, Convs: map[string]string{},
		Withdrawn: map[string]bool{}, Forgotten: map[string]bool{}, Seats: map[string]int{},
		ByOffer: map[string][]string{}, ByPupil: map[string][]string{}}
	for i := range v.places {
		c.Apps[v.ids.name(v.places[i].id)] = v.record(int32(i))
	}
	for k, a := range v.convs {
		c.Convs[v.ids.name(k)] = v.ids.name(a)
	}
	for k, b := range v.withdrawn {
		c.Withdrawn[v.ids.name(k)] = b
	}
	for k, b := range v.forgotten {
		c.Forgotten[v.ids.name(k)] = b
	}
	for k, n := range v.seats {
		c.Seats[v.ids.name(k)] = n
	}
	for k, l := range v.byOffer {
		c.ByOffer[v.ids.name(k)] = v.IDs(v.touched(l, ofOffer))
	}
	for k, l := range v.byPupil {
		c.ByPupil[v.ids.name(k)] = v.IDs(v.touched(l, ofPupil))
	}
	return c
}

func writeTo(t testing.TB, file, log string, v *View) []byte {
	var buf bytes.Buffer
	if err := writeSnapshot(&buf, log, v); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSnapshotRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	file := filepath.Join(t.TempDir(), "snap")
	for _, n := range []int{0, 1, 7, 3000} {
		v := randomView(r, n)
		writeTo(t, file, "log-"+fmt.Sprint(n), v)
		log, got, err := readSnapshot(file)
		if err != nil {
			t.Fatalf("%d applications: %v", n, err)
		}
		if log != "log-"+fmt.Sprint(n) || !reflect.DeepEqual(contents(got), contents(v)) {
			t.Fatalf("%d applications: read back differs (log %q)", n, log)
		}
	}
}

// Any byte changed, or the file cut short anywhere, and the snapshot is
// refused, never read as another view.
func TestSnapshotDamageRefused(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	file := filepath.Join(t.TempDir(), "snap")
	good := writeTo(t, file, "log", randomView(r, 50))
	for i := range 300 {
		b := bytes.Clone(good)
		at := r.IntN(len(b))
		if i%2 == 0 {
			b[at] ^= byte(1 + r.IntN(255))
		} else {
			b = b[:at]
		}
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := readSnapshot(file); err == nil {
			t.Fatalf("damage %d at byte %d of %d read without error", i, at, len(good))
		}
	}
	// a snapshot of the previous format (gob) is refused too
	var old bytes.Buffer
	if err := gob.NewEncoder(&old).Encode(gobSnapshot{Version: 2, Log: "log", View: contents(randomView(r, 5))}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, old.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readSnapshot(file); err == nil {
		t.Fatal("a gob snapshot read as this format")
	}
}

// After a save that took long, the next waits twenty times as long; a
// quick one leaves the interval as it is.
func TestSaveSpacedByItsLength(t *testing.T) {
	ctx := context.Background()
	store, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.Append(ctx, "offer-1", eventstore.Any, eventstore.EventData{ID: uuid.New(), Type: "X", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "snap")
	r := New(store, nil, file, nil)
	r.view.Position = 1
	r.savedAt, r.saveTook = time.Now(), time.Second
	if saved := r.saveIfChanged(ctx, 0); saved != 0 {
		t.Fatalf("saved at %d a second after a save that took a second", saved)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("snapshot written: %v", err)
	}
	r.savedAt = time.Now().Add(-21 * time.Second)
	if saved := r.saveIfChanged(ctx, 0); saved != 1 {
		t.Fatalf("not saved 21 s after a save that took a second (saved %d)", saved)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatal(err)
	}
	if r.saveTook >= time.Second {
		t.Fatalf("a save of an empty view took %v", r.saveTook)
	}
}

// gobSnapshot is the previous format, the baseline of BenchmarkSnapshot.
type gobSnapshot struct {
	Version int
	Log     string
	View    viewContents
}

var benchApps = flag.Int("apps", 100_000, "applications in BenchmarkSnapshot's view")

// BenchmarkSnapshot writes and reads back a snapshot of a view of -apps
// applications (100,000 unless told), and the same with gob, the format
// before, in the same run:
//
//	go test -run XXX -bench BenchmarkSnapshot -benchtime 3x -benchmem ./reconcile [-args -apps 1000000]
func BenchmarkSnapshot(b *testing.B) {
	v := randomView(rand.New(rand.NewPCG(1, 2)), *benchApps)
	file, gobFile := filepath.Join(b.TempDir(), "snap"), filepath.Join(b.TempDir(), "gob")
	write := func() {
		f, err := os.Create(file)
		if err != nil {
			b.Fatal(err)
		}
		if err := writeSnapshot(f, "log", v); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
	gobView := contents(v)
	writeGob := func() {
		var buf bytes.Buffer
		if err := gob.NewEncoder(&buf).Encode(gobSnapshot{Version: 2, Log: "log", View: gobView}); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(gobFile, buf.Bytes(), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	size := func(file string) float64 {
		st, err := os.Stat(file)
		if err != nil {
			b.Fatal(err)
		}
		return float64(st.Size()) / 1e6
	}
	write()
	writeGob()
	b.Run("write", func(b *testing.B) {
		for b.Loop() {
			write()
		}
		b.ReportMetric(size(file), "MB")
	})
	b.Run("read", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := readSnapshot(file); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("gob-write", func(b *testing.B) {
		for b.Loop() {
			writeGob()
		}
		b.ReportMetric(size(gobFile), "MB")
	})
	b.Run("gob-read", func(b *testing.B) {
		for b.Loop() {
			raw, err := os.ReadFile(gobFile)
			if err != nil {
				b.Fatal(err)
			}
			var s gobSnapshot
			if err := gob.NewDecoder(bytes.NewReader(raw)).Decode(&s); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Placements read back refer to one entry of the view's tables for their
// offer, their pupil, their status and their weeks: a national view holds
// 3.2 million of them.
func TestSnapshotSharesWhatPlacementsHoldAlike(t *testing.T) {
	v := NewView()
	for _, id := range []string{"app-1", "app-2"} {
		v.put(id, record{Offer: "offer-1", Pupil: "pupil-1", Status: "submitted", Weeks: []string{"2027-W05", "2027-W06"}})
	}
	file := filepath.Join(t.TempDir(), "snap")
	writeTo(t, file, "log", v)
	_, got, err := readSnapshot(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.places) != 2 || len(got.ids.bytes) != 5 || len(got.weekLists) != 2 || len(got.words.strs) != 4 {
		t.Fatalf("read back %d placements, %d IDs, %d lists of weeks, %d values; want 2, 5 (none, two applications, "+
			"an offer, a pupil), 2 (none, one) and 4 (none, a status, two weeks)",
			len(got.places), len(got.ids.bytes), len(got.weekLists), len(got.words.strs))
	}
	a, b := got.places[0], got.places[1]
	if a.offer != b.offer || a.pupil != b.pupil || a.status != b.status || a.weeks != b.weeks {
		t.Fatalf("two placements of one pupil on one offer refer to entries of their own: %+v, %+v", a, b)
	}
	if rec, _ := got.lookUp("app-2"); !reflect.DeepEqual(rec, record{Offer: "offer-1", Pupil: "pupil-1", Status: "submitted",
		Weeks: []string{"2027-W05", "2027-W06"}}) {
		t.Fatalf("read back %+v", rec)
	}
}

// Each ID is held once and spelled back as it was given: a canonical
// UUID as its 16 bytes, any other form of ID as a string.
func TestIDTableSpellsIDsBack(t *testing.T) {
	ids := newIDTable()
	canonical := uuid.NewString()
	given := []string{canonical, strings.ToUpper(uuid.NewString()), "{" + uuid.NewString() + "}", "app-1",
		strings.ReplaceAll(uuid.NewString(), "-", "x"), "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz", uuid.Nil.String()}
	refs := map[ref]bool{}
	for _, id := range given {
		r := ids.ref(id)
		if refs[r] || r == 0 {
			t.Fatalf("%q: reference %d given before", id, r)
		}
		refs[r] = true
		if again := ids.ref(id); again != r {
			t.Fatalf("%q held twice: %d then %d", id, r, again)
		}
		if found, ok := ids.find(id); !ok || found != r {
			t.Fatalf("%q not found (%d, %v)", id, found, ok)
		}
		if got := ids.name(r); got != id {
			t.Fatalf("%q spelled back %q", id, got)
		}
	}
	if len(ids.uuids) != 2 || len(ids.others) != len(given)-2 {
		t.Fatalf("%d IDs held as bytes, %d as strings; want 2 (%s and the nil UUID) and %d", len(ids.uuids), len(ids.others), canonical, len(given)-2)
	}
	if _, ok := ids.find(uuid.NewString()); ok {
		t.Fatal("an ID never given found")
	}
	if ids.ref("") != 0 || ids.name(0) != "" {
		t.Fatal("the empty ID is not reference 0")
	}
}

// An event naming no application or no convention is held under the
// empty ID: an application or a convention the view never saw is not
// taken for it.
func TestUnknownIDsAreNotTheEmptyOne(t *testing.T) {
	v := NewView()
	apply := func(e domain.Event) Touched {
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		touched, _ := v.Apply(eventstore.RecordedEvent{Type: e.EventType(), Data: data, Position: v.Position + 1})
		return touched
	}
	apply(&domain.ApplicationAccepted{})
	apply(&domain.ApplicationConfirmed{})
	apply(&domain.ConventionDrafted{})
	if st := v.State(uuid.NewString()); st.Status != "" {
		t.Fatalf("an application never seen has the empty ID's placement: %+v", st)
	}
	if touched := apply(&domain.ConventionCancelled{ConventionID: uuid.NewString()}); len(touched) != 0 {
		t.Fatalf("a convention never seen cancelled %v", v.IDs(touched))
	}
	if i, ok := v.slotOf(0); !ok || v.record(i).Convention != domain.PlacementConventionLive {
		t.Fatalf("the empty ID's placement (%v) lost its convention to another's cancellation", ok)
	}
}
