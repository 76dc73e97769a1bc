package history

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"passerelle/domain"
	"passerelle/internal/api"
)

// RoundView is an allocation round as the back office reads it: how it was
// drawn, its preview, and whether it was published.
type RoundView struct {
	ID          string              `json:"id"`
	CampaignID  string              `json:"campaign_id"`
	Seed        int64               `json:"seed"`
	MaxChoices  int                 `json:"max_choices"`
	ComputedAt  time.Time           `json:"computed_at"`
	Published   bool                `json:"published"`
	PublishedAt *time.Time          `json:"published_at,omitempty"`
	Preview     domain.RoundPreview `json:"preview"`
	Position    string              `json:"position"`
}

// round serves GET /v1/rounds/{id} from the round's stream: a round is
// written once and read a few times by the back office, and its matches
// can run to megabytes, so the log is its only copy rather than a read
// model in Redis.
func (a *API) round(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	if _, err := api.MinPosition(r); err != nil {
		api.WriteError(w, r, err)
		return
	}
	if a.store == nil || !domain.ValidID(id) {
		api.WriteError(w, r, notFound("round"))
		return
	}
	var round domain.Round
	evs, err := a.fold(r.Context(), domain.RoundStream(id), "round", &round)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	if !round.Exists() {
		api.WriteError(w, r, notFound("round")) // a computation cut short
		return
	}
	c := round.Computed
	v := RoundView{ID: id, CampaignID: c.CampaignID, Seed: c.Seed, MaxChoices: c.MaxChoices, ComputedAt: c.ComputedAt,
		Published: round.Published != nil, Preview: round.Preview(), Position: evs[len(evs)-1].Position.String()}
	if p := round.Published; p != nil {
		v.PublishedAt = &p.PublishedAt
	}
	api.WriteJSON(w, http.StatusOK, v)
}
