package authz

import (
	"context"
	"errors"

	"passerelle/domain"
	"passerelle/eventstore"
)

// owners reads who owns a resource from the first event of its stream.
type owners struct {
	store eventstore.Store
}

// first decodes the first event of stream into v; a missing stream or a
// malformed id leaves v zero.
func (o *owners) first(ctx context.Context, id string, stream func(string) string, v domain.Event) (eventstore.Actor, error) {
	if !domain.ValidID(id) {
		return eventstore.Actor{}, nil
	}
	evs, err := o.store.ReadStream(ctx, stream(id), eventstore.Forwards, 0, 1)
	if errors.Is(err, eventstore.ErrStreamNotFound) || (err == nil && len(evs) == 0) {
		return eventstore.Actor{}, nil
	}
	if err != nil {
		return eventstore.Actor{}, err
	}
	e, err := domain.Decode(evs[0].Type, evs[0].Data)
	if err != nil || e.EventType() != v.EventType() {
		return eventstore.Actor{}, nil
	}
	md, _ := eventstore.DecodeMetadata(evs[0].Metadata)
	switch dst := v.(type) {
	case *domain.ApplicationSubmitted:
		*dst = *e.(*domain.ApplicationSubmitted)
	case *domain.ConventionDrafted:
		*dst = *e.(*domain.ConventionDrafted)
	case *domain.PupilRegistered:
		*dst = *e.(*domain.PupilRegistered)
	case *domain.OfferPosted:
		*dst = *e.(*domain.OfferPosted)
	}
	return md.Actor, nil
}

func (o *owners) application(ctx context.Context, id string) (domain.ApplicationSubmitted, error) {
	var a domain.ApplicationSubmitted
	_, err := o.first(ctx, id, domain.ApplicationStream, &a)
	return a, err
}

func (o *owners) convention(ctx context.Context, id string) (domain.ConventionDrafted, error) {
	var c domain.ConventionDrafted
	_, err := o.first(ctx, id, domain.ConventionStream, &c)
	return c, err
}

func (o *owners) pupil(ctx context.Context, id string) (domain.PupilRegistered, error) {
	var p domain.PupilRegistered
	_, err := o.first(ctx, id, domain.PupilStream, &p)
	return p, err
}

func (o *owners) offer(ctx context.Context, id string) (domain.OfferPosted, eventstore.Actor, error) {
	var p domain.OfferPosted
	actor, err := o.first(ctx, id, domain.OfferStream, &p)
	return p, actor, err
}
