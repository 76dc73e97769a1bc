package commands

import (
	"context"
	"net/http"

	"passerelle/domain"
	"passerelle/internal/api"
	"passerelle/internal/authz"
	"passerelle/internal/route"
)

// groupRoutes propose pupils for offers, book seats of collective offers
// for groups and sign a booking's conventions at once.
func (a *API) groupRoutes() []route.Route {
	const post = http.MethodPost
	bo := authz.Backoffice
	return []route.Route{
		command(a, route.Route{Method: post, Pattern: "/v1/offers/{id}/proposals", Status: http.StatusCreated, Summary: "Propose a pupil for an offer",
			Allow: authz.AnyOf(bo, authz.School(authz.SchoolOf(authz.Field("pupil_id"))))},
			func(ctx context.Context, m Meta, offerID string, in proposalBody) (Result, error) {
				if !domain.ValidID(in.PupilID) {
					return Result{}, api.Invalid("pupil_id", "no pupil is registered with this id")
				}
				return a.svc.propose(ctx, m, ApplyInput{OfferID: offerID, PupilID: in.PupilID,
					SubmitInput: domain.SubmitInput{Weeks: in.Weeks, Motivation: in.Motivation}})
			}),
		command(a, route.Route{Method: post, Pattern: "/v1/offers/{id}/group-bookings", Status: http.StatusCreated, Summary: "Book seats of a collective offer for a group",
			Allow: authz.AnyOf(bo, authz.School(authz.Field("school_uai")))},
			func(ctx context.Context, m Meta, offerID string, in groupBookingBody) (Result, error) {
				return a.svc.Book(ctx, m, offerID, BookingInput(in))
			}),
		command(a, route.Route{Method: post, Pattern: "/v1/group-bookings/{id}/signatures", Status: http.StatusCreated, Summary: "Sign every convention of a group booking",
			Allow: authz.BookingSigner}, // the back office signs for nobody
			func(ctx context.Context, m Meta, id string, in groupSignBody) (Result, error) {
				return a.svc.SignBooking(ctx, m, id, SignBookingInput(in))
			}),
	}
}

type (
	proposalBody struct {
		PupilID    string   `json:"pupil_id"`
		Weeks      []string `json:"weeks"`
		Motivation string   `json:"motivation,omitempty"` // why the desk proposes the pupil
	}
	groupBookingBody struct {
		SchoolUAI string   `json:"school_uai"`
		PupilIDs  []string `json:"pupil_ids"`
		Weeks     []string `json:"weeks"`
	}
	groupSignBody struct {
		Role       string `json:"role"`
		SignerName string `json:"signer_name"`
	}
)
