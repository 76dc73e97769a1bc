package readapi

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"passerelle/eventstore"
	"passerelle/internal/api"
	"passerelle/projections"
)

// Figures are the counters of one scope.
type Figures struct {
	OffersOpen     int64 `json:"offers_open"`
	SeatsTotal     int64 `json:"seats_total"`
	SeatsAvailable int64 `json:"seats_available"`
	SeatsHeld      int64 `json:"seats_held"`
	// ProposalsPending: proposals (by a round or the desk) awaiting their
	// answer, for offers of the scope.
	ProposalsPending int64 `json:"proposals_pending"`
	// PupilsBooked: pupils whose school booked them a seat on a collective
	// offer of the scope (a group booking), while it holds.
	PupilsBooked int64 `json:"pupils_booked"`
}

// OfferStats is the answer of /v1/stats/offers.
type OfferStats struct {
	Figures
	BySector     map[string]*Figures `json:"by_sector"`
	ByDepartment map[string]*Figures `json:"by_department"`
	ByRegion     map[string]*Figures `json:"by_region"`
	ByGrade      map[string]*Figures `json:"by_grade"`
	ByWeek       map[string]*Figures `json:"by_week"`
	Applications map[string]int64    `json:"applications"` // by status
	Conventions  map[string]int64    `json:"conventions"`  // by status
	Targets      []TargetProgress    `json:"targets"`
	Position     string              `json:"position"`
}

// TargetProgress is a campaign target (POST /v1/targets) and how far the
// figures of its scope are. Beside its metric, it counts the placements
// under way in its scope: the proposals awaiting their answer (what a
// published round may yet add) and the pupils placed by group bookings
// (their seats and confirmed applications are already in current).
type TargetProgress struct {
	Scope            string  `json:"scope"`
	Code             string  `json:"code"`
	Metric           string  `json:"metric"`
	Target           int64   `json:"target"`
	Current          int64   `json:"current"`
	Progress         float64 `json:"progress"` // current / target
	Reached          bool    `json:"reached"`
	ProposalsPending int64   `json:"proposals_pending"`
	PupilsBooked     int64   `json:"pupils_booked"`
}

// current is the value of a target's metric in the statistics.
func (s *OfferStats) current(scope, code, metric string) int64 {
	sum := func(m map[string]int64) (n int64) {
		for _, v := range m {
			n += v
		}
		return n
	}
	switch metric {
	case "applications":
		return sum(s.Applications)
	case "applications_confirmed":
		return s.Applications["confirmed"]
	case "conventions":
		return sum(s.Conventions)
	case "conventions_signed":
		return s.Conventions["signed"]
	}
	f := s.figures(scope, code)
	switch metric {
	case "offers_open":
		return f.OffersOpen
	case "seats_total":
		return f.SeatsTotal
	case "seats_available":
		return f.SeatsAvailable
	case "seats_held":
		return f.SeatsHeld
	}
	return 0
}

// figures are the figures of a target's scope (all zero when none).
func (s *OfferStats) figures(scope, code string) *Figures {
	if scope == "all" {
		return &s.Figures
	}
	g := map[string]map[string]*Figures{"sector": s.BySector, "department": s.ByDepartment, "region": s.ByRegion}[scope]
	if f := g[code]; f != nil {
		return f
	}
	return &Figures{}
}

// readTargets adds the campaign targets and their progress.
func readTargets(ctx context.Context, m model, s *OfferStats) error {
	h, err := m.RDB.HGetAll(ctx, m.Key(projections.StatsTargetsKey())).Result()
	if err != nil {
		return err
	}
	for field, raw := range h {
		parts := strings.SplitN(field, ":", 3)
		target, err := strconv.ParseInt(raw, 10, 64)
		if len(parts) != 3 || err != nil || target <= 0 {
			continue
		}
		t := TargetProgress{Scope: parts[0], Code: parts[1], Metric: parts[2], Target: target}
		t.Current = s.current(t.Scope, t.Code, t.Metric)
		t.Progress = math.Round(float64(t.Current)/float64(t.Target)*1000) / 1000
		t.Reached = t.Current >= t.Target
		f := s.figures(t.Scope, t.Code)
		t.ProposalsPending, t.PupilsBooked = f.ProposalsPending, f.PupilsBooked
		s.Targets = append(s.Targets, t)
	}
	slices.SortFunc(s.Targets, func(x, y TargetProgress) int {
		return cmp.Or(strings.Compare(x.Scope, y.Scope), strings.Compare(x.Code, y.Code), strings.Compare(x.Metric, y.Metric))
	})
	return nil
}

func (a *API) offerStats(ctx context.Context, _ *http.Request, m model) (any, error) {
	return readStats(ctx, m)
}

func readStats(ctx context.Context, m model) (*OfferStats, error) {
	s := &OfferStats{BySector: map[string]*Figures{}, ByDepartment: map[string]*Figures{}, ByRegion: map[string]*Figures{},
		ByGrade: map[string]*Figures{}, ByWeek: map[string]*Figures{}, Applications: map[string]int64{}, Conventions: map[string]int64{},
		Targets: []TargetProgress{}, Position: m.position.String()}
	if m.Prefix == "" {
		return s, nil
	}
	h, err := m.RDB.HGetAll(ctx, m.Key(projections.StatsCountersKey())).Result()
	if err != nil {
		return nil, err
	}
	for field, raw := range h {
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("stats counter %s: %w", field, err)
		}
		s.addCounter(field, n)
	}
	s.dropClosedScopes()
	return s, readTargets(ctx, m, s)
}

