// Package history serves the queries answered from the event log itself
// rather than from the read models: a placement's audit trail as it stood
// at any point, and a pupil's registration with its personal data opened
// from its seal (personal data lives only in the log). These are the only
// query routes that read the log; every other query is package readapi's.
package history

import (
	"net/http"

	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/internal/api"

	"github.com/go-chi/chi/v5"
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

// Routes mounts the history routes on r.
func (a *API) Routes(r chi.Router) {
	r.Get("/v1/audit/applications/{id}", a.auditApplication)
	r.Get("/v1/pupils/{id}", a.pupilProfile)
}
