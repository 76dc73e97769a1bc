package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"passerelle/domain/allocation"
)

// CampaignStream and RoundStream name a campaign's and an allocation
// round's streams.
func CampaignStream(id string) string { return "campaign-" + id }

// RoundStream names an allocation round's stream.
func RoundStream(id string) string { return "round-" + id }

// CampaignCreated records an allocation campaign: the back office's scope
// for rounds (pupils of schools in these départements, and communes when
// given, of these grades, for these weeks) and an optional target of
// placed pupils.
type CampaignCreated struct {
	CampaignID string           `json:"campaign_id"`
	Name       string           `json:"name"`
	Scope      allocation.Scope `json:"scope"`
	Target     int              `json:"target,omitempty"`
	CreatedAt  time.Time        `json:"created_at"`
}

// RoundMatched records one part of a round's matches. A round's matches
// can be far larger than one append may be (1 MiB), so they are written in
// parts before the RoundComputed that closes them.
type RoundMatched struct {
	RoundID string             `json:"round_id"`
	Part    int                `json:"part"`
	Matches []allocation.Match `json:"matches"`
}

// RoundComputed records a computed round: how it was drawn (seed, choices
// per pupil), the figures of deferred acceptance and of first come on the
// same market, and how many matches its RoundMatched parts hold. Nothing
// is proposed yet.
type RoundComputed struct {
	RoundID    string             `json:"round_id"`
	CampaignID string             `json:"campaign_id"`
	Seed       int64              `json:"seed"`
	MaxChoices int                `json:"max_choices"`
	Parts      int                `json:"parts"`
	Matched    int                `json:"matched"`
	Figures    allocation.Figures `json:"figures"`
	FirstCome  allocation.Figures `json:"first_come"`
	ComputedAt time.Time          `json:"computed_at"`
}

// RoundPublished records that the round's matches are to be proposed. It
// comes before the proposals: a publication cut short is finished by
// publishing again.
type RoundPublished struct {
	RoundID     string    `json:"round_id"`
	PublishedAt time.Time `json:"published_at"`
}

// EventType implements Event.
func (CampaignCreated) EventType() string { return "CampaignCreated" }

// EventType implements Event.
func (RoundMatched) EventType() string { return "RoundMatched" }

// EventType implements Event.
func (RoundComputed) EventType() string { return "RoundComputed" }

// EventType implements Event.
func (RoundPublished) EventType() string { return "RoundPublished" }

// CampaignInput is the create-campaign command.
type CampaignInput struct {
	Name        string
	Departments []string
	Communes    []string
	Grades      []string
	Weeks       []string
	Target      int
}

// MaxCampaignTarget bounds a campaign's target of placed pupils.
const MaxCampaignTarget = 1_000_000

// Campaign is an allocation campaign.
type Campaign struct {
	Created CampaignCreated
	exists  bool
}

// Exists reports whether the campaign was created.
func (c *Campaign) Exists() bool { return c.exists }

// Apply folds an event of the campaign's stream.
func (c *Campaign) Apply(e Event) {
	if ev, ok := e.(*CampaignCreated); ok {
		c.Created, c.exists = *ev, true
	}
}

