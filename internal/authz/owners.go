package authz

import (
	"errors"

	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/internal/auth"
)

// first decodes the first event of the stream of the resource {id}, where
// its owners are recorded, and who appended it. found is false for a
// malformed id, a missing stream or a first event of another type: an
// unknown resource, owned by nobody.
func first[E domain.Event](r *request, stream func(id string) string) (e E, actor eventstore.Actor, found bool, err error) {
	return firstOf[E](r, stream, r.params["id"])
}

// firstOf is first for the resource id.
func firstOf[E domain.Event](r *request, stream func(id string) string, id string) (e E, actor eventstore.Actor, found bool, err error) {
	if !domain.ValidID(id) {
		return e, actor, false, nil
	}
	evs, err := r.store.ReadStream(r.ctx, stream(id), eventstore.Forwards, 0, 1)
	if errors.Is(err, eventstore.ErrStreamNotFound) || (err == nil && len(evs) == 0) {
		return e, actor, false, nil
	}
	if err != nil {
		return e, actor, false, err
	}
	decoded, err := domain.Decode(evs[0].Type, evs[0].Data)
	if err != nil {
		return e, actor, false, nil
	}
	e, found = decoded.(E)
	if !found {
		return e, actor, false, nil
	}
	md, _ := eventstore.DecodeMetadata(evs[0].Metadata)
	return e, md.Actor, true, nil
}

// actsFor reports whether the operator making the request may act for the
// employer: it registered the employer, or the back office linked it to
// the employer (the operator's stream).
func actsFor(r *request, employerID string) (bool, error) {
	if r.p.Role != auth.Operator || !domain.ValidOperatorID(r.p.Subject) {
		return false, nil
	}
	_, actor, found, err := firstOf[*domain.EmployerRegistered](r, domain.EmployerStream, employerID)
	if err != nil || !found {
		return false, err
	}
	if actor.Role == auth.Operator && actor.Subject == r.p.Subject {
		return true, nil
	}
	evs, err := r.store.ReadStream(r.ctx, domain.OperatorStream(r.p.Subject), eventstore.Forwards, 0, 0)
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var o domain.Operator
	for _, re := range evs {
		if e, err := domain.Decode(re.Type, re.Data); err == nil {
			o.Apply(e)
		}
	}
	return o.ActsFor(employerID), nil
}
