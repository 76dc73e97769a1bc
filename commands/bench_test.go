package commands_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"passerelle/commands"
	"passerelle/domain"
	"passerelle/domain/refdata"
	"passerelle/eventstore"
	"passerelle/eventstore/embedded"
)

// BenchmarkCommandHistory measures one command (amend an offer) on an
// offer whose stream already holds 10 events and on one holding 10,000,
// in the same run over the same store, alternating between them so that
// disk noise falls on both alike. It reports the time per command on each
// and their ratio (long/short): a command should cost the same whatever
// the aggregate's history.
func BenchmarkCommandHistory(b *testing.B) {
	s, err := embedded.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	svc := commands.NewService(s, refdata.MustLoad())
	ctx := context.Background()
	n := 0
	meta := func() commands.Meta {
		n++
		return commands.Meta{CommandID: fmt.Sprintf("bench-%d", n), Actor: eventstore.Actor{Role: "backoffice"}, Now: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	}
	short := benchOffer(b, ctx, s, svc, meta, 10)
	long := benchOffer(b, ctx, s, svc, meta, 10_000)
	amend := func(offer string, i int) time.Duration {
		title := fmt.Sprintf("Mécanique %d", i)
		start := time.Now()
		if _, err := svc.AmendOffer(ctx, meta(), offer, domain.AmendOfferInput{Title: &title}); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	// warm both, as a running service would be
	amend(short, -1)
	amend(long, -1)
	var onShort, onLong time.Duration
	b.ResetTimer()
	i := 0
	for b.Loop() {
		onShort += amend(short, i)
		onLong += amend(long, i)
		i++
	}
	b.ReportMetric(float64(onShort.Microseconds())/float64(i), "µs/cmd-10")
	b.ReportMetric(float64(onLong.Microseconds())/float64(i), "µs/cmd-10000")
	b.ReportMetric(float64(onLong)/float64(onShort), "long/short")
}

// benchOffer posts an offer and brings its stream to about events events
// with amendments appended straight to the store in large batches.
func benchOffer(b *testing.B, ctx context.Context, s eventstore.Store, svc *commands.Service, meta func() commands.Meta, events int) string {
	b.Helper()
	emp, err := svc.RegisterEmployer(ctx, meta(), domain.RegisterEmployerInput{
		Name: "Garage Dupont", SIRET: "73282932000074", Kind: "company", CommuneCode: "94028", Address: "3 rue",
	})
	if err != nil {
		b.Fatal(err)
	}
	in := domain.PostOfferInput{
		Title: "Mécanique", Description: "Atelier", Sector: "s1", Grades: []string{"3e"}, Weeks: []string{"2026-W50"},
		Seats: 2, CommuneCode: "94028", Address: "3 rue", Lat: 48.79, Lon: 2.45,
	}
	offer, err := svc.PostOffer(ctx, meta(), commands.PostOfferInput{EmployerID: emp.ID, PostOfferInput: in})
	if err != nil {
		b.Fatal(err)
	}
	stream := domain.OfferStream(offer.ID)
	const batch = 500
	for rev := uint64(0); rev+1 < uint64(events); {
		k := min(batch, events-1-int(rev))
		evs := make([]eventstore.EventData, k)
		for j := range evs {
			data, err := domain.Encode(&domain.OfferAmended{OfferID: offer.ID, Title: fmt.Sprintf("Mécanique %d", int(rev)+j),
				Description: in.Description, Weeks: in.Weeks, Seats: in.Seats})
			if err != nil {
				b.Fatal(err)
			}
			m := meta()
			evs[j] = eventstore.EventData{ID: eventstore.EventID(m.CommandID, 0), Type: "OfferAmended", Data: data,
				Metadata: eventstore.Metadata{CommandID: m.CommandID, Actor: m.Actor, OccurredAt: m.Now}.Encode()}
		}
		res, err := s.Append(ctx, stream, eventstore.Exact(rev), evs...)
		if err != nil {
			b.Fatal(err)
		}
		rev = res.LastRevision
	}
	return offer.ID
}
