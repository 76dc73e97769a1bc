package reconcile

import (
	"bytes"
	"context"
	"encoding/gob"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/google/uuid"

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
		p := &placement{Offer: str(), Pupil: str(), Status: str(), Tracked: r.IntN(2) == 0, Seat: r.IntN(2) == 0,
			PupilWeeks: r.IntN(2) == 0, Convention: str(), Booking: str(), Last: eventstore.Position(r.Uint64())}
		for range r.IntN(4) {
			p.Weeks = append(p.Weeks, fmt.Sprintf("2027-W%02d", 1+r.IntN(52)))
		}
		v.Apps[uuid.NewString()] = p
		if r.IntN(3) == 0 {
			v.Convs[uuid.NewString()] = str()
		}
		v.Withdrawn[uuid.NewString()] = r.IntN(2) == 0
		v.Forgotten[uuid.NewString()] = r.IntN(2) == 0
		v.Seats[uuid.NewString()] = r.IntN(20) - 5
	}
	return v
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
		got.index()
		v.index()
		got.shared, v.shared = shared{}, shared{} // what the view keeps one copy of, not its content
		if log != "log-"+fmt.Sprint(n) || !reflect.DeepEqual(got, v) {
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
	if err := gob.NewEncoder(&old).Encode(gobSnapshot{Version: 2, Log: "log", View: randomView(r, 5)}); err != nil {
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
	View    *View
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
	writeGob := func() {
		var buf bytes.Buffer
		if err := gob.NewEncoder(&buf).Encode(gobSnapshot{Version: 2, Log: "log", View: v}); err != nil {
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

// Placements read back share one copy of their offer's and their pupil's
// IDs, status and weeks: a national view holds 3.2 million of them.
func TestSnapshotSharesWhatPlacementsHoldAlike(t *testing.T) {
	v := NewView()
	for _, id := range []string{"app-1", "app-2"} {
		v.Apps[id] = &placement{Offer: "offer-1", Pupil: "pupil-1", Status: "submitted",
			Weeks: []string{"2027-W05", "2027-W06"}}
	}
	file := filepath.Join(t.TempDir(), "snap")
	writeTo(t, file, "log", v)
	_, got, err := readSnapshot(file)
	if err != nil {
		t.Fatal(err)
	}
	a, b := got.Apps["app-1"], got.Apps["app-2"]
	if unsafe.StringData(a.Offer) != unsafe.StringData(b.Offer) || unsafe.StringData(a.Pupil) != unsafe.StringData(b.Pupil) ||
		unsafe.StringData(a.Status) != unsafe.StringData(b.Status) || &a.Weeks[0] != &b.Weeks[0] {
		t.Fatal("two placements of one pupil on one offer hold copies of their own")
	}
	if !reflect.DeepEqual(a.Weeks, []string{"2027-W05", "2027-W06"}) || a.Offer != "offer-1" || b.Pupil != "pupil-1" {
		t.Fatalf("read back %+v", a)
	}
}
