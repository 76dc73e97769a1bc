package projections

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"passerelle/eventstore"
)

// Message metadata keys set by Subscriber.
const (
	MetaStream      = "stream"
	MetaRevision    = "revision"
	MetaPosition    = "position"
	MetaType        = "event_type"
	MetaCreated     = "created"
	MetaCorrelation = "correlation_id"
	MetaCausation   = "causation_id"
	MetaOccurredAt  = "occurred_at"
)

// StartFunc tells a subscription where to start: the last position the
// consumer of topic has durably applied.
type StartFunc func(ctx context.Context, topic string) (eventstore.Position, error)

// Subscriber is a Watermill subscriber over the store's global log. It
// delivers one message per recorded event, the next only after the previous
// is acked, and resubscribes from the last acked position when the store
// subscription drops.
type Subscriber struct {
	store  eventstore.Store
	start  StartFunc
	filter eventstore.Filter
	log    *slog.Logger

	mu     sync.Mutex
	closed bool
	cancel []context.CancelFunc
	wg     sync.WaitGroup
}

// NewSubscriber builds a subscriber; start is asked for the position of each
// topic when it is subscribed.
func NewSubscriber(store eventstore.Store, start StartFunc, filter eventstore.Filter, log *slog.Logger) *Subscriber {
	if log == nil {
		log = slog.Default()
	}
	return &Subscriber{store: store, start: start, filter: filter, log: log}
}

// Subscribe implements message.Subscriber.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("subscriber closed")
	}
	from, err := s.start(ctx, topic)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	s.cancel = append(s.cancel, cancel)
	out := make(chan *message.Message)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		s.run(ctx, topic, from, out)
	}()
	return out, nil
}

func (s *Subscriber) run(ctx context.Context, topic string, from eventstore.Position, out chan<- *message.Message) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		sub, err := s.store.SubscribeAll(ctx, from, s.filter)
		if err == nil {
			var last eventstore.Position
			last, err = s.deliver(ctx, sub, out)
			_ = sub.Close()
			if last > from {
				from, backoff = last, 50*time.Millisecond
			}
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("event subscription dropped, resubscribing", "topic", topic, "from", from, "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// deliver forwards events until the subscription fails or ctx ends; it
// returns the position of the last acked event.
func (s *Subscriber) deliver(ctx context.Context, sub eventstore.Subscription, out chan<- *message.Message) (eventstore.Position, error) {
	var last eventstore.Position
	for {
		ev, err := sub.Recv(ctx)
		if err != nil {
			return last, err
		}
		for {
			msg := toMessage(ctx, ev)
			select {
			case out <- msg:
			case <-ctx.Done():
				return last, ctx.Err()
			}
			select {
			case <-msg.Acked():
			case <-msg.Nacked():
				// redeliver the same event after a pause
				select {
				case <-time.After(100 * time.Millisecond):
					continue
				case <-ctx.Done():
					return last, ctx.Err()
				}
			case <-ctx.Done():
				return last, ctx.Err()
			}
			break
		}
		last = ev.Position
	}
}

func toMessage(ctx context.Context, ev eventstore.RecordedEvent) *message.Message {
	msg := message.NewMessage(ev.ID.String(), ev.Data)
	msg.SetContext(ctx)
	msg.Metadata.Set(MetaStream, ev.Stream)
	msg.Metadata.Set(MetaRevision, strconv.FormatUint(ev.Revision, 10))
	msg.Metadata.Set(MetaPosition, ev.Position.String())
	msg.Metadata.Set(MetaType, ev.Type)
	msg.Metadata.Set(MetaCreated, ev.Created.UTC().Format(time.RFC3339Nano))
	if md, err := eventstore.DecodeMetadata(ev.Metadata); err == nil {
		msg.Metadata.Set(MetaCorrelation, md.CorrelationID)
		msg.Metadata.Set(MetaCausation, md.CausationID)
		if !md.OccurredAt.IsZero() {
			msg.Metadata.Set(MetaOccurredAt, md.OccurredAt.UTC().Format(time.RFC3339Nano))
		}
	}
	return msg
}

// Close implements message.Subscriber: it ends every subscription and
// closes their channels.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	s.closed = true
	for _, c := range s.cancel {
		c()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}
