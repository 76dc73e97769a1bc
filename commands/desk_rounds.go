package commands

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"passerelle/domain"
	"passerelle/domain/allocation"
	"passerelle/eventstore"
	"passerelle/internal/api"
	"passerelle/internal/authz"
	"passerelle/internal/route"
)

// RoundMarket builds the market a round allocates: the free slots in a
// campaign's scope and each pupil's ranked choices, at most maxChoices, as
// the log stands at position at or later (desk.Index.Market).
type RoundMarket interface {
	Market(ctx context.Context, at eventstore.Position, scope allocation.Scope, maxChoices int) (allocation.Market, error)
}

// Proposer proposes one match of a published round to the pupil: an
// application on their behalf. It is idempotent per (round, pupil).
type Proposer interface {
	Propose(ctx context.Context, roundID string, m allocation.Match) (applicationID string, err error)
}

// WithRounds gives the service what allocation rounds need: a market and
// a proposer.
func (s *Service) WithRounds(market RoundMarket, proposer Proposer) *Service {
	s.market, s.proposer = market, proposer
	return s
}

// Proposals is what a publication did: the matches proposed, and those the
// rules refused (the seat, the offer or the pupil changed since the round).
type Proposals struct {
	Proposed int       `json:"proposed"`
	Refused  []Refusal `json:"refused"`
}

// Refusal is a match that could not be proposed, and the rule that refused.
type Refusal struct {
	PupilID string `json:"pupil_id"`
	OfferID string `json:"offer_id"`
	Rule    string `json:"rule"`
}

// CreateCampaign creates an allocation campaign under a new id.
func (s *Service) CreateCampaign(ctx context.Context, m Meta, in domain.CampaignInput) (Result, error) {
	id := newID(m)
	_, pos, err := update(ctx, s.repo, m.final(id), domain.CampaignStream(id), func(c *domain.Campaign) ([]domain.Event, error) {
		return c.Create(id, in, s.places, m.Now)
	})
	return Result{ID: id, Position: pos}, err
}

// RoundInput is the compute-round command; a nil seed draws one.
type RoundInput struct {
	Seed       *int64
	MaxChoices int
}

// ComputeRound computes a round of a campaign under a new id: the market
// of the campaign's scope, allocated by deferred acceptance and by first
// come, recorded with its seed. Nothing is proposed.
func (s *Service) ComputeRound(ctx context.Context, m Meta, campaignID string, in RoundInput) (Result, error) {
	ri := domain.RoundInput{MaxChoices: in.MaxChoices}
	if err := ri.Check(); err != nil {
		return Result{}, err
	}
	campaign, err := readIf[domain.Campaign](ctx, s.repo, domain.ValidID(campaignID), domain.CampaignStream(campaignID))
	if err != nil {
		return Result{}, err
	}
	if campaign == nil || !campaign.Exists() {
		return Result{}, domain.NotFoundf("campaign")
	}
	id := newID(m)
	round, err := read[domain.Round](ctx, s.repo, domain.RoundStream(id))
	if err != nil || round.Exists() {
		return s.roundResult(ctx, id, err) // computed already: a retry
	}
	market, err := s.roundMarket(ctx, campaign.Created.Scope, ri.MaxChoices, in.Seed)
	if err != nil {
		return Result{}, err
	}
	ri.Seed = market.Seed
	evs := domain.ComputeRound(id, campaignID, ri, market, m.Now)
	// one append per event: the parts, then RoundComputed closes them; a
	// computation cut short and retried starts its parts again after the
	// ones it left
	base := round.Written()
	for i, e := range evs {
		mm := m.Step(fmt.Sprintf("round-%d", base+i))
		if i == len(evs)-1 {
			mm = mm.final(id)
		}
		if _, _, err := update(ctx, s.repo, mm, domain.RoundStream(id), func(r *domain.Round) ([]domain.Event, error) {
			if r.Written() != base+i || r.Exists() {
				return nil, fmt.Errorf("%w: round %s is being computed by another request", domain.ErrConflict, id)
			}
			return []domain.Event{e}, nil
		}); err != nil {
			return Result{}, err
		}
	}
	return s.roundResult(ctx, id, nil)
}

// roundMarket is the market of a round of scope, as the log stands when
// the command comes (everything written before it), with its seed (nil:
// drawn).
func (s *Service) roundMarket(ctx context.Context, scope allocation.Scope, maxChoices int, seed *int64) (allocation.Market, error) {
	if s.market == nil {
		return allocation.Market{}, api.Errorf(http.StatusServiceUnavailable, "not_ready", "no market source is configured for rounds")
	}
	head, err := s.repo.store.Head(ctx)
	if err != nil {
		return allocation.Market{}, err
	}
	market, err := s.market.Market(ctx, head, scope, maxChoices)
	if err != nil {
		return allocation.Market{}, err
	}
	market.Seed = rand.Int64N(1 << 53) // exact in every JSON client
	if seed != nil {
		market.Seed = *seed
	}
	return market, nil
}

// roundResult answers with a computed round and its preview.
func (s *Service) roundResult(ctx context.Context, id string, err error) (Result, error) {
	if err != nil {
		return Result{}, err
	}
	round, l, err := load[domain.Round](ctx, s.repo, domain.RoundStream(id))
	if err != nil {
		return Result{}, err
	}
	if !round.Exists() {
		return Result{}, domain.NotFoundf("round")
	}
	p := round.Preview()
	return Result{ID: id, Position: l.position, Preview: &p}, nil
}

