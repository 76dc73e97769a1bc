package projections

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"passerelle/eventstore"
)

// hubSize is how many of the latest events a hub keeps for its readers.
const hubSize = 4096

// hub follows the log with one subscription for all the topics of a
// Subscriber and keeps the latest hubSize events for them: each topic
// reads from it instead of a subscription of its own, so that the store
// reads each new event once rather than once per projection. The hub never
// waits for a reader: a topic more than hubSize events behind (a slow or
// failing projection, one that starts behind) reads the log on its own
// until it is back within the hub's events, and holds no other back.
type hub struct {
	store  eventstore.Store
	filter eventstore.Filter
	log    *slog.Logger

	mu sync.Mutex
	// ring holds the latest events in order, the oldest at start; every
	// event after base is in it, from start on
	ring  []eventstore.RecordedEvent
	start int
	base  eventstore.Position
	wake  chan struct{} // closed when an event comes, then replaced
}

// newHub follows the log from its head, in the background until ctx ends.
func newHub(ctx context.Context, store eventstore.Store, filter eventstore.Filter, log *slog.Logger, wg *sync.WaitGroup) (*hub, error) {
	head, err := store.Head(ctx)
	if err != nil {
		return nil, err
	}
	h := &hub{store: store, filter: filter, log: log, ring: make([]eventstore.RecordedEvent, 0, hubSize), base: head, wake: make(chan struct{})}
	wg.Add(1)
	go func() {
		defer wg.Done()
		h.follow(ctx)
	}()
	return h, nil
}

// follow adds the log's events to the ring, subscribing again from the
// last one when the subscription drops.
func (h *hub) follow(ctx context.Context) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		h.mu.Lock()
		from := h.newest()
		h.mu.Unlock()
		sub, err := h.store.SubscribeAll(ctx, from, h.filter)
		if err == nil {
			for {
				var ev eventstore.RecordedEvent
				if ev, err = sub.Recv(ctx); err != nil {
					break
				}
				h.add(ev)
				backoff = 50 * time.Millisecond
			}
			_ = sub.Close()
		}
		if ctx.Err() != nil {
			return
		}
		h.log.Warn("shared event subscription dropped, resubscribing", "from", from, "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// newest is the position of the last event the hub holds (base when
// none); h.mu held.
func (h *hub) newest() eventstore.Position {
	if len(h.ring) == 0 {
		return h.base
	}
	return h.at(len(h.ring) - 1).Position
}

// at is the i-th oldest event held; h.mu held.
func (h *hub) at(i int) eventstore.RecordedEvent {
	return h.ring[(h.start+i)%len(h.ring)]
}

func (h *hub) add(ev eventstore.RecordedEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.ring) < cap(h.ring) {
		h.ring = append(h.ring, ev)
	} else {
		h.base = h.ring[h.start].Position
		h.ring[h.start] = ev
		h.start = (h.start + 1) % len(h.ring)
	}
	close(h.wake)
	h.wake = make(chan struct{})
}

// next returns the first event after pos if the hub holds it; else wait
// is closed when an event comes. behind: the hub no longer holds every
// event after pos.
func (h *hub) next(pos eventstore.Position) (ev eventstore.RecordedEvent, ok, behind bool, wait <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if pos < h.base {
		return eventstore.RecordedEvent{}, false, true, nil
	}
	i := sort.Search(len(h.ring), func(i int) bool { return h.at(i).Position > pos })
	if i == len(h.ring) {
		return eventstore.RecordedEvent{}, false, false, h.wake
	}
	return h.at(i), true, false, nil
}

// covers reports whether the hub holds the events after pos, pos being
// one it has: a reader there may read from it.
func (h *hub) covers(pos eventstore.Position) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.base <= pos && pos <= h.newest()
}

// subscribe is a subscription after from (exclusive), read from the hub
// while it holds the events, else from the store.
func (h *hub) subscribe(ctx context.Context, from eventstore.Position) eventstore.Subscription {
	return &hubReader{hub: h, ctx: ctx, last: from}
}

// hubReader is one topic's subscription through a hub.
type hubReader struct {
	hub  *hub
	ctx  context.Context
	last eventstore.Position
	own  eventstore.Subscription // its own, while it is behind the hub
}

// Recv implements eventstore.Subscription.
func (r *hubReader) Recv(ctx context.Context) (eventstore.RecordedEvent, error) {
	for {
		if r.own != nil {
			ev, err := r.own.Recv(ctx)
			if err != nil {
				return ev, err
			}
			r.last = ev.Position
			if r.hub.covers(r.last) {
				// back within the hub's events: read them from now on
				_ = r.own.Close()
				r.own = nil
			}
			return ev, nil
		}
		ev, ok, behind, wait := r.hub.next(r.last)
		switch {
		case ok:
			r.last = ev.Position
			return ev, nil
		case behind:
			own, err := r.hub.store.SubscribeAll(r.ctx, r.last, r.hub.filter)
			if err != nil {
				return eventstore.RecordedEvent{}, err
			}
			r.own = own
			continue
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return eventstore.RecordedEvent{}, ctx.Err()
		}
	}
}

// Close implements eventstore.Subscription.
func (r *hubReader) Close() error {
	if r.own == nil {
		return nil
	}
	err := r.own.Close()
	r.own = nil
	return err
}
