package embedded

import (
	"context"
	"errors"
	"sync"

	bolt "go.etcd.io/bbolt"

	"passerelle/eventstore"
)

// subscriptionScan is how many log records one read transaction of a
// subscription visits; it keeps transactions short whatever the backlog.
const subscriptionScan = 256

// SubscribeAll implements eventstore.Store. The subscription reads the
// log itself, catching up in batches and then waiting for commits, so a
// slow consumer holds no memory beyond one batch. It ends when ctx ends,
// when it is closed, or when the store is closed; Recv then returns
// eventstore.ErrSubscriptionClosed.
func (s *Store) SubscribeAll(ctx context.Context, from eventstore.Position, filter eventstore.Filter) (eventstore.Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.closed() {
		return nil, ErrClosed
	}
	sub := &subscription{s: s, pos: uint64(from), filter: filter, done: make(chan struct{})}
	sub.stop = context.AfterFunc(ctx, sub.end)
	return sub, nil
}

type subscription struct {
	s      *Store
	filter eventstore.Filter

	done      chan struct{}
	closeOnce sync.Once
	stop      func() bool

	mu   sync.Mutex // serializes Recv; guards the fields below
	pos  uint64     // last log position visited
	buf  []eventstore.RecordedEvent
	next int // index in buf of the next event to deliver
}

func (sub *subscription) ended() bool {
	select {
	case <-sub.done:
		return true
	case <-sub.s.done:
		return true
	default:
		return false
	}
}

// Recv implements eventstore.Subscription.
func (sub *subscription) Recv(ctx context.Context) (eventstore.RecordedEvent, error) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	for {
		if sub.ended() {
			return eventstore.RecordedEvent{}, eventstore.ErrSubscriptionClosed
		}
		if err := ctx.Err(); err != nil {
			return eventstore.RecordedEvent{}, err
		}
		if sub.next < len(sub.buf) {
			e := sub.buf[sub.next]
			sub.buf[sub.next] = eventstore.RecordedEvent{}
			sub.next++
			return e, nil
		}
		wake := sub.s.wake()
		moved, err := sub.fill(ctx)
		if err != nil {
			if errors.Is(err, ErrClosed) {
				return eventstore.RecordedEvent{}, eventstore.ErrSubscriptionClosed
			}
			return eventstore.RecordedEvent{}, err
		}
		if moved {
			continue
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return eventstore.RecordedEvent{}, ctx.Err()
		case <-sub.done:
		case <-sub.s.done:
		}
	}
}

// fill visits the next records of the log, buffering those that match,
// and reports whether it visited any.
func (sub *subscription) fill(ctx context.Context) (bool, error) {
	start := sub.pos
	sub.buf, sub.next = sub.buf[:0], 0
	err := sub.s.view(func(tx *bolt.Tx) error {
		last, err := scanLog(ctx, tx, sub.pos, subscriptionScan, func(pos uint64, r record) {
			if sub.filter.Match(string(r.stream), string(r.typ)) {
				sub.buf = append(sub.buf, r.event(pos))
			}
		})
		if err == nil {
			sub.pos = last
		}
		return err
	})
	if err != nil {
		sub.buf = sub.buf[:0]
		return false, err
	}
	return sub.pos != start, nil
}

// Close implements eventstore.Subscription. It may be called concurrently
// with Recv, which then returns eventstore.ErrSubscriptionClosed.
func (sub *subscription) Close() error {
	sub.stop()
	sub.end()
	return nil
}

func (sub *subscription) end() {
	sub.closeOnce.Do(func() { close(sub.done) })
}
