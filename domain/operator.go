package domain

import (
	"fmt"
	"regexp"
	"slices"
)

// OperatorStream names an operator's stream, by the operator's id: the
// subject of its tokens.
func OperatorStream(id string) string { return "operator-" + id }

var operatorIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidOperatorID reports whether s can be an operator's id.
func ValidOperatorID(s string) bool { return operatorIDRe.MatchString(s) }

// MaxLinkedEmployers bounds the employers one link command names.
const MaxLinkedEmployers = 1000

// OperatorEmployersLinked records that the back office let an operator act
// for employers on the API, beside those the operator registered itself.
// Operator accounts (a later feature) link employers with the same event.
type OperatorEmployersLinked struct {
	OperatorID  string   `json:"operator_id"`
	EmployerIDs []string `json:"employer_ids"`
}

// EventType implements Event.
func (OperatorEmployersLinked) EventType() string { return "OperatorEmployersLinked" }

// Operator is a partner that publishes offers for employers: the
// employers the back office linked it to.
type Operator struct {
	ID        string
	Employers map[string]bool
	// Account is the operator's account, when the back office registered
	// one (POST /v1/operators).
	Account *OperatorRegistered
}

// Apply folds an event of the operator's stream.
func (o *Operator) Apply(e Event) {
	if ev, ok := e.(*OperatorRegistered); ok {
		o.ID, o.Account = ev.OperatorID, ev
	}
	if ev, ok := e.(*OperatorEmployersLinked); ok {
		o.ID = ev.OperatorID
		if o.Employers == nil {
			o.Employers = map[string]bool{}
		}
		for _, id := range ev.EmployerIDs {
			o.Employers[id] = true
		}
	}
}

// ActsFor reports whether the operator was linked to the employer.
func (o *Operator) ActsFor(employerID string) bool { return o.Employers[employerID] }

// LinkEmployers links the operator id to registered employers (exists
// tells which are); those linked already are left out, so linking again
// appends nothing.
func (o *Operator) LinkEmployers(id string, employerIDs []string, exists func(string) bool) ([]Event, error) {
	p := Problems{}
	switch {
	case len(employerIDs) == 0:
		p.Add("employer_ids", "is required: at least one employer id")
	case len(employerIDs) > MaxLinkedEmployers:
		p.Add("employer_ids", fmt.Sprintf("at most %d employers at once", MaxLinkedEmployers))
	}
	var add []string
	for i, e := range employerIDs {
		switch {
		case !ValidID(e) || !exists(e):
			p.Add(fmt.Sprintf("employer_ids[%d]", i), "no employer is registered with this id")
		case !o.ActsFor(e) && !slices.Contains(add, e):
			add = append(add, e)
		}
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	if len(add) == 0 {
		return nil, nil
	}
	return []Event{&OperatorEmployersLinked{OperatorID: id, EmployerIDs: add}}, nil
}
