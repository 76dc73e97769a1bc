package commands_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"passerelle/commands"
	"passerelle/domain"
	"passerelle/domain/allocation"
	"passerelle/eventstore"
)

// staticMarket serves one market whatever the scope.
type staticMarket allocation.Market

func (m staticMarket) Market(context.Context, eventstore.Position, allocation.Scope, int) (allocation.Market, error) {
	return allocation.Market(m), nil
}

// crashingProposer proposes n matches, then fails as a process would die.
type crashingProposer struct {
	next commands.Proposer
	mu   sync.Mutex
	n    int
}

var errCrash = errors.New("crash")

func (p *crashingProposer) Propose(ctx context.Context, roundID string, m allocation.Match) (string, error) {
	p.mu.Lock()
	ok := p.n > 0
	p.n--
	p.mu.Unlock()
	if !ok {
		return "", errCrash
	}
	return p.next.Propose(ctx, roundID, m)
}

// TestPublishRoundFinishesAfterACrash: a publication cut short after two
// proposals is finished by publishing again; no match is proposed twice and
// a third publication writes nothing.
func TestPublishRoundFinishesAfterACrash(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	offerID, _ := f.offerWithPupils(5, 0)
	market := allocation.Market{Slots: []allocation.Slot{{OfferID: offerID, Weeks: []string{"2026-W50"}, Seats: 5}}}
	for i := range 4 {
		p := f.ok(f.svc.RegisterPupil(ctx, f.meta(), domain.RegisterPupilInput{
			SchoolUAI: "0941234A", Grade: "3e", ClassName: "3eA", FirstName: "Élève", LastName: fmt.Sprint(i), BirthDate: "2012-05-01",
			Guardians: []domain.Guardian{{Name: "Parent", Email: "p@example.fr", Phone: "0600000000"}},
		}))
		market.Pupils = append(market.Pupils, allocation.Pupil{ID: p.ID, Group: "none", Choices: []allocation.Choice{{Slot: 0, DistanceKM: 1}}})
	}
	apply := commands.RoundProposer{Service: f.svc, Clock: func() time.Time { return time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC) }}
	f.svc.WithRounds(staticMarket(market), &crashingProposer{next: apply, n: 2})
	campaign := f.ok(f.svc.CreateCampaign(ctx, f.meta(), domain.CampaignInput{Name: "94", Departments: []string{"94"}, Grades: []string{"3e"}, Weeks: []string{"2026-W50"}}))
	seed := int64(5)
	m := f.meta()
	round := f.ok(f.svc.ComputeRound(ctx, m, campaign.ID, commands.RoundInput{Seed: &seed}))
	if round.Preview == nil || round.Preview.Placed != 4 || len(round.Preview.Matches) != 4 {
		t.Fatalf("round %+v", round.Preview)
	}
	if again := f.ok(f.svc.ComputeRound(ctx, m, campaign.ID, commands.RoundInput{Seed: &seed})); again.ID != round.ID || again.Position != round.Position {
		t.Fatalf("the same command again computed another round: %s@%d, first %s@%d", again.ID, again.Position, round.ID, round.Position)
	}

	if _, err := f.svc.PublishRound(ctx, f.meta(), round.ID); !errors.Is(err, errCrash) {
		t.Fatalf("publish cut short: %v", err)
	}
	var r domain.Round
	f.load(domain.RoundStream(round.ID), &r)
	if r.Published == nil {
		t.Fatal("RoundPublished is not written before the proposals")
	}
	if n := submitted(f, offerID); n != 2 {
		t.Fatalf("%d applications after the cut, want 2", n)
	}

	f.svc.WithRounds(staticMarket(market), apply)
	res := f.ok(f.svc.PublishRound(ctx, f.meta(), round.ID))
	if res.Proposals.Proposed != 4 || len(res.Proposals.Refused) != 0 || submitted(f, offerID) != 4 {
		t.Fatalf("publish again: %+v, %d applications; want 4", res.Proposals, submitted(f, offerID))
	}
	head, _ := f.store.Head(ctx)
	f.ok(f.svc.PublishRound(ctx, f.meta(), round.ID))
	if after, _ := f.store.Head(ctx); after != head {
		t.Fatalf("a third publication wrote events: head %d → %d", head, after)
	}
}

// submitted counts the applications to an offer in the log.
func submitted(f *fixture, offerID string) int {
	evs, err := f.store.ReadAll(context.Background(), 0, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.Type == "ApplicationSubmitted" {
			d, _ := domain.Decode(e.Type, e.Data)
			if d.(*domain.ApplicationSubmitted).OfferID == offerID {
				n++
			}
		}
	}
	return n
}
