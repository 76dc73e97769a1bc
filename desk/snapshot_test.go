package desk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"passerelle/desk"
	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/eventstore/embedded"
	"passerelle/eventstore/personal"
)

// snapshotWorld is a generated campaign, its live tail, and proposals
// made and answered (pupils forgotten among them), with a key for every
// pupil.
func snapshotWorld(t *testing.T) ([]desk.Event, *personal.Cipher) {
	t.Helper()
	w := generate(7, 1500, 2500)
	r := rand.New(rand.NewPCG(7, 8))
	events := append(w.events, liveTail(r, w, eventstore.Position(len(w.events)), 2500)...)
	pos := eventstore.Position(len(events))
	add := func(e domain.Event) {
		pos++
		events = append(events, desk.Event{Position: pos, Data: e})
	}
	for i := range 300 {
		app, p, o := fmt.Sprintf("proposal-%d", i), w.pupils[r.IntN(len(w.pupils))], w.offers[r.IntN(len(w.offers))]
		add(&domain.ApplicationSubmitted{ApplicationID: app, OfferID: o, PupilID: p, Weeks: collegeWeeks[i%5:][:1],
			ProposedBy: &domain.Proposer{ID: "round-1", Role: "backoffice"}})
		switch r.IntN(4) {
		case 0:
			add(&domain.ApplicationRejected{ApplicationID: app})
		case 1:
			add(&domain.PupilForgotten{PupilID: p})
		}
	}
	keys, err := personal.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range w.pupils {
		if _, _, err := keys.Key(p, true); err != nil {
			t.Fatal(err)
		}
	}
	return events, personal.NewCipher(keys)
}

