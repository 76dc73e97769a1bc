package projections

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"passerelle/domain"
	"passerelle/domain/refdata"
)

// StatsName is the live statistics projection.
const StatsName = "stats"

// StatsCountersKey is the hash of counters "<scope>:<metric>". Offer
// scopes are "all", "sector:<code>", "department:<code>",
// "region:<code>", "grade:<grade>" and "week:<ISO week>", with metrics
// offers_open, seats_total and seats_available (seat-weeks; for a week
// scope, the seats of that week). "applications:<status>" and
// "conventions:<status>" count applications and conventions by status.
func StatsCountersKey() string { return "counters" }

// StatsTargetsKey is the hash of campaign targets "<scope>:<code>:<metric>"
// → target, set by the back office (event domain.TargetSet).
func StatsTargetsKey() string { return "targets" }

// statsOffer is what the statistics need to remember of an offer.
type statsOffer struct {
	Sector     string         `json:"sector"`
	Department string         `json:"department"`
	Grades     []domain.Grade `json:"grades"`
	Weeks      []string       `json:"week_list"`
	Seats      int            `json:"seats"`
	Held       map[string]int `json:"held_by_week"`
	Open       bool           `json:"open"`
}

// contribution is what an offer adds to the counters: nothing once
// withdrawn.
func (o statsOffer) contribution() map[string]int {
	c := map[string]int{}
	if !o.Open {
		return c
	}
	total, free := 0, 0
	for _, w := range o.Weeks {
		f := o.Seats - o.Held[w]
		total, free = total+o.Seats, free+f
		c["week:"+w+":offers_open"]++
		c["week:"+w+":seats_total"] += o.Seats
		c["week:"+w+":seats_available"] += f
	}
	scopes := []string{"all", "sector:" + o.Sector, "department:" + o.Department}
	if d, ok := refdata.MustLoad().Department(o.Department); ok {
		scopes = append(scopes, "region:"+d.Region)
	}
	for _, g := range o.Grades {
		scopes = append(scopes, "grade:"+string(g))
	}
	for _, s := range scopes {
		c[s+":offers_open"]++
		c[s+":seats_total"] += total
		c[s+":seats_available"] += free
	}
	return c
}

// Stats projects the counters of the dashboards. Each offer event moves
// the counters by the difference between the offer's contribution before
// and after it.
type Stats struct{}

func (Stats) Name() string { return StatsName }

