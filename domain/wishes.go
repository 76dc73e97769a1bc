package domain

import (
	"fmt"
	"slices"
)

// Bounds of a pupil's wishes.
const (
	MaxWishedSectors = 5
	MaxWishedOffers  = 10
	MaxDistanceKM    = 200
)

// PupilWishesRecorded records what a pupil wishes for their internship,
// said by the pupil, a guardian, their school or the back office (the
// event's actor). The latest wishes replace the earlier ones. They hold
// codes, weeks, ids and a distance only: nothing personal to seal.
type PupilWishesRecorded struct {
	PupilID       string   `json:"pupil_id"`
	Sectors       []string `json:"sectors"` // ranked, best first
	MaxDistanceKM int      `json:"max_distance_km"`
	// Weeks the pupil can go, sorted; none: any week an offer runs.
	Weeks  []string `json:"weeks,omitempty"`
	Offers []string `json:"offers,omitempty"` // ranked, best first
}

// EventType implements Event.
func (PupilWishesRecorded) EventType() string { return "PupilWishesRecorded" }

// WishesInput is the record-wishes command.
type WishesInput struct {
	Sectors       []string
	MaxDistanceKM int
	Weeks         []string
	Offers        []string
}

// RecordWishes decides a pupil's new wishes. offers are the offers the
// wishes name that exist, by id.
func (a *Pupil) RecordWishes(in WishesInput, places Places, offers map[string]*Offer) ([]Event, error) {
	if !a.exists || a.Forgotten {
		return nil, NotFoundf("pupil")
	}
	p := Problems{}
	checkRanked(p, "sectors", in.Sectors, MaxWishedSectors, func(s string) string {
		if !places.SectorExists(s) {
			return "must be a national sector code s1…s51"
		}
		return ""
	})
	if in.MaxDistanceKM < 1 || in.MaxDistanceKM > MaxDistanceKM {
		p.Add("max_distance_km", fmt.Sprintf("must be a number of kilometres between 1 and %d", MaxDistanceKM))
	}
	var weeks []string
	if len(in.Weeks) > 0 {
		weeks = checkWeeks(p, "weeks", in.Weeks)
		if len(weeks) > 52 {
			p.Add("weeks", "at most 52 weeks")
		}
	}
	checkRanked(p, "offers", in.Offers, MaxWishedOffers, func(id string) string {
		if o := offers[id]; o == nil || !o.Exists() {
			return "no offer is posted with this id"
		}
		return ""
	})
	if err := p.Err(); err != nil {
		return nil, err
	}
	ev := &PupilWishesRecorded{PupilID: a.Registered.PupilID, Sectors: slices.Clone(in.Sectors), MaxDistanceKM: in.MaxDistanceKM,
		Weeks: weeks, Offers: slices.Clone(in.Offers)}
	if a.Wishes != nil && a.Wishes.same(ev) {
		return nil, nil // the same wishes again
	}
	return []Event{ev}, nil
}

func (w *PupilWishesRecorded) same(o *PupilWishesRecorded) bool {
	return slices.Equal(w.Sectors, o.Sectors) && w.MaxDistanceKM == o.MaxDistanceKM &&
		slices.Equal(w.Weeks, o.Weeks) && slices.Equal(w.Offers, o.Offers)
}

// checkRanked checks a ranked list: at most max items, none twice, each
// passing check (which returns what is wrong, or "").
func checkRanked(p Problems, field string, items []string, max int, check func(string) string) {
	if len(items) > max {
		p.Add(field, fmt.Sprintf("at most %d, ranked best first", max))
		return
	}
	for i, it := range items {
		if slices.Index(items, it) != i {
			p.Add(field, fmt.Sprintf("%q is listed twice", it))
			return
		}
		if why := check(it); why != "" {
			p.Add(field, fmt.Sprintf("%q: %s", it, why))
			return
		}
	}
}
