package eventgen_test

import (
	"context"
	"testing"

	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/eventstore/embedded"
	"passerelle/internal/testsupport/eventgen"
)

// Every kind of domain event comes out of a default world.
func TestEveryEventType(t *testing.T) {
	w := eventgen.New(eventgen.Options{Seed: 1})
	seen := map[string]int{}
	for _, c := range w.Generate(15_000) {
		for _, a := range c.Appends {
			for _, e := range a.Events {
				seen[e.EventType()]++
			}
		}
	}
	want := []string{"TargetSet", "CommandCompleted"}
	for _, e := range []domain.Event{&domain.EmployerRegistered{}, &domain.SchoolRegistered{}, &domain.PupilRegistered{},
		&domain.PupilForgotten{}, &domain.OfferPosted{}, &domain.OfferAmended{}, &domain.OfferWithdrawn{}, &domain.OfferReopened{},
		&domain.SeatHeld{}, &domain.SeatReleased{}, &domain.ApplicationSubmitted{}, &domain.ApplicationRead{},
		&domain.ApplicationAccepted{}, &domain.ApplicationRejected{}, &domain.ApplicationWithdrawn{}, &domain.ApplicationCancelled{},
		&domain.ApplicationExpired{}, &domain.ApplicationConfirmed{}, &domain.PupilApplied{}, &domain.PupilWeeksReserved{},
		&domain.PupilWeeksReleased{}, &domain.ConventionDrafted{}, &domain.ConventionCompleted{}, &domain.ConventionSignatureAdded{},
		&domain.ConventionSigned{}, &domain.ConventionCancelled{}} {
		want = append(want, e.EventType())
	}
	for _, typ := range want {
		if seen[typ] == 0 {
			t.Errorf("no %s in %v", typ, seen)
		}
	}
	t.Logf("%d events: %v", w.Events(), seen)
}

// Concurrent writers never append a command before an earlier one that
// touched one of its streams.
func TestWriteKeepsCommandOrder(t *testing.T) {
	ctx := context.Background()
	s, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	w := eventgen.New(eventgen.Options{Seed: 2})
	cmds := w.Generate(3_000)
	if err := eventgen.Write(ctx, s, cmds, 8); err != nil {
		t.Fatal(err)
	}
	log, err := s.ReadAll(ctx, eventstore.Start, 0)
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]eventstore.Position{}
	for _, e := range log {
		pos[e.ID.String()] = e.Position
	}
	last := map[string]eventstore.Position{} // stream -> last position of the commands so far
	for _, c := range cmds {
		first, end := eventstore.Position(1<<62), eventstore.Position(0)
		for _, a := range c.Appends {
			for i := range a.Events {
				p, ok := pos[eventstore.EventID(c.ID+"/"+a.Stream, i).String()]
				if !ok {
					t.Fatalf("%s: an event on %s is missing", c.ID, a.Stream)
				}
				first, end = min(first, p), max(end, p)
			}
		}
		streams := append([]string(nil), c.Reads...)
		for _, a := range c.Appends {
			streams = append(streams, a.Stream)
		}
		for _, st := range streams {
			if last[st] > first {
				t.Fatalf("%s was appended at %d, before an earlier command on %s (at %d)", c.ID, first, st, last[st])
			}
		}
		for _, st := range streams {
			last[st] = max(last[st], end)
		}
	}
	if len(log) != w.Events() {
		t.Fatalf("%d events in the log, %d generated", len(log), w.Events())
	}
}
