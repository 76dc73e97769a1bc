// Package history serves the queries answered from the event log itself
// rather than from the read models: a placement's audit trail as it stood
// at any point, a pupil's registration and a convention's document with
// their personal data opened from its seal (personal data lives only in
// the log). These are the only
// query routes that read the log; every other query is package readapi's.
package history

import (
	"net/http"

	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/internal/api"
	"passerelle/internal/auth"
	"passerelle/internal/authz"
	"passerelle/internal/route"
)

// Opener restores sealed personal data in an event (package personal).
type Opener interface{ Open(domain.Event) error }

// API serves the history routes from the log.
type API struct {
	store  eventstore.Store
	opener Opener
}

// New serves history from store, opening personal data with opener (nil:
// shown sealed).
func New(store eventstore.Store, opener Opener) *API { return &API{store: store, opener: opener} }

func notFound(what string) error {
	return api.Errorf(http.StatusNotFound, "not_found", "%s not found", what)
}

// Routes declares the history routes.
func (a *API) Routes() []route.Route {
	return []route.Route{
		{Method: http.MethodGet, Pattern: "/v1/audit/applications/{id}", Status: http.StatusOK, Summary: "A placement's history",
			Query: []string{"as_of", "format", "min_position"}, Allow: authz.Roles(auth.Auditor, auth.Backoffice),
			Handler: http.HandlerFunc(a.auditApplication)},
		{Method: http.MethodGet, Pattern: "/v1/pupils/{id}", Status: http.StatusOK, Summary: "A pupil's profile",
			Query:   []string{"min_position"},
			Allow:   authz.AnyOf(authz.Backoffice, authz.Pupil(authz.Param("id")), authz.Guardian(authz.Param("id")), authz.School(authz.PupilSchool)),
			Handler: http.HandlerFunc(a.pupilProfile)},
		{Method: http.MethodGet, Pattern: "/v1/conventions/{id}/document", Status: http.StatusOK, Summary: "A convention's document, with the parties' names",
			Query: []string{"format", "min_position"},
			Allow: authz.AnyOf(authz.Backoffice, authz.Employer(authz.ConventionEmployer), authz.School(authz.ConventionSchool),
				authz.Pupil(authz.ConventionPupil), authz.Guardian(authz.ConventionPupil)),
			Handler: http.HandlerFunc(a.conventionDocument)},
		{Method: http.MethodGet, Pattern: "/v1/rounds/{id}", Status: http.StatusOK, Summary: "An allocation round, its preview and whether it was published",
			Query: []string{"min_position"}, Allow: authz.Backoffice, Handler: http.HandlerFunc(a.round)},
	}
}
