package commands

import (
	"context"
	"net/http"

	"passerelle/domain"
	"passerelle/internal/authz"
	"passerelle/internal/route"
)

// RecordWishes records a pupil's wishes; the offers they name are read
// first, so that an unknown one is named in the answer.
func (s *Service) RecordWishes(ctx context.Context, m Meta, pupilID string, in domain.WishesInput) (Result, error) {
	if !domain.ValidID(pupilID) {
		return Result{}, domain.NotFoundf("pupil")
	}
	offers := map[string]*domain.Offer{}
	for i, id := range in.Offers {
		if i >= domain.MaxWishedOffers || !domain.ValidID(id) {
			break // the domain names what is wrong with the list
		}
		o, err := read[domain.Offer](ctx, s.repo, domain.OfferStream(id))
		if err != nil {
			return Result{}, err
		}
		offers[id] = o
	}
	return updateByID(ctx, s.repo, m, "pupil", domain.PupilStream, pupilID, func(p *domain.Pupil) ([]domain.Event, error) {
		return p.RecordWishes(in, s.places, offers)
	})
}

// wishesBody is the body of POST /v1/pupils/{id}/wishes.
type wishesBody struct {
	Sectors       []string `json:"sectors" required:"true"` // an empty list: no sector wished
	MaxDistanceKM int      `json:"max_distance_km"`
	Weeks         []string `json:"weeks,omitempty"`
	Offers        []string `json:"offers,omitempty"`
}

// wishRoutes record a pupil's wishes: the pupil, a guardian, their school
// or the back office.
func (a *API) wishRoutes() []route.Route {
	return []route.Route{
		command(a, route.Route{Method: http.MethodPost, Pattern: "/v1/pupils/{id}/wishes", Status: http.StatusOK, Summary: "Record a pupil's wishes",
			Allow: authz.AnyOf(authz.Backoffice, authz.Pupil(authz.Param("id")), authz.Guardian(authz.Param("id")), authz.School(authz.PupilSchool))},
			func(ctx context.Context, m Meta, id string, in wishesBody) (Result, error) {
				return a.svc.RecordWishes(ctx, m, id, domain.WishesInput(in))
			}),
	}
}
