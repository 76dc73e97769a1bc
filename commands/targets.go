package commands

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"

	"passerelle/domain"
	"passerelle/internal/api"
)

// SetTarget records a campaign target. Setting the target already in force
// appends nothing.
func (s *Service) SetTarget(ctx context.Context, m Meta, in domain.TargetInput) (Result, error) {
	if err := in.Check(s.places); err != nil {
		return Result{}, err
	}
	_, pos, err := update(ctx, s.repo, m, domain.TargetStream(in.Scope, in.Code, in.Metric), func(t *domain.Target) ([]domain.Event, error) {
		return t.Set(in, m.Now), nil
	})
	return Result{ID: in.Scope + "-" + in.Code + "-" + in.Metric, Position: pos}, err
}

// TargetRoutes mounts POST /v1/targets (back office).
func (a *API) TargetRoutes(r chi.Router) {
	r.Post("/v1/targets", a.handle(http.StatusOK, func(ctx context.Context, r *http.Request, m Meta, body []byte) (Result, error) {
		var in domain.TargetInput
		if err := api.Unmarshal(body, &in, false); err != nil {
			return Result{}, err
		}
		return a.svc.SetTarget(ctx, m, in)
	}))
}