// addCounter adds the counter field of the statistics model, worth n:
// applications:<status>, conventions:<status>, all:<figure> or
// <group>:<code>:<figure>; any other is left out.
func (s *OfferStats) addCounter(field string, n int64) {
	parts := strings.Split(field, ":")
	switch {
	case len(parts) == 2 && parts[0] == "applications":
		if n != 0 {
			s.Applications[parts[1]] = n
		}
		return
	case len(parts) == 2 && parts[0] == "conventions":
		if n != 0 {
			s.Conventions[parts[1]] = n
		}
		return
	}
	if f := s.scope(parts); f != nil {
		f.set(parts[len(parts)-1], n)
	}
}

// scope is the figures a counter's parts name, added when missing; nil
// when they name none.
func (s *OfferStats) scope(parts []string) *Figures {
	switch {
	case len(parts) == 2 && parts[0] == "all":
		return &s.Figures
	case len(parts) == 3:
		group := map[string]map[string]*Figures{"sector": s.BySector, "department": s.ByDepartment, "region": s.ByRegion,
			"grade": s.ByGrade, "week": s.ByWeek}[parts[0]]
		if group == nil {
			return nil
		}
		if group[parts[1]] == nil {
			group[parts[1]] = &Figures{}
		}
		return group[parts[1]]
	}
	return nil
}

// set sets the counted figure name (the held seats are derived).
func (f *Figures) set(name string, n int64) {
	switch name {
	case "offers_open":
		f.OffersOpen = n
	case "seats_total":
		f.SeatsTotal = n
	case "seats_available":
		f.SeatsAvailable = n
	case "proposals_pending":
		f.ProposalsPending = n
	case "pupils_booked":
		f.PupilsBooked = n
	}
}

// dropClosedScopes derives the held seats and leaves out a scope whose
// offers all closed: it keeps zero counters.
func (s *OfferStats) dropClosedScopes() {
	s.SeatsHeld = s.SeatsTotal - s.SeatsAvailable
	for _, g := range []map[string]*Figures{s.BySector, s.ByDepartment, s.ByRegion, s.ByGrade, s.ByWeek} {
		for k, f := range g {
			if *f == (Figures{}) {
				delete(g, k)
				continue
			}
			f.SeatsHeld = f.SeatsTotal - f.SeatsAvailable
		}
	}
}

// statsStream pushes the statistics as Server-Sent Events whenever they
// change, at most once per StreamEvery, with a heartbeat.
func (a *API) statsStream(w http.ResponseWriter, r *http.Request) {
	if _, err := api.MinPosition(r); err != nil {
		api.WriteError(w, r, err)
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		api.WriteError(w, r, api.Errorf(http.StatusNotAcceptable, "not_acceptable", "streaming is not supported on this connection"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()

	ctx := r.Context()
	tick := time.NewTicker(a.StreamEvery)
	defer tick.Stop()
	beat := time.NewTicker(a.Heartbeat)
	defer beat.Stop()
	// Pushes are coalesced: at most one per StreamEvery, and only when a
	// figure changed (events that change none, a signature or a seal, move
	// the position only). A tick asks Redis only once this process's
	// runner has moved since the last look (when it tells its progress),
	// so that idle dashboards cost nothing.
	lastPosition, lastFigures := "none", ""
	var moved <-chan struct{} // closed once the runner moves; nil: look
	for {
		if moved != nil {
			select {
			case <-moved:
				moved = nil
			default:
			}
		}
		if moved == nil {
			moved = a.pushStats(ctx, w, flusher, &lastPosition, &lastFigures)
		}
		select {
		case <-ctx.Done():
			return
		case <-beat.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil {
				return
			}
			flusher.Flush()
		case <-tick.C:
		}
	}
}

// pushStats sends the statistics when a figure changed since the last
// push, and returns the channel that tells when the runner here next moves
// (nil when it does not tell, or the look failed).
func (a *API) pushStats(ctx context.Context, w io.Writer, flusher http.Flusher, lastPosition, lastFigures *string) <-chan struct{} {
	var moved <-chan struct{}
	if a.Progress != nil {
		_, moved = a.Progress(projections.StatsName) // before the look: a move during it is not missed
	}
	m, err := a.model(ctx, projections.StatsName, eventstore.Start)
	if err == nil && m.position.String() != *lastPosition {
		var s *OfferStats
		if s, err = readStats(ctx, m); err == nil {
			err = a.stillHeld(ctx, m)
		}
		if err == nil {
			*lastPosition = m.position.String()
			s.Position = ""
			figures, _ := json.Marshal(s)
			if string(figures) != *lastFigures {
				*lastFigures = string(figures)
				s.Position = *lastPosition
				b, _ := json.Marshal(s)
				if _, err := fmt.Fprintf(w, "event: stats\nid: %s\ndata: %s\n\n", s.Position, b); err != nil {
					return nil
				}
				flusher.Flush()
			}
		}
	}
	if err != nil {
		return nil
	}
	return moved
}
