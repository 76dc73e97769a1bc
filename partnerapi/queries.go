package partnerapi

import (
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/internal/api"
	"passerelle/projections"
	"passerelle/readapi"
)

// searchParams are the parameters of GET /api/v2/internship_offers/search.
var searchParams = []string{"latitude", "longitude", "radius", "keyword", "weeks[]", "sectors[]", "grades[]", "page", "min_position"}

// DefaultRadius is the radius of a search around a point, in metres.
const DefaultRadius = 60_000

// offerJSON is an offer in the partner API's words.
func offerJSON(id string, p *domain.PartnerOffer, title, description, employer, sector string, gs []domain.Grade, weeks []string,
	lat, lon float64, reserved domain.Reservation, publishedAt any) map[string]any {
	out := map[string]any{"id": id, "title": title, "description": description, "employer_name": employer, "sector_uuid": sector,
		"weeks": weeks, "coordinates": map[string]float64{"latitude": lat, "longitude": lon}, "rep": reserved.REP, "qpv": reserved.QPV,
		"published_at": publishedAt}
	v2 := make([]string, len(gs))
	for i, g := range gs {
		v2[i] = v2Grade(g)
	}
	out["grades"] = v2
	if p != nil {
		out["remote_id"], out["permalink"], out["zipcode"], out["city"] = p.RemoteID, p.Permalink, p.Zipcode, p.City
		out["employer_description"], out["employer_website"], out["street"] = p.EmployerDescription, p.EmployerWebsite, p.Street
		out["max_candidates"], out["is_public"], out["handicap_accessible"] = p.MaxCandidates, p.IsPublic, p.HandicapAccessible
		out["lunch_break"], out["daily_hours"] = p.LunchBreak, p.DailyHours
	}
	return out
}

// fromOffer is an offer as the log holds it: published_at is null once
// unpublished, else the date given (omitted when unknown here).
func fromOffer(o domain.OfferPosted, withdrawn bool, publishedAt string) map[string]any {
	var pub any = publishedAt
	if withdrawn {
		pub = nil
	}
	out := offerJSON(o.OfferID, o.Partner, o.Title, o.Description, o.EmployerName, o.Sector, o.Grades, o.Weeks, o.Lat, o.Lon, o.Reserved, pub)
	if pub == "" {
		delete(out, "published_at")
	}
	return out
}

// fromDoc is an offer of the search read model.
func fromDoc(d projections.OfferDoc) map[string]any {
	var pub any = d.PostedAt.UTC().Format(time.RFC3339)
	if d.Status == "withdrawn" {
		pub = nil
	}
	out := offerJSON(d.ID, d.Partner, d.Title, d.Description, d.EmployerName, d.Sector, d.Grades, d.Weeks, d.Lat, d.Lon, d.Reserved, pub)
	if d.DistanceKM != nil {
		out["distance"] = math.Round(*d.DistanceKM * 1000) // metres
	}
	return out
}

// paginated is a page of offers with the national API's pagination.
func paginated(items []projections.OfferDoc, total, page int) map[string]any {
	offers := make([]map[string]any, len(items))
	for i, d := range items {
		offers[i] = fromDoc(d)
	}
	pages := max((total+PerPage-1)/PerPage, 1)
	var next, prev any
	if page < pages {
		next = page + 1
	}
	if page > 1 {
		prev = page - 1
	}
	return map[string]any{"internshipOffers": offers, "pagination": map[string]any{
		"totalInternshipOffers": total, "internshipOffersPerPage": PerPage, "totalPages": pages, "currentPage": page,
		"nextPage": next, "prevPage": prev, "isFirstPage": page == 1, "isLastPage": page >= pages,
	}}
}

func pageParam(r *http.Request) (int, error) {
	v := r.URL.Query().Get("page")
	if v == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 100_000 {
		return 0, api.Invalid("page", "must be an integer from 1")
	}
	return n, nil
}

// position is what a query waits for the read model to have applied:
// min_position when given, else the head of the log, so that an operator
// reads its own pushes as the national API lets it (at most 5 s, then
// 503).
func (a *API) position(r *http.Request) (eventstore.Position, error) {
	if r.URL.Query().Has("min_position") {
		return api.MinPosition(r)
	}
	return a.svc.Head(r.Context())
}

