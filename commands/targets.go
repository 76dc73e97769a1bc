package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"passerelle/domain"
	"passerelle/domain/refdata"
	"passerelle/eventstore"
	"passerelle/eventstore/chain"
	"passerelle/internal/api"
)

// TargetSet is the event of a campaign target: the back office sets a
// figure for the live statistics to reach in a scope, such as 100 open
// offers in département 94. The latest target of a scope and metric wins;
// 0 removes it.
type TargetSet struct {
	Scope  string    `json:"scope"`  // all, department, region, sector
	Code   string    `json:"code"`   // département, région (INSEE) or sector code; "all" for all
	Metric string    `json:"metric"` // see TargetMetrics
	Target int64     `json:"target"`
	SetAt  time.Time `json:"set_at"`
}

func (TargetSet) EventType() string { return "TargetSet" }

// TargetScopes and TargetMetrics are what a target may follow: the figures
// of GET /v1/stats/offers (applications and conventions for the scope all
// only, the statistics counting them nationally).
var (
	TargetScopes  = []string{"all", "department", "region", "sector"}
	TargetMetrics = []string{"offers_open", "seats_total", "seats_available", "seats_held",
		"applications", "applications_confirmed", "conventions", "conventions_signed"}
)

// TargetStream is the stream of one target: "target-<scope>-<code>-<metric>".
func TargetStream(scope, code, metric string) string {
	return "target-" + scope + "-" + code + "-" + metric
}

// TargetInput is the set-target command.
type TargetInput struct {
	Scope  string `json:"scope"`
	Code   string `json:"code"`
	Metric string `json:"metric"`
	Target int64  `json:"target"`
}

// maxTarget bounds a target (the national platform counts in hundreds of
// thousands).
const maxTarget = 100_000_000

func (in *TargetInput) check() error {
	p := domain.Problems{}
	rd := refdata.MustLoad()
	switch in.Scope {
	case "all":
		if in.Code != "" && in.Code != "all" {
			p.Add("code", `must be empty or "all" for the scope all`)
		}
		in.Code = "all"
	case "department":
		if _, ok := rd.Department(in.Code); !ok {
			p.Add("code", "must be a département code such as 94, 2A or 974")
		}
	case "region":
		known := false
		for _, d := range rd.Departments {
			known = known || d.Region == in.Code
		}
		if !known || in.Code == "" {
			p.Add("code", "must be an INSEE région code such as 11 or 84")
		}
	case "sector":
		if _, ok := rd.Sector(in.Code); !ok {
			p.Add("code", "must be a national sector code s1…s51")
		}
	default:
		p.Add("scope", "must be one of all, department, region, sector")
	}
	switch {
	case !slices.Contains(TargetMetrics, in.Metric):
		p.Add("metric", "must be one of offers_open, seats_total, seats_available, seats_held, applications, applications_confirmed, conventions, conventions_signed")
	case in.Scope != "all" && (strings.HasPrefix(in.Metric, "applications") || strings.HasPrefix(in.Metric, "conventions")):
		p.Add("metric", "applications and conventions are counted for the scope all only")
	}
	if in.Target < 0 || in.Target > maxTarget {
		p.Add("target", fmt.Sprintf("must be between 0 (removes the target) and %d", maxTarget))
	}
	return p.Err()
}

// SetTarget records a campaign target. Setting the target already in force
// appends nothing.
func (s *Service) SetTarget(ctx context.Context, m Meta, in TargetInput) (Result, error) {
	if err := in.check(); err != nil {
		return Result{}, err
	}
	stream := TargetStream(in.Scope, in.Code, in.Metric)
	id := in.Scope + "-" + in.Code + "-" + in.Metric
	for attempt := 1; ; attempt++ {
		l, current, err := s.loadTarget(ctx, stream)
		if err != nil {
			return Result{}, err
		}
		if current != nil && current.Target == in.Target {
			return Result{ID: id, Position: l.position}, nil
		}
		if current == nil && in.Target == 0 {
			return Result{ID: id, Position: l.position}, nil
		}
		ev := &TargetSet{Scope: in.Scope, Code: in.Code, Metric: in.Metric, Target: in.Target, SetAt: m.Now}
		pos, err := s.repo.append(ctx, m, l, []domain.Event{ev})
		if errors.Is(err, eventstore.ErrWrongExpectedVersion) && attempt < maxAttempts {
			if err := backoff(ctx, attempt); err != nil {
				return Result{}, err
			}
			continue
		}
		return Result{ID: id, Position: pos}, err
	}
}

// loadTarget reads a target's stream; TargetSet is not a domain event, so
// the repository's loader does not know it.
func (s *Service) loadTarget(ctx context.Context, stream string) (loaded, *TargetSet, error) {
	l := loaded{stream: stream, revision: -1}
	evs, err := s.repo.store.ReadStream(ctx, stream, eventstore.Forwards, 0, 0)
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return l, nil, nil
	}
	if err != nil {
		return l, nil, fmt.Errorf("load %s: %w", stream, err)
	}
	var current *TargetSet
	for _, re := range evs {
		if re.Type == (TargetSet{}).EventType() {
			var t TargetSet
			if err := json.Unmarshal(re.Data, &t); err != nil {
				return l, nil, fmt.Errorf("load %s@%d: %w", stream, re.Revision, err)
			}
			current = &t
		}
		l.revision, l.position, l.hash = int64(re.Revision), re.Position, chain.Of(re)
	}
	return l, current, nil
}

// TargetRoutes mounts POST /v1/targets (back office).
func (a *API) TargetRoutes(r chi.Router) {
	r.Post("/v1/targets", a.handle(http.StatusOK, func(ctx context.Context, r *http.Request, m Meta, body []byte) (Result, error) {
		var in TargetInput
		if err := api.Unmarshal(body, &in, false); err != nil {
			return Result{}, err
		}
		return a.svc.SetTarget(ctx, m, in)
	}))
}
