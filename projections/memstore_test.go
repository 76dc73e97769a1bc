package projections_test

import (
	"context"
	"sync"
	"time"

	"passerelle/eventstore"
)

// memStore is an in-memory event log for tests that need hundreds of
// thousands of events quickly; the store adapters have their own
// conformance suite. Positions are dense from 1.
type memStore struct {
	mu      sync.Mutex
	log     []eventstore.RecordedEvent
	streams map[string][]int // indexes in log
	changed chan struct{}
	done    chan struct{}
	once    sync.Once
}

func newMemStore() *memStore {
	return &memStore{streams: map[string][]int{}, changed: make(chan struct{}), done: make(chan struct{})}
}

func (s *memStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedRevision, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	idx := s.streams[stream]
	if !expected.Check(int64(len(idx)) - 1) {
		return eventstore.AppendResult{}, &eventstore.WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: int64(len(idx)) - 1}
	}
	now := time.Now().UTC()
	for _, e := range events {
		rec := eventstore.RecordedEvent{ID: e.ID, Stream: stream, Revision: uint64(len(idx)), Position: eventstore.Position(len(s.log) + 1),
			Type: e.Type, Data: e.Data, Metadata: e.Metadata, Created: now}
		idx = append(idx, len(s.log))
		s.log = append(s.log, rec)
	}
	s.streams[stream] = idx
	close(s.changed)
	s.changed = make(chan struct{})
	last := s.log[len(s.log)-1]
	return eventstore.AppendResult{LastRevision: last.Revision, Position: last.Position}, nil
}

func (s *memStore) ReadStream(ctx context.Context, stream string, dir eventstore.Direction, from uint64, max int) ([]eventstore.RecordedEvent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	idx := s.streams[stream]
	if len(idx) == 0 {
		return nil, eventstore.ErrStreamNotFound
	}
	var out []eventstore.RecordedEvent
	if dir == eventstore.Forwards {
		for i := from; i < uint64(len(idx)) && (max <= 0 || len(out) < max); i++ {
			out = append(out, s.log[idx[i]])
		}
		return out, nil
	}
	start := min(from, uint64(len(idx)-1))
	for i := int64(start); i >= 0 && (max <= 0 || len(out) < max); i-- {
		out = append(out, s.log[idx[i]])
	}
	return out, nil
}

func (s *memStore) ReadAll(ctx context.Context, from eventstore.Position, max int) ([]eventstore.RecordedEvent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if int(from) >= len(s.log) {
		return nil, nil
	}
	end := len(s.log)
	if max > 0 {
		end = min(end, int(from)+max)
	}
	return append([]eventstore.RecordedEvent(nil), s.log[from:end]...), nil
}

func (s *memStore) SubscribeAll(ctx context.Context, from eventstore.Position, filter eventstore.Filter) (eventstore.Subscription, error) {
	return &memSub{s: s, pos: int(from), filter: filter, done: make(chan struct{})}, nil
}

func (s *memStore) Head(ctx context.Context) (eventstore.Position, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return eventstore.Position(len(s.log)), nil
}

func (s *memStore) Close() error {
	s.once.Do(func() { close(s.done) })
	return nil
}

type memSub struct {
	s      *memStore
	pos    int
	filter eventstore.Filter
	done   chan struct{}
	once   sync.Once
}

func (sub *memSub) Recv(ctx context.Context) (eventstore.RecordedEvent, error) {
	for {
		sub.s.mu.Lock()
		for sub.pos < len(sub.s.log) {
			e := sub.s.log[sub.pos]
			sub.pos++
			if sub.filter.Match(e.Stream, e.Type) {
				sub.s.mu.Unlock()
				return e, nil
			}
		}
		wake := sub.s.changed
		sub.s.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return eventstore.RecordedEvent{}, ctx.Err()
		case <-sub.done:
			return eventstore.RecordedEvent{}, eventstore.ErrSubscriptionClosed
		case <-sub.s.done:
			return eventstore.RecordedEvent{}, eventstore.ErrSubscriptionClosed
		}
	}
}

func (sub *memSub) Close() error {
	sub.once.Do(func() { close(sub.done) })
	return nil
}
