package desk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"passerelle/domain"
	"passerelle/internal/api"
	"passerelle/internal/authz"
	"passerelle/internal/route"
)

// API serves the desk's queries from the index.
type API struct {
	ix *Index
	// MaxWait bounds how long a query waits for min_position.
	MaxWait time.Duration
}

// NewAPI serves the queries of ix.
func NewAPI(ix *Index) *API { return &API{ix: ix, MaxWait: 5 * time.Second} }

// Routes declares the desk's query routes.
func (a *API) Routes() []route.Route {
	const get = http.MethodGet
	bo := authz.Backoffice
	pupilsOwn := authz.AnyOf(bo, authz.Pupil(authz.Param("id")), authz.Guardian(authz.Param("id")), authz.School(authz.PupilSchool))
	paging := []string{"page", "per_page", "min_position"}
	return []route.Route{
		{Method: get, Pattern: "/v1/pupils/{id}/suggestions", Status: http.StatusOK, Summary: "Offers a pupil may take, best first",
			Query: paging, StrictQuery: true, Allow: pupilsOwn, Handler: a.query(a.suggestions)},
		{Method: get, Pattern: "/v1/offers/{id}/candidates", Status: http.StatusOK, Summary: "Pupils who may take an offer, anonymous",
			Query: paging, StrictQuery: true, Allow: authz.AnyOf(bo, authz.OfferOwner), Handler: a.query(a.candidates)},
		{Method: get, Pattern: "/v1/desk/pupils", Status: http.StatusOK, Summary: "Pupils without a placement, fewest offers first",
			Query: append([]string{"school", "department"}, paging...), StrictQuery: true,
			Allow: authz.AnyOf(bo, authz.School(authz.Query("school"))), Handler: a.query(a.unplaced)},
	}
}

// Page is one page of a desk answer.
type Page[T any] struct {
	Items    []T    `json:"items"`
	Total    int    `json:"total"`
	Page     int    `json:"page"`
	PerPage  int    `json:"per_page"`
	Position string `json:"position"`
}

// UnplacedPage adds the pupils counted by their eligible offers.
type UnplacedPage struct {
	Page[Unplaced]
	ByEligibleOffers map[string]int `json:"by_eligible_offers"`
}

type queryFunc func(r *http.Request, pg, perPage int) (any, error)

// query validates paging and min_position, waits for the index, answers.
func (a *API) query(f queryFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		want, err := api.MinPosition(r)
		if err != nil {
			api.WriteError(w, r, err)
			return
		}
		pg, perPage, err := paging(r)
		if err != nil {
			api.WriteError(w, r, err)
			return
		}
		if err := a.ix.Wait(r.Context(), want, a.MaxWait); err != nil {
			api.WriteError(w, r, notReady(err))
			return
		}
		v, err := f(r, pg, perPage)
		if err != nil {
			api.WriteError(w, r, err)
			return
		}
		api.WriteJSON(w, http.StatusOK, v)
	}
}

func notReady(err error) error {
	if !errors.Is(err, ErrNotReady) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	e := api.Errorf(http.StatusServiceUnavailable, "not_ready", "the desk index has not caught up with the log yet: try again shortly")
	e.RetryAfter = time.Second
	return e
}

func (a *API) suggestions(r *http.Request, pg, perPage int) (any, error) {
	id := chi.URLParam(r, "id")
	items, total, ok := a.ix.Suggestions(id, (pg-1)*perPage, perPage)
	if !domain.ValidID(id) || !ok {
		return nil, api.Errorf(http.StatusNotFound, "not_found", "pupil not found")
	}
	return Page[Suggestion]{Items: items, Total: total, Page: pg, PerPage: perPage, Position: a.ix.Position().String()}, nil
}

func (a *API) candidates(r *http.Request, pg, perPage int) (any, error) {
	id := chi.URLParam(r, "id")
	items, total, ok := a.ix.Candidates(id, (pg-1)*perPage, perPage)
	if !domain.ValidID(id) || !ok {
		return nil, api.Errorf(http.StatusNotFound, "not_found", "offer not found")
	}
	return Page[Candidate]{Items: items, Total: total, Page: pg, PerPage: perPage, Position: a.ix.Position().String()}, nil
}

var (
	uaiRe        = regexp.MustCompile(`^\d{7}[A-Z]$`)
	departmentRe = regexp.MustCompile(`^(\d{2,3}|2[AB])$`)
)

func (a *API) unplaced(r *http.Request, pg, perPage int) (any, error) {
	q := r.URL.Query()
	t := Territory{School: q.Get("school"), Department: q.Get("department")}
	if t.School != "" && !uaiRe.MatchString(t.School) {
		return nil, api.Invalid("school", "must be a UAI (7 digits and an upper-case letter)")
	}
	if t.Department != "" && !departmentRe.MatchString(t.Department) {
		return nil, api.Invalid("department", "must be a département code such as 94, 2A or 974")
	}
	items, total, buckets := a.ix.UnplacedPupils(t, (pg-1)*perPage, perPage)
	return UnplacedPage{Page: Page[Unplaced]{Items: items, Total: total, Page: pg, PerPage: perPage, Position: a.ix.Position().String()},
		ByEligibleOffers: buckets}, nil
}

// paging reads page (from 1) and per_page (1 to 100, 20 by default).
func paging(r *http.Request) (int, int, error) {
	q := r.URL.Query()
	get := func(k string, def, hi int) (int, error) {
		v := q.Get(k)
		if v == "" {
			return def, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > hi {
			return 0, api.Invalid(k, fmt.Sprintf("must be an integer between 1 and %d", hi))
		}
		return n, nil
	}
	pg, err := get("page", 1, 1_000_000)
	if err != nil {
		return 0, 0, err
	}
	perPage, err := get("per_page", 20, 100)
	return pg, perPage, err
}
