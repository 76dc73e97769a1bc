package commands

import (
	"context"

	"passerelle/domain"
)

// LinkOperator lets an operator (named by its token subject) act for
// registered employers; an operator acts for those it registered without
// a link. Linking the same employers again appends nothing.
func (s *Service) LinkOperator(ctx context.Context, m Meta, operatorID string, employerIDs []string) (Result, error) {
	if !domain.ValidOperatorID(operatorID) {
		return Result{}, domain.NotFoundf("operator")
	}
	known := map[string]bool{}
	for i, id := range employerIDs {
		if i >= domain.MaxLinkedEmployers || known[id] || !domain.ValidID(id) {
			continue // the domain names what is wrong
		}
		e, err := read[domain.Employer](ctx, s.repo, domain.EmployerStream(id))
		if err != nil {
			return Result{}, err
		}
		known[id] = e.Exists()
	}
	_, pos, err := update(ctx, s.repo, m.final(operatorID), domain.OperatorStream(operatorID), func(o *domain.Operator) ([]domain.Event, error) {
		return o.LinkEmployers(operatorID, employerIDs, func(id string) bool { return known[id] })
	})
	return Result{ID: operatorID, Position: pos}, err
}
