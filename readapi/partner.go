package readapi

import (
	"context"
	"slices"

	"passerelle/eventstore"
	"passerelle/projections"
)

// The queries of the partner API v2 (package partnerapi), answered from
// the same search read model as GET /v1/offers.

// PartnerQuery is an offer search of the partner API v2: around a point,
// by keyword, and in any of the weeks, sectors and grades listed.
type PartnerQuery struct {
	Near                   *[2]float64 // lat, lon; nil: anywhere
	RadiusKM               float64
	Words                  []string // the keyword's words (projections.Words)
	Weeks, Sectors, Grades []string
	Page, PerPage          int
}

// PartnerCountLimit bounds how many matches a partner search counts for
// its pagination: past it, the total is that bound.
const PartnerCountLimit = 10_000

// PartnerSearch answers a page of the open offers q asks for, and how many
// match, once the read model has applied want.
func (a *API) PartnerSearch(ctx context.Context, want eventstore.Position, q PartnerQuery) ([]projections.OfferDoc, int, error) {
	m, err := a.model(ctx, projections.OffersName, want)
	if err != nil {
		return nil, 0, unavailable(err)
	}
	f := offerFilter{page: q.Page, perPage: q.PerPage, near: q.Near, radius: q.RadiusKM,
		indexes: []string{projections.OfferIndexOpen()}, geo: map[string]string{}}
	for _, w := range q.Words {
		f.indexes = append(f.indexes, projections.OfferIndex("word", w))
	}
	for _, g := range []struct {
		kind   string
		values []string
	}{{"week", q.Weeks}, {"sector", q.Sectors}, {"grade", q.Grades}} {
		values := slices.Compact(slices.Sorted(slices.Values(g.values)))
		switch len(values) {
		case 0:
		case 1: // one value is an index set like any other
			f.indexes = append(f.indexes, projections.OfferIndex(g.kind, values[0]))
			if projections.GeoIndexed(g.kind) {
				f.geo[projections.OfferIndex(g.kind, values[0])] = projections.OfferGeoIndex(g.kind, values[0])
			}
		default:
			group := make([]string, len(values))
			for i, v := range values {
				group[i] = m.Key(projections.OfferIndex(g.kind, v))
			}
			f.anyOf = append(f.anyOf, group)
		}
	}
	res, err := a.search(ctx, m, f, nil, PartnerCountLimit)
	if err != nil {
		return nil, 0, unavailable(err)
	}
	items, err := offerItems(ctx, m, res.found, f.near != nil)
	if err != nil {
		return nil, 0, unavailable(err)
	}
	return items, res.total, a.stillHeld(ctx, m)
}

// OperatorOffers answers a page of the offers an operator pushed and did
// not delete, oldest first, and how many there are.
func (a *API) OperatorOffers(ctx context.Context, want eventstore.Position, operatorID string, page, perPage int) ([]projections.OfferDoc, int, error) {
	m, err := a.model(ctx, projections.OffersName, want)
	if err != nil {
		return nil, 0, unavailable(err)
	}
	if m.Prefix == "" {
		return []projections.OfferDoc{}, 0, nil
	}
	key := m.Key(projections.OperatorOffers(operatorID))
	total, err := m.RDB.ZCard(ctx, key).Result()
	if err != nil {
		return nil, 0, unavailable(err)
	}
	start := int64((page - 1) * perPage)
	ids, err := m.RDB.ZRange(ctx, key, start, start+int64(perPage)-1).Result()
	if err != nil {
		return nil, 0, unavailable(err)
	}
	items, err := getDocs[projections.OfferDoc](ctx, m, ids, projections.OfferDocKey)
	if err != nil {
		return nil, 0, unavailable(err)
	}
	if items == nil {
		items = []projections.OfferDoc{}
	}
	return items, int(total), a.stillHeld(ctx, m)
}
