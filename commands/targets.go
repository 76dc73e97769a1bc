package commands

import (
	"context"

	"passerelle/domain"
)

// SetTarget records a campaign target. Setting the target already in force
// appends nothing.
func (s *Service) SetTarget(ctx context.Context, m Meta, in domain.TargetInput) (Result, error) {
	if err := in.Check(s.places); err != nil {
		return Result{}, err
	}
	id := in.Scope + "-" + in.Code + "-" + in.Metric
	_, pos, err := update(ctx, s.repo, m.final(id), domain.TargetStream(in.Scope, in.Code, in.Metric), func(t *domain.Target) ([]domain.Event, error) {
		return t.Set(in, m.Now), nil
	})
	return Result{ID: id, Position: pos}, err
}