// forgetting destroys the keys of the pupils events forget, as the forget
// command does before its event reaches the index.
func forgetting(t *testing.T, c *personal.Cipher, events []desk.Event) {
	t.Helper()
	for _, e := range events {
		if f, ok := e.Data.(*domain.PupilForgotten); ok {
			if err := c.Forget(f.PupilID); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// An index started from a snapshot taken anywhere in the log, then fed the
// rest, is the index that folded the whole log: every pupil, offer, grid
// cell, proposal and seat, and every count made once caught up.
func TestSnapshotRestoresTheIndex(t *testing.T) {
	events, cipher := snapshotWorld(t)
	now := worldNow
	whole := newIndex(&now)
	whole.Apply(events...)
	whole.CountAll()
	want := desk.Dump(whole)
	file := filepath.Join(t.TempDir(), "desk.snapshot")
	done := 0 // the events whose forgets destroyed their keys already
	for _, cut := range []int{0, 100, len(events) / 3, len(events) / 2, len(events) - 200, len(events)} {
		forgetting(t, cipher, events[done:cut])
		done = cut
		before := newIndex(&now).SnapshotTo(file, cipher)
		before.Apply(events[:cut]...)
		var buf bytes.Buffer
		if err := before.WriteSnapshot(&buf, "log-1"); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		after := newIndex(&now)
		log, err := after.ReadSnapshot(file, cipher)
		if err != nil || log != "log-1" {
			t.Fatalf("cut at %d: log %q, %v", cut, log, err)
		}
		if got, at := desk.Dump(after), desk.Dump(before); got != at {
			t.Fatalf("cut at %d: the index read back differs from the one saved:\n%s", cut, firstDiff(at, got))
		}
		after.Apply(events[cut:]...)
		after.CountAll()
		if got := desk.Dump(after); got != want {
			t.Fatalf("cut at %d: differs from the index of the whole log:\n%s", cut, firstDiff(want, got))
		}
	}
}

// A snapshot holds no birth date in the clear; a pupil forgotten since it
// was written has none in it any more, and a pupil whose key is gone when
// it is written is written without one, no key made for them.
func TestSnapshotKeepsNoBirthDate(t *testing.T) {
	events, cipher := snapshotWorld(t)
	now := worldNow
	ix := newIndex(&now).SnapshotTo("", cipher)
	var registered []*domain.PupilRegistered
	for _, e := range events {
		if p, ok := e.Data.(*domain.PupilRegistered); ok {
			registered = append(registered, p)
		}
		if _, ok := e.Data.(*domain.PupilForgotten); ok {
			break
		}
		ix.Apply(e)
	}
	gone, later := registered[0], registered[1]
	if err := cipher.Forget(gone.PupilID); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := ix.WriteSnapshot(&buf, "log"); err != nil {
		t.Fatal(err)
	}
	if d := regexp.MustCompile(`20[01][0-9]-[01][0-9]-[0-3][0-9]`).Find(buf.Bytes()); d != nil {
		t.Fatalf("a date in the clear in the snapshot: %s", d)
	}
	if _, ok, err := cipher.SealIfKept(&domain.PupilRegistered{PupilID: gone.PupilID}); ok || err != nil {
		t.Fatalf("writing the snapshot made a key for a forgotten pupil (%v, %v)", ok, err)
	}
	if err := cipher.Forget(later.PupilID); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "desk.snapshot")
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	back := newIndex(&now)
	if _, err := back.ReadSnapshot(file, cipher); err != nil {
		t.Fatal(err)
	}
	dump := desk.Dump(back)
	for _, p := range []*domain.PupilRegistered{gone, later} {
		if !regexp.MustCompile(`pupil ` + p.PupilID + ` \S+ born 0001-01-01 `).MatchString(dump) {
			t.Fatalf("pupil %s (born %s) still has a birth date read back", p.PupilID, p.BirthDate)
		}
	}
	if other := registered[2]; !regexp.MustCompile(`pupil ` + other.PupilID + ` \S+ born ` + other.BirthDate + ` `).MatchString(dump) {
		t.Fatalf("pupil %s lost their birth date %s", other.PupilID, other.BirthDate)
	}
}

// counting counts the events a store's ReadAll answers.
type counting struct {
	eventstore.Store
	mu   sync.Mutex
	read int
}

func (c *counting) ReadAll(ctx context.Context, from eventstore.Position, max int) ([]eventstore.RecordedEvent, error) {
	evs, err := c.Store.ReadAll(ctx, from, max)
	c.mu.Lock()
	c.read += len(evs)
	c.mu.Unlock()
	return evs, err
}

func (c *counting) reads() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.read
}

// streamOf names the stream an event of the generated campaign goes to.
func streamOf(e domain.Event) string {
	switch ev := e.(type) {
	case *domain.SchoolRegistered:
		return "school-" + ev.UAI
	case *domain.PupilRegistered:
		return "pupil-" + ev.PupilID
	case *domain.PupilForgotten:
		return "pupil-" + ev.PupilID
	case *domain.PupilWishesRecorded:
		return "pupil-" + ev.PupilID
	case *domain.PupilApplied:
		return "pupil-" + ev.PupilID
	case *domain.PupilWeeksReserved:
		return "pupil-" + ev.PupilID
	case *domain.PupilWeeksReleased:
		return "pupil-" + ev.PupilID
	case *domain.OfferPosted:
		return "offer-" + ev.OfferID
	case *domain.OfferAmended:
		return "offer-" + ev.OfferID
	case *domain.OfferWithdrawn:
		return "offer-" + ev.OfferID
	case *domain.OfferReopened:
		return "offer-" + ev.OfferID
	case *domain.SeatHeld:
		return "offer-" + ev.OfferID
	case *domain.SeatReleased:
		return "offer-" + ev.OfferID
	case *domain.ApplicationSubmitted:
		return "application-" + ev.ApplicationID
	case *domain.ApplicationRejected:
		return "application-" + ev.ApplicationID
	}
	panic(fmt.Sprintf("no stream for %T", e))
}

// appendAll appends events to store, their personal data sealed, and
// destroys the keys of the pupils they forget.
func appendAll(t *testing.T, store eventstore.Store, cipher *personal.Cipher, events []desk.Event) {
	t.Helper()
	ctx := context.Background()
	for _, e := range events {
		sealed, err := cipher.Seal(e.Data)
		if err != nil {
			t.Fatal(err)
		}
		data, err := json.Marshal(sealed)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Append(ctx, streamOf(e.Data), eventstore.Any,
			eventstore.EventData{ID: uuid.New(), Type: e.Data.EventType(), Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	forgetting(t, cipher, events)
}

// follow runs ix.Follow until it is ready at the store's head, then stops
// it (it saves its snapshot as it stops).
func follow(t *testing.T, ix *desk.Index, store eventstore.Store, cipher *personal.Cipher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		ix.Follow(ctx, store, cipher, nil)
	}()
	head, err := store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Wait(ctx, head, time.Minute); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
}

// Follow starts from the snapshot its last run saved as it stopped and
// reads only the log after it, reaching the index of the whole log; a
// damaged snapshot, or one of another log, is passed over: the log is
// read from its start.
func TestFollowStartsFromItsSnapshot(t *testing.T) {
	events, cipher := snapshotWorld(t)
	store, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close() }()
	first, rest := events[:len(events)*2/3], events[len(events)*2/3:]
	appendAll(t, store, cipher, first)
	file := filepath.Join(t.TempDir(), "desk.snapshot")
	now := worldNow
	follow(t, newIndex(&now).SnapshotTo(file, cipher), store, cipher)
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("no snapshot saved as the index stopped: %v", err)
	}
	appendAll(t, store, cipher, rest)

	whole := newIndex(&now)
	if err := whole.CatchUp(context.Background(), store, cipher); err != nil {
		t.Fatal(err)
	}
	want := desk.Dump(whole)

	c := &counting{Store: store}
	ix := newIndex(&now).SnapshotTo(file, cipher)
	follow(t, ix, c, cipher)
	if got := desk.Dump(ix); got != want {
		t.Fatalf("from the snapshot: differs from the index of the whole log:\n%s", firstDiff(want, got))
	}
	// the log's first event (its identity) as it loads and as it saves,
	// then the tail
	if c.reads() > len(rest)+2 {
		t.Fatalf("read %d events from the log; the tail after the snapshot is %d", c.reads(), len(rest))
	}

	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// started again with nothing new in the log, it writes no snapshot
	// (one written again differs: its nonces are new)
	follow(t, newIndex(&now).SnapshotTo(file, cipher), store, cipher)
	if again, err := os.ReadFile(file); err != nil || !bytes.Equal(again, good) {
		t.Fatalf("the snapshot was written again with nothing new (%v)", err)
	}
	damaged := bytes.Clone(good)
	damaged[len(damaged)/2] ^= 0x40
	other := newIndex(&now)
	var buf bytes.Buffer
	if err := other.WriteSnapshot(&buf, "another log"); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"damaged": damaged, "of another log": buf.Bytes()} {
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Fatal(err)
		}
		c := &counting{Store: store}
		ix := newIndex(&now).SnapshotTo(file, cipher)
		follow(t, ix, c, cipher)
		if got := desk.Dump(ix); got != want {
			t.Fatalf("%s snapshot: differs from the index of the whole log:\n%s", name, firstDiff(want, got))
		}
		if c.reads() < len(events) {
			t.Fatalf("%s snapshot: read %d events, not the whole log (%d)", name, c.reads(), len(events))
		}
	}
}

// firstDiff shows the first line where two dumps differ.
func firstDiff(want, got string) string {
	w, g := bytes.Split([]byte(want), []byte("\n")), bytes.Split([]byte(got), []byte("\n"))
	for i := range min(len(w), len(g)) {
		if !bytes.Equal(w[i], g[i]) {
			return fmt.Sprintf("line %d\nwant %s\ngot  %s", i+1, w[i], g[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d lines", len(w), len(g))
}