// PublishRound turns a round's matches into proposals: RoundPublished
// first, then one proposal per match, each idempotent, so publishing again
// finishes a publication cut short and proposes nothing twice.
func (s *Service) PublishRound(ctx context.Context, m Meta, roundID string) (Result, error) {
	if !domain.ValidID(roundID) {
		return Result{}, domain.NotFoundf("round")
	}
	round, pos, err := update(ctx, s.repo, m, domain.RoundStream(roundID), func(r *domain.Round) ([]domain.Event, error) {
		return r.Publish(m.Now)
	})
	if err != nil {
		return Result{}, err
	}
	if s.proposer == nil {
		return Result{}, api.Errorf(http.StatusServiceUnavailable, "not_ready", "no proposer is configured for rounds")
	}
	out, err := s.proposeMatches(ctx, roundID, round.Matches)
	if err != nil {
		return Result{}, err
	}
	// the proposals' position: a read of the pupils' applications after it
	// sees them
	if head, err := s.repo.store.Head(ctx); err == nil {
		pos = max(pos, head)
	}
	return Result{ID: roundID, Position: pos, Proposals: &out}, nil
}

// proposers is how many proposals a publication makes at once: each is a
// few appends to its own pupil's and application's streams, which the
// store commits together.
const proposers = 16

// propose proposes every match, proposers at a time. A refusal by a rule
// is reported; any other error stops the publication, which publishing
// again finishes.
func (s *Service) proposeMatches(ctx context.Context, roundID string, matches []allocation.Match) (Proposals, error) {
	outcomes := make([]error, len(matches))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(proposers, len(matches)) {
		wg.Go(func() {
			for i := range next {
				_, outcomes[i] = s.proposer.Propose(ctx, roundID, matches[i])
			}
		})
	}
	for i := range matches {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Proposals{}, err
	}
	out := Proposals{Refused: []Refusal{}}
	for i, err := range outcomes {
		match := matches[i]
		var rule *domain.RuleError
		var verr *domain.ValidationError
		switch {
		case err == nil:
			out.Proposed++
		case errors.As(err, &rule):
			out.Refused = append(out.Refused, Refusal{PupilID: match.PupilID, OfferID: match.OfferID, Rule: rule.Rule})
		case errors.As(err, &verr), errors.Is(err, domain.ErrNotFound):
			out.Refused = append(out.Refused, Refusal{PupilID: match.PupilID, OfferID: match.OfferID, Rule: "invalid"})
		default:
			return Proposals{}, fmt.Errorf("propose %s to %s: %w", match.OfferID, match.PupilID, err)
		}
	}
	return out, nil
}

// RoundPreview reads a computed round's preview (an idempotent replay of
// its computation answers with it).
func (s *Service) RoundPreview(ctx context.Context, id string) (*domain.RoundPreview, error) {
	res, err := s.roundResult(ctx, id, nil)
	return res.Preview, err
}

// RoundProposer proposes a round's matches with the proposal command: an
// application on the pupil's behalf, proposed by the round, with a command
// id derived from the round and the pupil.
type RoundProposer struct {
	Service *Service
	Clock   func() time.Time // nil: time.Now
}

// Propose implements Proposer. The pupil already holding this application
// (a publication finished again) is not a refusal.
func (p RoundProposer) Propose(ctx context.Context, roundID string, match allocation.Match) (string, error) {
	now := time.Now
	if p.Clock != nil {
		now = p.Clock
	}
	sum := sha256.Sum256([]byte("round/" + roundID + "/" + match.PupilID))
	by := "round-" + roundID
	m := Meta{CommandID: hex.EncodeToString(sum[:16]), Actor: eventstore.Actor{Role: "system", Subject: by},
		Now: now().UTC()}
	m.CorrelationID = m.CommandID
	id, _, err := p.Service.Propose(ctx, m, match.OfferID, match.PupilID, match.Weeks, by)
	var rule *domain.RuleError
	if errors.As(err, &rule) && rule.Rule == "one_application_per_offer" {
		return ApplicationID(match.OfferID, match.PupilID), nil
	}
	return id, err
}

// roundRoutes create campaigns, compute rounds and publish them: the back
// office only.
func (a *API) roundRoutes() []route.Route {
	const post = http.MethodPost
	bo := authz.Backoffice
	return []route.Route{
		command(a, route.Route{Method: post, Pattern: "/v1/campaigns", Status: http.StatusCreated, Summary: "Create an allocation campaign",
			Allow: bo},
			func(ctx context.Context, m Meta, _ string, in campaignBody) (Result, error) {
				return a.svc.CreateCampaign(ctx, m, domain.CampaignInput(in))
			}),
		command(a, route.Route{Method: post, Pattern: "/v1/campaigns/{id}/rounds", Status: http.StatusCreated, Summary: "Compute an allocation round (a preview)",
			OptionalBody: true, Allow: bo},
			func(ctx context.Context, m Meta, id string, in roundBody) (Result, error) {
				return a.svc.ComputeRound(ctx, m, id, RoundInput(in))
			}),
		command(a, route.Route{Method: post, Pattern: "/v1/rounds/{id}/publish", Status: http.StatusOK, Summary: "Publish a round: propose its matches",
			OptionalBody: true, Allow: bo},
			noBody(a.svc.PublishRound)),
	}
}

type (
	campaignBody struct {
		Name        string   `json:"name"`
		Departments []string `json:"departments"`
		Communes    []string `json:"communes,omitempty"`
		Grades      []string `json:"grades"`
		Weeks       []string `json:"weeks"`
		Target      int      `json:"target,omitempty"`
	}
	roundBody struct {
		Seed       *int64 `json:"seed,omitempty"`
		MaxChoices int    `json:"max_choices,omitempty"`
	}
)

// isRoundComputation reports whether a request computes a round, whose
// answer carries the preview (too large for an idempotency record: a
// replay reads it from the round's stream).
func isRoundComputation(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/campaigns/") && strings.HasSuffix(r.URL.Path, "/rounds")
}
