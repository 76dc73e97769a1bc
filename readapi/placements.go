package readapi

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"

	"passerelle/domain"
	"passerelle/internal/api"
	"passerelle/internal/auth"
	"passerelle/projections"
)

func (a *API) pupilApplications(ctx context.Context, r *http.Request, m model) (any, error) {
	id := chi.URLParam(r, "id")
	if !domain.ValidID(id) {
		return nil, notFound("pupil")
	}
	if err := exists(ctx, m, projections.PupilInfoKey(id), "pupil"); err != nil {
		return nil, err
	}
	return a.applicationList(ctx, r, m, projections.PupilApplicationsKey(id), nil)
}

// application serves one application. To its employer it is anonymous
// until accepted, as in the inbox: no school.
func (a *API) application(ctx context.Context, r *http.Request, m model) (any, error) {
	d, err := byID[projections.ApplicationDoc]("application", projections.ApplicationDocKey)(ctx, r, m)
	if err != nil {
		return nil, err
	}
	doc := d.(projections.ApplicationDoc)
	if p, ok := auth.From(ctx); ok && p.Role == auth.Employer {
		anonymous(&doc)
	}
	return doc, nil
}

// anonymous hides from an employer what would identify the pupil of an
// application it has not accepted.
func anonymous(d *projections.ApplicationDoc) {
	if !d.Accepted {
		d.SchoolUAI = ""
		if d.ProposedBy != nil && d.ProposedBy.Role == auth.School {
			d.ProposedBy = &domain.Proposer{Role: auth.School} // its id is the pupil's school
		}
	}
}

// employerApplications is the employer's inbox, newest first. Items carry
// no name, school or address of the pupil: the read model holds none.
func (a *API) employerApplications(ctx context.Context, r *http.Request, m model) (any, error) {
	id := chi.URLParam(r, "id")
	if !domain.ValidID(id) {
		return nil, notFound("employer")
	}
	if m.Prefix == "" {
		return nil, notFound("employer")
	}
	if ok, err := m.RDB.SIsMember(ctx, m.Key(projections.EmployersKey()), id).Result(); err != nil {
		return nil, err
	} else if !ok {
		return nil, notFound("employer")
	}
	q := api.Query(r)
	offerID, status := q.Get("offer_id"), q.Get("status")
	if offerID != "" && !domain.ValidID(offerID) {
		return nil, api.Invalid("offer_id", "must be an offer id")
	}
	switch status {
	case "", domain.StatusSubmitted, domain.StatusRead, domain.StatusAccepted, domain.StatusRejected, domain.StatusWithdrawn,
		domain.StatusConfirmed, domain.StatusCancelled, domain.StatusExpired, domain.StatusOfferWithdrawn:
	default:
		return nil, api.Invalid("status", "must be one of submitted, read, accepted, rejected, withdrawn, confirmed, cancelled, expired, offer_withdrawn")
	}
	keep := func(d *projections.ApplicationDoc) bool {
		anonymous(d)
		return (offerID == "" || d.OfferID == offerID) && (status == "" || d.Status == status)
	}
	return a.applicationList(ctx, r, m, projections.EmployerApplicationsKey(id), keep)
}

// exists answers 404 when key is absent from the read model.
func exists(ctx context.Context, m model, key, what string) error {
	if m.Prefix == "" {
		return notFound(what)
	}
	n, err := m.RDB.Exists(ctx, m.Key(key)).Result()
	if err != nil {
		return err
	}
	if n == 0 {
		return notFound(what)
	}
	return nil
}

func (a *API) applicationList(ctx context.Context, r *http.Request, m model, key string, keep func(*projections.ApplicationDoc) bool) (any, error) {
	pg, perPage, err := pagination(api.Query(r))
	if err != nil {
		return nil, err
	}
	items := []projections.ApplicationDoc{}
	if m.Prefix != "" {
		ids, err := m.RDB.ZRevRange(ctx, m.Key(key), 0, -1).Result()
		if err != nil {
			return nil, err
		}
		docs, err := getDocs[projections.ApplicationDoc](ctx, m, ids, projections.ApplicationDocKey)
		if err != nil {
			return nil, err
		}
		for i := range docs {
			if keep == nil || keep(&docs[i]) {
				items = append(items, docs[i])
			}
		}
	}
	return page{Items: pageOf(items, pg, perPage), Total: len(items), Page: pg, PerPage: perPage, Position: m.position.String()}, nil
}

// getDocs reads the JSON documents of ids in one round trip, skipping ids
// whose document is missing.
func getDocs[T any](ctx context.Context, m model, ids []string, key func(string) string) ([]T, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = m.Key(key(id))
	}
	raw, err := m.RDB.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(raw))
	for _, x := range raw {
		s, ok := x.(string)
		if !ok {
			continue
		}
		var d T
		if err := json.Unmarshal([]byte(s), &d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}