func (Stats) Handle(ctx context.Context, v View, ev Event) ([]Cmd, error) {
	switch e := ev.Data.(type) {
	case *domain.TargetSet:
		field := e.Scope + ":" + e.Code + ":" + e.Metric
		if e.Target <= 0 {
			return []Cmd{{"HDEL", v.Key(StatsTargetsKey()), field}}, nil
		}
		return []Cmd{{"HSET", v.Key(StatsTargetsKey()), field, e.Target}}, nil
	case *domain.ApplicationSubmitted:
		return statusChange(ctx, v, "application", e.ApplicationID, domain.StatusSubmitted)
	case *domain.ApplicationRead:
		return statusChange(ctx, v, "application", e.ApplicationID, domain.StatusRead)
	case *domain.ApplicationAccepted:
		return statusChange(ctx, v, "application", e.ApplicationID, domain.StatusAccepted)
	case *domain.ApplicationRejected:
		return statusChange(ctx, v, "application", e.ApplicationID, domain.StatusRejected)
	case *domain.ApplicationWithdrawn:
		return statusChange(ctx, v, "application", e.ApplicationID, domain.StatusWithdrawn)
	case *domain.ApplicationConfirmed:
		return statusChange(ctx, v, "application", e.ApplicationID, domain.StatusConfirmed)
	case *domain.ApplicationCancelled:
		return statusChange(ctx, v, "application", e.ApplicationID, domain.StatusCancelled)
	case *domain.ApplicationExpired:
		return statusChange(ctx, v, "application", e.ApplicationID, domain.StatusExpired)
	case *domain.ConventionDrafted:
		return statusChange(ctx, v, "convention", e.ConventionID, domain.ConvDraft)
	case *domain.ConventionCompleted:
		// a new version of the document: ready once both parties completed
		// it, and its earlier signatures are void
		parts, err := v.RDB.SMembers(ctx, v.Key("convention-parts", e.ConventionID)).Result()
		if err != nil {
			return nil, err
		}
		status := domain.ConvDraft
		if len(parts) == 2 || (len(parts) == 1 && parts[0] != e.Party) {
			status = domain.ConvReady
		}
		cmds, err := statusChange(ctx, v, "convention", e.ConventionID, status)
		return append(cmds, Cmd{"SADD", v.Key("convention-parts", e.ConventionID), e.Party}), err
	case *domain.ConventionSignatureAdded:
		return statusChange(ctx, v, "convention", e.ConventionID, domain.ConvSigning)
	case *domain.ConventionSigned:
		return statusChange(ctx, v, "convention", e.ConventionID, domain.ConvSigned)
	case *domain.ConventionCancelled:
		return statusChange(ctx, v, "convention", e.ConventionID, domain.ConvCancelled)
	case *domain.OfferPosted:
		o := statsOffer{Sector: e.Sector, Department: e.Department, Grades: e.Grades, Weeks: e.Weeks, Seats: e.Seats, Held: map[string]int{}, Open: true}
		return append(diff(v, statsOffer{}, o), setJSON(v.Key("offer", e.OfferID), o)), nil
	}
	var id string
	switch e := ev.Data.(type) {
	case *domain.OfferWithdrawn:
		id = e.OfferID
	case *domain.OfferReopened:
		id = e.OfferID
	case *domain.OfferAmended:
		id = e.OfferID
	case *domain.SeatHeld:
		id = e.OfferID
	case *domain.SeatReleased:
		id = e.OfferID
	default:
		return nil, nil
	}
	var before statsOffer
	if ok, err := getJSON(ctx, v.RDB, v.Key("offer", id), &before); !ok {
		return nil, err
	}
	after := before
	after.Held = map[string]int{}
	for w, n := range before.Held {
		after.Held[w] = n
	}
	switch e := ev.Data.(type) {
	case *domain.OfferWithdrawn:
		after.Open = false
	case *domain.OfferReopened:
		after.Open = true
	case *domain.OfferAmended:
		after.Weeks, after.Seats = e.Weeks, e.Seats
	case *domain.SeatHeld:
		for _, w := range e.Weeks {
			after.Held[w]++
		}
	case *domain.SeatReleased:
		for _, w := range e.Weeks {
			after.Held[w]--
		}
	}
	return append(diff(v, before, after), setJSON(v.Key("offer", id), after)), nil
}

// diff moves the counters from an offer's old contribution to its new one.
func diff(v View, before, after statsOffer) []Cmd {
	b, a := before.contribution(), after.contribution()
	var cmds []Cmd
	key := v.Key(StatsCountersKey())
	for f, n := range a {
		if d := n - b[f]; d != 0 {
			cmds = append(cmds, Cmd{"HINCRBY", key, f, d})
		}
	}
	for f, n := range b {
		if _, ok := a[f]; !ok && n != 0 {
			cmds = append(cmds, Cmd{"HINCRBY", key, f, -n})
		}
	}
	return cmds
}

// statusChange moves one application or convention between status counters.
func statusChange(ctx context.Context, v View, kind, id, status string) ([]Cmd, error) {
	statusKey := v.Key(kind, id)
	old, err := v.RDB.Get(ctx, statusKey).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	if old == status {
		return nil, nil
	}
	key := v.Key(StatsCountersKey())
	cmds := []Cmd{{"HINCRBY", key, kind + "s:" + status, 1}, {"SET", statusKey, status}}
	if old != "" {
		cmds = append(cmds, Cmd{"HINCRBY", key, kind + "s:" + old, -1})
	}
	return cmds, nil
}
