package projections

import (
	"context"

	"passerelle/domain"
)

// StatsName is the live offer statistics projection.
const StatsName = "stats"

// StatsCountersKey is the hash of counters "<scope>:<metric>", where scope
// is "all", "sector:<code>", "department:<code>" or "grade:<grade>" and
// metric is offers_open, seats_total or seats_available.
func StatsCountersKey() string { return "counters" }

// statsOffer is what the statistics need to remember of an offer.
type statsOffer struct {
	Sector     string         `json:"sector"`
	Department string         `json:"department"`
	Grades     []domain.Grade `json:"grades"`
	Weeks      int            `json:"weeks"`
	Seats      int            `json:"seats"`
	Held       int            `json:"held"` // seat-weeks held
	Open       bool           `json:"open"`
}

func (o statsOffer) scopes() []string {
	s := []string{"all", "sector:" + o.Sector, "department:" + o.Department}
	for _, g := range o.Grades {
		s = append(s, "grade:"+string(g))
	}
	return s
}

// Stats projects counters of open offers and seats, by sector, département
// and grade. Only open offers count; a withdrawn offer leaves the figures.
type Stats struct{}

func (Stats) Name() string { return StatsName }

func (Stats) Handle(ctx context.Context, v View, ev Event) ([]Cmd, error) {
	var id string
	switch e := ev.Data.(type) {
	case *domain.OfferPosted:
		o := statsOffer{Sector: e.Sector, Department: e.Department, Grades: e.Grades, Weeks: len(e.Weeks), Seats: e.Seats, Open: true}
		return append(o.add(v, 1, o.Seats*o.Weeks, o.Seats*o.Weeks), setJSON(v.Key("offer", e.OfferID), o)), nil
	case *domain.OfferWithdrawn:
		id = e.OfferID
	case *domain.SeatHeld:
		id = e.OfferID
	case *domain.SeatReleased:
		id = e.OfferID
	case *domain.OfferAmended:
		id = e.OfferID
	case *domain.OfferReopened:
		id = e.OfferID
	default:
		return nil, nil
	}
	var o statsOffer
	if ok, err := getJSON(ctx, v.RDB, v.Key("offer", id), &o); !ok {
		return nil, err
	}
	var cmds []Cmd
	switch e := ev.Data.(type) {
	case *domain.OfferWithdrawn:
		if !o.Open {
			return nil, nil
		}
		total := o.Seats * o.Weeks
		cmds = o.add(v, -1, -total, -(total - o.Held))
		o.Open = false
	case *domain.SeatHeld:
		o.Held += len(e.Weeks)
		if o.Open {
			cmds = o.add(v, 0, 0, -len(e.Weeks))
		}
	case *domain.SeatReleased:
		o.Held -= len(e.Weeks)
		if o.Open {
			cmds = o.add(v, 0, 0, len(e.Weeks))
		}
	case *domain.OfferAmended:
		delta := e.Seats*len(e.Weeks) - o.Seats*o.Weeks
		if o.Open && delta != 0 {
			cmds = o.add(v, 0, delta, delta)
		}
		o.Seats, o.Weeks = e.Seats, len(e.Weeks)
	case *domain.OfferReopened:
		if o.Open {
			return nil, nil
		}
		total := o.Seats * o.Weeks
		cmds = o.add(v, 1, total, total-o.Held)
		o.Open = true
	}
	return append(cmds, setJSON(v.Key("offer", id), o)), nil
}

func (o statsOffer) add(v View, offers, total, available int) []Cmd {
	var cmds []Cmd
	key := v.Key(StatsCountersKey())
	for _, s := range o.scopes() {
		for _, m := range []struct {
			name string
			d    int
		}{{"offers_open", offers}, {"seats_total", total}, {"seats_available", available}} {
			if m.d != 0 {
				cmds = append(cmds, Cmd{"HINCRBY", key, s + ":" + m.name, m.d})
			}
		}
	}
	return cmds
}
