package readapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"passerelle/internal/api"
	"passerelle/projections"
)

// Figures are the counters of one scope.
type Figures struct {
	OffersOpen     int64 `json:"offers_open"`
	SeatsTotal     int64 `json:"seats_total"`
	SeatsAvailable int64 `json:"seats_available"`
	SeatsHeld      int64 `json:"seats_held"`
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
	Position     string              `json:"position"`
}

func (a *API) offerStats(ctx context.Context, _ *http.Request, m model) (any, error) {
	return readStats(ctx, m)
}

func readStats(ctx context.Context, m model) (*OfferStats, error) {
	s := &OfferStats{BySector: map[string]*Figures{}, ByDepartment: map[string]*Figures{}, ByRegion: map[string]*Figures{},
		ByGrade: map[string]*Figures{}, ByWeek: map[string]*Figures{}, Applications: map[string]int64{}, Conventions: map[string]int64{},
		Position: m.position.String()}
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
		parts := strings.Split(field, ":")
		var f *Figures
		switch {
		case len(parts) == 2 && parts[0] == "applications":
			if n != 0 {
				s.Applications[parts[1]] = n
			}
			continue
		case len(parts) == 2 && parts[0] == "conventions":
			if n != 0 {
				s.Conventions[parts[1]] = n
			}
			continue
		case len(parts) == 2 && parts[0] == "all":
			f = &s.Figures
		case len(parts) == 3:
			group := map[string]map[string]*Figures{"sector": s.BySector, "department": s.ByDepartment, "region": s.ByRegion,
				"grade": s.ByGrade, "week": s.ByWeek}[parts[0]]
			if group == nil {
				continue
			}
			if group[parts[1]] == nil {
				group[parts[1]] = &Figures{}
			}
			f = group[parts[1]]
		default:
			continue
		}
		switch parts[len(parts)-1] {
		case "offers_open":
			f.OffersOpen = n
		case "seats_total":
			f.SeatsTotal = n
		case "seats_available":
			f.SeatsAvailable = n
		}
	}
	// a scope whose offers all closed keeps zero counters: leave it out
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
	return s, nil
}

// statsStream pushes the statistics as Server-Sent Events whenever the
// stats projection moves, at most once per StreamEvery, with a heartbeat.
func (a *API) statsStream(w http.ResponseWriter, r *http.Request) {
	if err := checkMinPosition(r); err != nil {
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
	last := "none"
	for {
		m, err := a.model(ctx, projections.StatsName, "")
		if err == nil && m.position.String() != last {
			var s *OfferStats
			if s, err = readStats(ctx, m); err == nil {
				b, _ := json.Marshal(s)
				if _, err := fmt.Fprintf(w, "event: stats\nid: %s\ndata: %s\n\n", s.Position, b); err != nil {
					return
				}
				flusher.Flush()
				last = m.position.String()
			}
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
