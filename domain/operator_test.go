package domain_test

import (
	"errors"
	"slices"
	"testing"

	"passerelle/domain"
)

func TestLinkEmployers(t *testing.T) {
	const e1, e2, unknown = "00000000-0000-5000-8000-000000000001", "00000000-0000-5000-8000-000000000002", "00000000-0000-5000-8000-000000000009"
	registered := func(id string) bool { return id == e1 || id == e2 }
	var o domain.Operator
	evs, err := o.LinkEmployers("op-1", []string{e1, e1}, registered)
	if err != nil || len(evs) != 1 {
		t.Fatalf("first link: %v %v", evs, err)
	}
	o.Apply(evs[0])
	if !o.ActsFor(e1) || o.ActsFor(e2) || o.ID != "op-1" {
		t.Fatalf("after linking e1: %+v", o)
	}
	// linked again: nothing new; e2 added alone
	if evs, err := o.LinkEmployers("op-1", []string{e1}, registered); err != nil || evs != nil {
		t.Fatalf("linking again: %v %v", evs, err)
	}
	evs, err = o.LinkEmployers("op-1", []string{e1, e2}, registered)
	if err != nil || len(evs) != 1 || !slices.Equal(evs[0].(*domain.OperatorEmployersLinked).EmployerIDs, []string{e2}) {
		t.Fatalf("linking e1 and e2: %v %v", evs, err)
	}
	for name, ids := range map[string][]string{"none": nil, "unknown": {e1, unknown}, "not an id": {"x"}} {
		_, err := o.LinkEmployers("op-1", ids, registered)
		var verr *domain.ValidationError
		if !errors.As(err, &verr) {
			t.Errorf("%s: %v, want a validation error", name, err)
		}
	}
	if !domain.ValidOperatorID("op-A") || domain.ValidOperatorID("") || domain.ValidOperatorID("a/b") {
		t.Error("ValidOperatorID")
	}
}
