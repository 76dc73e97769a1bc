package esdb

import (
	"context"
	"errors"
	"math"
	"time"

	esclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"passerelle/eventstore"
)

// subscriptionBuffer is how many events a subscription receives ahead of
// its consumer.
const subscriptionBuffer = 64

// nonSystemStreams matches every stream not starting with '$'.
const nonSystemStreams = "^[^$]"

// serverFilter narrows the subscription on the server. It may let through
// more than the filter (an event-type prefix, the bare stream "offer"
// excluded…): every event is checked again on arrival.
func serverFilter(f eventstore.Filter) *esclient.SubscriptionFilter {
	switch {
	case len(f.Categories) > 0:
		prefixes := make([]string, len(f.Categories))
		for i, c := range f.Categories {
			prefixes[i] = c + "-"
		}
		return &esclient.SubscriptionFilter{Type: esclient.StreamFilterType, Prefixes: prefixes}
	case len(f.EventTypes) > 0:
		return &esclient.SubscriptionFilter{Type: esclient.EventFilterType, Prefixes: append([]string(nil), f.EventTypes...)}
	default:
		return &esclient.SubscriptionFilter{Type: esclient.StreamFilterType, Regex: nonSystemStreams}
	}
}

// SubscribeAll implements eventstore.Store. The first subscription attempt
// is made before it returns, and its failure is returned; later drops are
// retried (see the package documentation). The subscription ends when ctx
// ends, when it is closed or when the store is closed; Recv then returns
// eventstore.ErrSubscriptionClosed.
func (s *Store) SubscribeAll(ctx context.Context, from eventstore.Position, filter eventstore.Filter) (eventstore.Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sub := &subscription{
		s:         s,
		filter:    filter,
		server:    serverFilter(filter),
		delivered: uint64(from),
		started:   from != eventstore.Start,
		events:    make(chan eventstore.RecordedEvent, subscriptionBuffer),
		done:      make(chan struct{}),
	}
	sub.ctx, sub.cancel = context.WithCancel(ctx)
	sub.stop = context.AfterFunc(s.ctx, sub.cancel)

	first, err := sub.open()
	if err != nil {
		sub.stop()
		sub.cancel()
		if errors.Is(err, ErrClosed) {
			return nil, err
		}
		return nil, mapError("subscribe to $all", err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		first.Close()
		sub.stop()
		sub.cancel()
		return nil, ErrClosed
	}
	s.subs.Add(1)
	s.mu.Unlock()
	go sub.run(first)
	return sub, nil
}

type subscription struct {
	s      *Store
	filter eventstore.Filter
	server *esclient.SubscriptionFilter

	ctx    context.Context // the subscription's life
	cancel context.CancelFunc
	stop   func() bool

	// Owned by run. delivered is the position of the last event received
	// from the server, if started (else none: the start of $all); events
	// at or before it are duplicates. Checkpoints never move it: some servers send
	// checkpoints past events they have yet to send (see checkpoint).
	// confirmed is a checkpoint known to be consistent, which a
	// resubscription may start from when it lies beyond delivered;
	// pending is the last checkpoint received, not yet confirmed (0: none).
	delivered, confirmed, pending uint64
	started                       bool

	events chan eventstore.RecordedEvent
	done   chan struct{} // closed when run returns
	err    error         // why run returned, if not closed; read after done
}

// maxPosition bounds real positions: the server's are signed 64-bit
// integers. Older servers (before KurrentDB PR #4892) send checkpoints of
// MaxUint64.
const maxPosition = math.MaxInt64

// checkpoint records a checkpoint the server reached. A checkpoint is
// trusted for resumption only once the server has moved past it: when the
// next message is a later checkpoint. A server may send a checkpoint equal
// to the position of the event it sends next (KurrentDB issue #4970);
// resuming from it would skip that event.
func (sub *subscription) checkpoint(p uint64) {
	if p > maxPosition {
		return
	}
	if sub.pending != 0 && p > sub.pending {
		sub.confirmed = max(sub.confirmed, sub.pending)
	}
	sub.pending = p
}

// received records an event received from the server and reports whether
// it is new. An event at or before a pending checkpoint proves the
// checkpoint wrong; one after it supersedes it.
func (sub *subscription) received(p uint64) bool {
	sub.pending = 0
	if sub.started && p <= sub.delivered {
		return false
	}
	sub.delivered, sub.started = p, true
	return true
}

// from is where a new server subscription starts (exclusive): the last
// event received, or a confirmed checkpoint beyond it if that lies within
// the log as it is now (a checkpoint beyond the head is not a position).
func (sub *subscription) from() esclient.AllPosition {
	p, ok := sub.delivered, sub.started
	if sub.confirmed > p || (!ok && sub.confirmed > 0) {
		head, err := sub.rawHead()
		if err == nil && sub.confirmed <= head {
			p, ok = sub.confirmed, true
		} else {
			sub.s.log.Warn("esdb: checkpoint beyond the head of $all; resuming after the last event received",
				"checkpoint", sub.confirmed, "head", head, "err", err)
			sub.confirmed = 0
		}
	}
	if !ok {
		return esclient.Start{}
	}
	return esclient.Position{Commit: p, Prepare: p}
}

// rawHead is the commit position of the last record of $all, system
// events included.
func (sub *subscription) rawHead() (uint64, error) {
	var head uint64
	err := sub.s.readEvents(sub.ctx, func(ctx context.Context, c *esclient.Client) (*esclient.ReadStream, error) {
		return c.ReadAll(ctx, esclient.ReadAllOptions{Direction: esclient.Backwards, From: esclient.End{}}, 1)
	}, func(e *esclient.RecordedEvent) bool {
		head = e.Position.Commit
		return false
	})
	return head, err
}

// serverSub is one subscription on the server, with the context it runs
// on.
type serverSub struct {
	*esclient.Subscription
	cancel context.CancelFunc
}

func (s serverSub) Close() {
	_ = s.Subscription.Close()
	s.cancel()
}

// open subscribes to $all after the resume position.
func (sub *subscription) open() (serverSub, error) {
	opts := esclient.SubscribeToAllOptions{From: sub.from(), Filter: sub.server}
	// The server subscription outlives the call that opens it, so it runs
	// on a context of its own, canceled if the call is given up: the
	// client may still complete it afterwards.
	ctx, cancel := context.WithCancel(sub.ctx)
	var out *esclient.Subscription
	err := sub.s.do(sub.ctx, func(_ context.Context, c *esclient.Client) error {
		var err error
		out, err = c.SubscribeToAll(ctx, opts)
		return err
	})
	if err != nil {
		cancel()
		return serverSub{}, err
	}
	return serverSub{out, cancel}, nil
}

// fatal reports errors that resubscribing cannot cure.
func fatal(err error) bool {
	var e *esclient.Error
	if !errors.As(err, &e) {
		return !errors.Is(err, errConnLost) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	}
	switch e.Code() {
	case esclient.ErrorCodeUnauthenticated, esclient.ErrorCodeAccessDenied, esclient.ErrorCodeParsing:
		return true
	}
	return false
}

func (sub *subscription) run(cur serverSub) {
	defer sub.s.subs.Done()
	defer close(sub.done)
	backoff := sub.s.opts.minBackoff
	for {
		if cur.Subscription == nil {
			select {
			case <-time.After(backoff):
			case <-sub.ctx.Done():
				return
			}
			var err error
			cur, err = sub.open()
			if sub.ctx.Err() != nil {
				if err == nil {
					cur.Close()
				}
				return
			}
			if err != nil {
				if fatal(err) {
					sub.err = mapError("subscribe to $all", err)
					sub.s.log.Error("esdb: subscription to $all failed", "err", err)
					return
				}
				sub.s.log.Warn("esdb: resubscribing to $all failed", "err", err, "retry_in", backoff)
				backoff = min(2*backoff, sub.s.opts.maxBackoff)
				continue
			}
		}
		progressed, err := sub.consume(cur.Subscription)
		cur.Close()
		cur = serverSub{}
		if sub.ctx.Err() != nil {
			return
		}
		if progressed {
			backoff = sub.s.opts.minBackoff
		}
		sub.s.log.Warn("esdb: subscription to $all dropped; resubscribing",
			"err", err, "after", sub.delivered, "retry_in", backoff)
	}
}

// consume delivers the events of one server subscription until it drops,
// and reports whether it received anything.
func (sub *subscription) consume(cur *esclient.Subscription) (bool, error) {
	progressed := false
	for {
		ev := cur.Recv()
		switch {
		case ev.SubscriptionDropped != nil:
			return progressed, ev.SubscriptionDropped.Error
		case ev.CheckPointReached != nil:
			progressed = true
			sub.checkpoint(ev.CheckPointReached.Commit)
		case ev.EventAppeared != nil:
			progressed = true
			e := ev.EventAppeared.OriginalEvent()
			if e == nil || !sub.received(e.Position.Commit) {
				continue // already delivered before a resubscription
			}
			if isSystem(e.StreamID, e.EventType) || !sub.filter.Match(e.StreamID, e.EventType) {
				continue
			}
			select {
			case sub.events <- toRecorded(e):
			case <-sub.ctx.Done():
				return progressed, sub.ctx.Err()
			}
		}
	}
}

// Recv implements eventstore.Subscription.
func (sub *subscription) Recv(ctx context.Context) (eventstore.RecordedEvent, error) {
	if sub.ctx.Err() != nil {
		return eventstore.RecordedEvent{}, eventstore.ErrSubscriptionClosed
	}
	select {
	case e := <-sub.events:
		return e, nil
	case <-ctx.Done():
		return eventstore.RecordedEvent{}, ctx.Err()
	case <-sub.ctx.Done():
		return eventstore.RecordedEvent{}, eventstore.ErrSubscriptionClosed
	case <-sub.done:
		// Failed for good: hand out what was received first.
		select {
		case e := <-sub.events:
			return e, nil
		default:
		}
		if sub.err != nil {
			return eventstore.RecordedEvent{}, sub.err
		}
		return eventstore.RecordedEvent{}, eventstore.ErrSubscriptionClosed
	}
}

// Close implements eventstore.Subscription. It waits for the subscription
// to wind down.
func (sub *subscription) Close() error {
	sub.stop()
	sub.cancel()
	<-sub.done
	return nil
}
