package readapi

import (
	"context"
	"errors"
	"math"
	"net/http"
	"regexp"
	"slices"

	"github.com/go-chi/chi/v5"
	"github.com/redis/go-redis/v9"

	"passerelle/domain"
	"passerelle/internal/api"
	"passerelle/projections"
)

// Placement figures of a school or a département.
type Placement struct {
	Registered       int64   `json:"registered"`
	Placed           int64   `json:"placed"` // with a confirmed placement
	Signed           int64   `json:"signed"` // with a signed convention
	WithoutPlacement int64   `json:"without_placement"`
	PlacementRate    float64 `json:"placement_rate"` // placed / registered
	SignedRate       float64 `json:"signed_rate"`
}

func (p *Placement) rates() {
	p.WithoutPlacement = p.Registered - p.Placed
	if p.Registered > 0 {
		p.PlacementRate = math.Round(float64(p.Placed)/float64(p.Registered)*1000) / 1000
		p.SignedRate = math.Round(float64(p.Signed)/float64(p.Registered)*1000) / 1000
	}
}

// Dashboard is a school's follow-up of its pupils.
type Dashboard struct {
	projections.SchoolInfo
	Placement
	PupilsWithoutPlacement []string            `json:"pupils_without_placement"`
	ConventionsWaiting     map[string][]string `json:"conventions_waiting"` // missing role -> conventions
	// Proposals: applications the desk made for the school's pupils;
	// ProposalsPending: those still awaiting an answer or a confirmation.
	Proposals        int64  `json:"proposals"`
	ProposalsPending int64  `json:"proposals_pending"`
	Position         string `json:"position"`
}

var uaiRe = regexp.MustCompile(`^\d{7}[A-Z]$`)

func (a *API) schoolDashboard(ctx context.Context, r *http.Request, m model) (any, error) {
	uai := chi.URLParam(r, "uai")
	if !uaiRe.MatchString(uai) {
		return nil, notFound("school")
	}
	d := Dashboard{ConventionsWaiting: map[string][]string{}, PupilsWithoutPlacement: []string{}, Position: m.position.String()}
	if err := getDoc(ctx, m, projections.SchoolInfoKey(uai), "school", &d.SchoolInfo); err != nil {
		return nil, err
	}
	pupils, err := m.RDB.SDiff(ctx, m.Key(projections.SchoolPupilsKey(uai)), m.Key(projections.SchoolPlacedKey(uai))).Result()
	if err != nil {
		return nil, err
	}
	slices.Sort(pupils)
	d.PupilsWithoutPlacement = pupils
	if d.Placement, err = schoolPlacement(ctx, m, uai); err != nil {
		return nil, err
	}
	if d.Proposals, err = m.RDB.SCard(ctx, m.Key(projections.SchoolProposalsKey(uai))).Result(); err != nil {
		return nil, err
	}
	if d.ProposalsPending, err = m.RDB.SCard(ctx, m.Key(projections.SchoolPendingProposalsKey(uai))).Result(); err != nil {
		return nil, err
	}
	convs, err := m.RDB.SMembers(ctx, m.Key(projections.SchoolConventionsKey(uai))).Result()
	if err != nil || len(convs) == 0 {
		return d, err
	}
	docs, err := getDocs[projections.ConventionDoc](ctx, m, convs, projections.ConventionDocKey)
	if err != nil {
		return nil, err
	}
	for _, c := range docs {
		if c.Status != domain.ConvReady && c.Status != domain.ConvSigning {
			continue // not signable yet, signed or cancelled
		}
		for _, role := range c.MissingRoles {
			d.ConventionsWaiting[string(role)] = append(d.ConventionsWaiting[string(role)], c.ID)
		}
	}
	for _, ids := range d.ConventionsWaiting {
		slices.Sort(ids)
	}
	return d, nil
}

func schoolPlacement(ctx context.Context, m model, uai string) (Placement, error) {
	pipe := m.RDB.Pipeline()
	reg := pipe.SCard(ctx, m.Key(projections.SchoolPupilsKey(uai)))
	placed := pipe.SCard(ctx, m.Key(projections.SchoolPlacedKey(uai)))
	signed := pipe.SCard(ctx, m.Key(projections.SchoolSignedKey(uai)))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Placement{}, err
	}
	p := Placement{Registered: reg.Val(), Placed: placed.Val(), Signed: signed.Val()}
	p.rates()
	return p, nil
}

// PlacementStats is the answer of /v1/stats/placements.
type PlacementStats struct {
	Placement
	ByDepartment map[string]*Placement `json:"by_department"`
	BySchool     []SchoolPlacement     `json:"by_school"`
	Position     string                `json:"position"`
}

// SchoolPlacement is one school's line in the placement statistics.
type SchoolPlacement struct {
	projections.SchoolInfo
	Placement
}

var departmentRe = regexp.MustCompile(`^(\d{2,3}|2[AB])$`)

func (a *API) placementStats(ctx context.Context, r *http.Request, m model) (any, error) {
	q := api.Query(r)
	dep := q.Get("department")
	if dep != "" && !departmentRe.MatchString(dep) {
		return nil, api.Invalid("department", "must be a département code such as 94, 2A or 974")
	}
	out := PlacementStats{ByDepartment: map[string]*Placement{}, BySchool: []SchoolPlacement{}, Position: m.position.String()}
	if m.Prefix == "" {
		return out, nil
	}
	set := m.Key(projections.SchoolsKey())
	if dep != "" {
		set = m.Key(projections.DepartmentSchoolsKey(dep))
	}
	uais, err := m.RDB.SMembers(ctx, set).Result()
	if err != nil {
		return nil, err
	}
	slices.Sort(uais)
	for _, uai := range uais {
		var s SchoolPlacement
		if err := getDoc(ctx, m, projections.SchoolInfoKey(uai), "school", &s.SchoolInfo); err != nil {
			return nil, err
		}
		if s.Placement, err = schoolPlacement(ctx, m, uai); err != nil {
			return nil, err
		}
		out.BySchool = append(out.BySchool, s)
		d := out.ByDepartment[s.Department]
		if d == nil {
			d = &Placement{}
			out.ByDepartment[s.Department] = d
		}
		d.Registered, d.Placed, d.Signed = d.Registered+s.Registered, d.Placed+s.Placed, d.Signed+s.Signed
		out.Registered, out.Placed, out.Signed = out.Registered+s.Registered, out.Placed+s.Placed, out.Signed+s.Signed
	}
	for _, d := range out.ByDepartment {
		d.rates()
	}
	out.rates()
	return out, nil
}
