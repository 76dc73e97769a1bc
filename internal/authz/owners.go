package authz

import (
	"errors"

	"passerelle/domain"
	"passerelle/eventstore"
)

// first decodes the first event of the stream of the resource {id}, where
// its owners are recorded, and who appended it. found is false for a
// malformed id, a missing stream or a first event of another type: an
// unknown resource, owned by nobody.
func first[E domain.Event](r *request, stream func(id string) string) (e E, actor eventstore.Actor, found bool, err error) {
	return firstOf[E](r, r.params["id"], stream)
}

// firstOf is first for the resource id.
func firstOf[E domain.Event](r *request, id string, stream func(id string) string) (e E, actor eventstore.Actor, found bool, err error) {
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