// Create decides a campaign's creation; creating it again with the same
// input appends nothing.
func (c *Campaign) Create(id string, in CampaignInput, places Places, now time.Time) ([]Event, error) {
	p := Problems{}
	required(p, "name", in.Name, 200)
	if len(in.Departments) == 0 || len(in.Departments) > 120 {
		p.Add("departments", "between 1 and 120 département codes are required")
	}
	for _, d := range in.Departments {
		if !places.DepartmentExists(d) {
			p.Add("departments", fmt.Sprintf("%q: must be a département code such as 94, 2A or 974", d))
		}
	}
	for _, code := range in.Communes {
		if dep, ok := places.CommuneDepartment(code); !ok || !slices.Contains(in.Departments, dep) {
			p.Add("communes", fmt.Sprintf("%q: must be an INSEE commune code of one of the départements", code))
		}
	}
	if len(in.Communes) > 1000 {
		p.Add("communes", "at most 1000 communes")
	}
	grades := checkGrades(p, in.Grades)
	weeks := checkWeeks(p, "weeks", in.Weeks)
	if in.Target < 0 || in.Target > MaxCampaignTarget {
		p.Add("target", fmt.Sprintf("must be between 0 and %d placed pupils", MaxCampaignTarget))
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	ev := CampaignCreated{CampaignID: id, Name: strings.TrimSpace(in.Name), Target: in.Target, CreatedAt: now.UTC(),
		Scope: allocation.Scope{Departments: sortedSet(in.Departments), Communes: sortedSet(in.Communes), Weeks: weeks}}
	for _, g := range grades {
		ev.Scope.Grades = append(ev.Scope.Grades, string(g))
	}
	if c.exists {
		return nil, nil // a retried creation lands on its own stream
	}
	return []Event{&ev}, nil
}

func sortedSet(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}

// DefaultMaxChoices is how many choices per pupil a round takes unless
// told; MaxMaxChoices bounds it.
const (
	DefaultMaxChoices = 10
	MaxMaxChoices     = 50
)

// RoundInput is the compute-round command, with its market already built.
type RoundInput struct {
	Seed       int64
	MaxChoices int
}

// Check validates the input and fills the default number of choices.
func (in *RoundInput) Check() error {
	if in.MaxChoices == 0 {
		in.MaxChoices = DefaultMaxChoices
	}
	if in.MaxChoices < 1 || in.MaxChoices > MaxMaxChoices {
		return Problems{"max_choices": fmt.Sprintf("must be between 1 and %d", MaxMaxChoices)}.Err()
	}
	return nil
}

// RoundPart is how many matches one RoundMatched holds: about 120 bytes
// each, well within an append's 1 MiB.
const RoundPart = 4000

// Round is an allocation round.
type Round struct {
	Computed  *RoundComputed
	Matches   []allocation.Match
	Published *RoundPublished
	written   int
}

// Exists reports whether the round was computed in full.
func (r *Round) Exists() bool { return r.Computed != nil }

// Written is how many events the stream holds.
func (r *Round) Written() int { return r.written }

// Apply folds an event of the round's stream. A part 0 starts the matches
// again: a computation cut short before its RoundComputed and retried
// writes its parts after the ones it left.
func (r *Round) Apply(e Event) {
	r.written++
	switch ev := e.(type) {
	case *RoundMatched:
		if ev.Part == 0 {
			r.Matches = nil
		}
		r.Matches = append(r.Matches, ev.Matches...)
	case *RoundComputed:
		c := *ev
		r.Computed = &c
	case *RoundPublished:
		p := *ev
		r.Published = &p
	}
}

// ComputeRound decides a computed round: its matches in parts, then the
// RoundComputed that closes them.
func ComputeRound(id, campaignID string, in RoundInput, m allocation.Market, now time.Time) []Event {
	da, fc := allocation.Run(m), allocation.FirstCome(m)
	matches := da.Matches(m)
	var evs []Event
	for i := 0; i < len(matches); i += RoundPart {
		evs = append(evs, &RoundMatched{RoundID: id, Part: len(evs), Matches: matches[i:min(i+RoundPart, len(matches))]})
	}
	return append(evs, &RoundComputed{RoundID: id, CampaignID: campaignID, Seed: m.Seed, MaxChoices: in.MaxChoices,
		Parts: len(evs), Matched: len(matches), Figures: allocation.FiguresOf(m, da), FirstCome: allocation.FiguresOf(m, fc),
		ComputedAt: now.UTC()})
}

// RoundPreview is what a computed round shows before it is published: the
// figures of deferred acceptance, those of first come on the same market,
// and the matches.
type RoundPreview struct {
	allocation.Figures
	FirstCome allocation.Figures `json:"first_come"`
	Matches   []allocation.Match `json:"matches"`
}

// Preview returns a computed round's preview.
func (r *Round) Preview() RoundPreview {
	matches := r.Matches
	if matches == nil {
		matches = []allocation.Match{}
	}
	return RoundPreview{Figures: r.Computed.Figures, FirstCome: r.Computed.FirstCome, Matches: matches}
}

// Publish decides the publication of a computed round; publishing again
// appends nothing (the proposals still missing are then made).
func (r *Round) Publish(now time.Time) ([]Event, error) {
	if r.Computed == nil {
		return nil, NotFoundf("round")
	}
	if r.Published != nil {
		return nil, nil
	}
	return []Event{&RoundPublished{RoundID: r.Computed.RoundID, PublishedAt: now.UTC()}}, nil
}

// AllocationGroup is a school's education priority for a round: its group
// in the figures and its pupils' priority at every offer (rep_plus 2, rep
// or a lycée near a QPV 1, none 0).
func (s *School) AllocationGroup() (group string, priority int) {
	switch r := s.Registered; {
	case r.EducationPriority == "rep_plus":
		return "rep_plus", 2
	case r.EducationPriority == "rep":
		return "rep", 1
	case r.QPV:
		return "qpv", 1
	}
	return "none", 0
}

// ReservedFor reports whether the offer is reserved, and whether the
// school's pupils may take it (always, when it is not reserved).
func (o *Offer) ReservedFor(school *School) (reserved, eligible bool) {
	return o.Posted.Reserved.Any(), o.eligible(school) == nil
}

// Slots are the placements an offer's weeks make: one week each at
// collège, consecutive pairs of weeks (and a lone week left over) for the
// seconde's one- or two-week period.
func (o *Offer) Slots() [][]string {
	weeks := o.Posted.Weeks
	var out [][]string
	for i := 0; i < len(weeks); i++ {
		if o.hasGrade(Grade2de) && i+1 < len(weeks) && consecutiveWeeks(weeks[i:i+2]) {
			out = append(out, weeks[i:i+2])
			i++
			continue
		}
		out = append(out, weeks[i:i+1])
	}
	return out
}