// list answers the operator's offers, a page at a time.
func (a *API) list(w http.ResponseWriter, r *http.Request, operatorID string) {
	page, err := pageParam(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	want, err := a.position(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	items, total, err := a.reads.OperatorOffers(r.Context(), want, operatorID, page, PerPage)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, paginated(items, total, page))
}

// search answers the open offers around a point, by keyword, weeks,
// sectors and grades, like GET /v1/offers.
func (a *API) search(w http.ResponseWriter, r *http.Request, _ string) {
	q, err := a.searchQuery(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	want, err := a.position(r)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	items, total, err := a.reads.PartnerSearch(r.Context(), want, q)
	if err != nil {
		api.WriteError(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, paginated(items, total, q.Page))
}

// searchQuery reads the search's parameters.
func (a *API) searchQuery(r *http.Request) (readapi.PartnerQuery, error) {
	qs := r.URL.Query()
	q := readapi.PartnerQuery{PerPage: PerPage, Weeks: qs["weeks[]"], Sectors: qs["sectors[]"]}
	var err error
	if q.Page, err = pageParam(r); err != nil {
		return q, err
	}
	if q.Near, q.RadiusKM, err = near(qs.Get("latitude"), qs.Get("longitude"), qs.Get("radius")); err != nil {
		return q, err
	}
	p := problems{}
	q.Grades = a.checkLists(p, q.Weeks, q.Sectors, qs["grades[]"])
	if kw := qs.Get("keyword"); kw != "" {
		q.Words = projections.Words(kw)
		if len(kw) > 200 || len(q.Words) == 0 || len(q.Words) > 10 {
			p.add("keyword", "must hold 1 to 10 words of two letters or more besides common ones (de, la, pour…), at most 200 bytes")
		}
	}
	return q, p.err()
}

// checkLists checks the weeks, sectors and grades of a search, and returns
// the grades in our words.
func (a *API) checkLists(p problems, weeks, sectors, gs []string) []string {
	var out []string
	for _, g := range gs {
		gr, ok := grades[g]
		if !ok {
			p.add("grades[]", g+" is not one of quatrieme, troisieme, seconde")
		}
		out = append(out, string(gr))
	}
	for _, w := range weeks {
		if _, err := domain.ParseWeek(w); err != nil {
			p.add("weeks[]", w+": "+err.Error())
		}
	}
	for _, s := range sectors {
		if _, ok := a.places.Sector(s); !ok {
			p.add("sectors[]", s+" is not a sector of the national list (s1…s51)")
		}
	}
	if len(weeks) > 60 || len(sectors) > 51 || len(gs) > 3 {
		p.add("weeks[]", "at most 60 weeks, 51 sectors and 3 grades")
	}
	return out
}

// near reads latitude, longitude and radius (metres): both coordinates
// or neither.
func near(lat, lon, radius string) (*[2]float64, float64, error) {
	if lat == "" && lon == "" {
		if radius != "" {
			return nil, 0, api.Invalid("radius", "needs latitude and longitude")
		}
		return nil, 0, nil
	}
	la, err1 := strconv.ParseFloat(lat, 64)
	lo, err2 := strconv.ParseFloat(lon, 64)
	if err1 != nil || math.IsNaN(la) || la < -85 || la > 85 {
		return nil, 0, api.Invalid("latitude", "latitude and longitude must be degrees, given together")
	}
	if err2 != nil || math.IsNaN(lo) || lo < -180 || lo > 180 {
		return nil, 0, api.Invalid("longitude", "latitude and longitude must be degrees, given together")
	}
	rad, err := radiusKM(radius)
	return &[2]float64{la, lo}, rad, err
}

// radiusKM reads a radius in metres (DefaultRadius when empty), in km.
func radiusKM(radius string) (float64, error) {
	if radius == "" {
		return DefaultRadius / 1000, nil
	}
	v, err := strconv.ParseFloat(radius, 64)
	if err != nil || math.IsNaN(v) || v <= 0 || v > 1_000_000 {
		return 0, api.Invalid("radius", "must be metres, above 0 and at most 1,000,000")
	}
	return v / 1000, nil
}

// sectors answers the national sector list.
func (a *API) sectors(w http.ResponseWriter, _ *http.Request, _ string) {
	out := make([]map[string]string, 0, len(a.places.Sectors))
	for _, s := range a.places.Sectors {
		out = append(out, map[string]string{"uuid": s.Code, "name": s.Name})
	}
	slices.SortFunc(out, func(x, y map[string]string) int {
		a, _ := strconv.Atoi(x["uuid"][1:])
		b, _ := strconv.Atoi(y["uuid"][1:])
		return a - b
	})
	api.WriteJSON(w, http.StatusOK, out)
}
