package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// TargetSet is the event of a campaign target: the back office sets a
// figure for the live statistics to reach in a scope, such as 100 open
// offers in département 94. The latest target of a scope and metric wins;
// 0 removes it.
type TargetSet struct {
	Scope  string    `json:"scope"`  // all, department, region, sector
	Code   string    `json:"code"`   // département, région (INSEE) or sector code; "all" for all
	Metric string    `json:"metric"` // see TargetMetrics
	Target int64     `json:"target"`
	SetAt  time.Time `json:"set_at"`
}

// EventType names the event in the log.
func (TargetSet) EventType() string { return "TargetSet" }

// TargetScopes and TargetMetrics are what a target may follow: the figures
// of the offer statistics (applications and conventions for the scope all
// only, the statistics counting them nationally).
var (
	TargetScopes  = []string{"all", "department", "region", "sector"}
	TargetMetrics = []string{"offers_open", "seats_total", "seats_available", "seats_held",
		"applications", "applications_confirmed", "conventions", "conventions_signed"}
)

// TargetStream is the stream of one target: "target-<scope>-<code>-<metric>".
func TargetStream(scope, code, metric string) string {
	return "target-" + scope + "-" + code + "-" + metric
}

// MaxTarget bounds a target (the national platform counts in hundreds of
// thousands).
const MaxTarget = 100_000_000

// TargetInput is the set-target command.
type TargetInput struct {
	Scope  string `json:"scope"`
	Code   string `json:"code"`
	Metric string `json:"metric"`
	Target int64  `json:"target"`
}

// Check validates the input; the scope all takes the code "all".
func (in *TargetInput) Check(places Places) error {
	p := Problems{}
	in.checkCode(p, places)
	switch {
	case !slices.Contains(TargetMetrics, in.Metric):
		p.Add("metric", "must be one of "+strings.Join(TargetMetrics, ", "))
	case in.Scope != "all" && (strings.HasPrefix(in.Metric, "applications") || strings.HasPrefix(in.Metric, "conventions")):
		p.Add("metric", "applications and conventions are counted for the scope all only")
	}
	if in.Target < 0 || in.Target > MaxTarget {
		p.Add("target", fmt.Sprintf("must be between 0 (removes the target) and %d", MaxTarget))
	}
	return p.Err()
}

// checkCode checks the scope and its code.
func (in *TargetInput) checkCode(p Problems, places Places) {
	switch in.Scope {
	case "all":
		if in.Code != "" && in.Code != "all" {
			p.Add("code", `must be empty or "all" for the scope all`)
		}
		in.Code = "all"
	case "department":
		if !places.DepartmentExists(in.Code) {
			p.Add("code", "must be a département code such as 94, 2A or 974")
		}
	case "region":
		if !places.RegionExists(in.Code) {
			p.Add("code", "must be an INSEE région code such as 11 or 84")
		}
	case "sector":
		if !places.SectorExists(in.Code) {
			p.Add("code", "must be a national sector code s1…s51")
		}
	default:
		p.Add("scope", "must be one of "+strings.Join(TargetScopes, ", "))
	}
}

// Target is one campaign target: its stream holds its successive values.
type Target struct {
	Current *TargetSet // nil: never set
}

// Apply folds an event of the target's stream.
func (t *Target) Apply(e Event) {
	if ev, ok := e.(*TargetSet); ok {
		c := *ev
		t.Current = &c
	}
}

// Set decides a checked input: the target already in force, or removing a
// target never set, appends nothing.
func (t *Target) Set(in TargetInput, now time.Time) []Event {
	if t.Current != nil && t.Current.Target == in.Target {
		return nil
	}
	if t.Current == nil && in.Target == 0 {
		return nil
	}
	return []Event{&TargetSet{Scope: in.Scope, Code: in.Code, Metric: in.Metric, Target: in.Target, SetAt: now}}
}
