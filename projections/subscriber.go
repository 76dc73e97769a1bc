package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	MetaBatch       = "batch" // the number of events of a message that carries several
)

// StartFunc tells a subscription where to start: the last position the
// consumer of topic has durably applied.
type StartFunc func(ctx context.Context, topic string) (eventstore.Position, error)

// Subscriber is a Watermill subscriber over the store's global log. It
// delivers the recorded events in order, one message at a time (see
// deliver), the next only after the previous is acked, and resubscribes from the last acked position when the store
// subscription drops.
type Subscriber struct {
	// MaxBatch is the most events one message carries (default 1).
	MaxBatch int
	// Local tells that the messages go to handlers in this process only,
	// which read the records from the message's context: a message of
	// several events is then made without its payload (the events'
	// JSON), which nothing reads and which cost as much as a projection's
	// decoding of the same events.
	Local bool
	// Shared makes the topics read the log through one subscription (see
	// hub) instead of one each.
	Shared bool
	// Linger is how long a message waits for more events when the
	// previous one went less than Linger before (see deliver); 0: never.
	Linger time.Duration

	store  eventstore.Store
	start  StartFunc
	filter eventstore.Filter
	log    *slog.Logger

	mu     sync.Mutex
	closed bool
	cancel []context.CancelFunc
	wg     sync.WaitGroup
	hub    *hub // Shared: made at the first Subscribe
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
	if s.Shared && s.hub == nil {
		hubCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
		if s.hub, err = newHub(hubCtx, s.store, s.filter, s.log, &s.wg); err != nil {
			stop()
			return nil, err
		}
		s.cancel = append(s.cancel, stop)
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
		sub, err := s.subscribe(ctx, from)
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

// subscribe follows the log after from, through the hub when shared.
func (s *Subscriber) subscribe(ctx context.Context, from eventstore.Position) (eventstore.Subscription, error) {
	s.mu.Lock()
	h := s.hub
	s.mu.Unlock()
	if h != nil {
		return h.subscribe(ctx, from), nil
	}
	return s.store.SubscribeAll(ctx, from, s.filter)
}

// deliver forwards events until the subscription fails or ctx ends; it
// returns the position of the last acked event. The events already
// received when a message is made go together in it, up to MaxBatch: a
// consumer that fell behind catches up in a few large writes instead of
// many small ones. One that keeps up gets each event alone while events
// come further apart than Linger; closer together (a steady load), a
// message waits up to Linger after its first event for the next ones.
// A message costs its consumer about as much as the events it carries
// (a script call, documents read, an ack), so at a thousand events a
// second one message for every few events spares most of that, for a
// few milliseconds of lag; the commands that wrote the events do not
// wait for it.
func (s *Subscriber) deliver(ctx context.Context, sub eventstore.Subscription, out chan<- *message.Message) (eventstore.Position, error) {
	pumpCtx, stop := context.WithCancel(ctx)
	ready, failed, pumped := pump(pumpCtx, sub, s.maxBatch())
	defer func() { stop(); <-pumped }()
	var (
		last eventstore.Position
		sent time.Time // when the previous message went
		wait = time.NewTimer(0)
	)
	defer wait.Stop()
	for {
		var evs []eventstore.RecordedEvent
		select {
		case ev, ok := <-ready:
			if !ok {
				return last, <-failed
			}
			evs = append(evs, ev)
		case <-ctx.Done():
			return last, ctx.Err()
		}
		evs = gather(ready, evs, s.maxBatch(), nil)
		if s.Linger > 0 && len(evs) < s.maxBatch() && time.Since(sent) < s.Linger {
			wait.Reset(s.Linger)
			evs = gather(ready, evs, s.maxBatch(), wait.C)
		}
		sent = time.Now()
		if err := send(ctx, out, evs, s.Local); err != nil {
			return last, err
		}
		last = evs[len(evs)-1].Position
	}
}

// pump receives events into ready until the subscription fails (the error
// goes to failed and ready is closed) or ctx ends; pumped is closed once
// it stopped.
func pump(ctx context.Context, sub eventstore.Subscription, size int) (ready <-chan eventstore.RecordedEvent, failed <-chan error, pumped <-chan struct{}) {
	evs, errs, done := make(chan eventstore.RecordedEvent, size), make(chan error, 1), make(chan struct{})
	go func() {
		defer close(done)
		defer close(evs)
		for {
			ev, err := sub.Recv(ctx)
			if err != nil {
				errs <- err
				return
			}
			select {
			case evs <- ev:
			case <-ctx.Done():
				errs <- ctx.Err()
				return
			}
		}
	}()
	return evs, errs, done
}

// gather adds to evs the events ready now, up to limit; with until, also
// the events that come before it fires.
func gather(ready <-chan eventstore.RecordedEvent, evs []eventstore.RecordedEvent, limit int, until <-chan time.Time) []eventstore.RecordedEvent {
	for len(evs) < limit {
		var (
			ev eventstore.RecordedEvent
			ok bool
		)
		if until == nil {
			select {
			case ev, ok = <-ready:
			default:
				return evs
			}
		} else {
			select {
			case ev, ok = <-ready:
			case <-until:
				return evs
			}
		}
		if !ok {
			return evs
		}
		evs = append(evs, ev)
	}
	return evs
}

// send delivers evs as one message until it is acked, again after a pause
// each time it is nacked; local: without a batch's payload (Local).
func send(ctx context.Context, out chan<- *message.Message, evs []eventstore.RecordedEvent, local bool) error {
	for {
		msg := toMessage(ctx, evs, local)
		select {
		case out <- msg:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case <-msg.Acked():
			return nil
		case <-msg.Nacked():
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *Subscriber) maxBatch() int {
	if s.MaxBatch <= 0 {
		return 1
	}
	return s.MaxBatch
}

// toMessage makes one event a message of its own: its data as payload,
// the rest as metadata. Several events make a message whose payload lists
// them all (MetaBatch: their count), positioned at the last one; local:
// a message for this process only, whose records are in its context
// alone, without that payload.
func toMessage(ctx context.Context, evs []eventstore.RecordedEvent, local bool) *message.Message {
	ev := evs[len(evs)-1]
	var msg *message.Message
	switch {
	case len(evs) == 1:
		msg = message.NewMessage(ev.ID.String(), ev.Data)
	case local:
		msg = message.NewMessage(ev.ID.String(), nil)
		msg.Metadata.Set(MetaBatch, strconv.Itoa(len(evs)))
	default:
		payload, _ := json.Marshal(evs) // plain structs: cannot fail
		msg = message.NewMessage(ev.ID.String(), payload)
		msg.Metadata.Set(MetaBatch, strconv.Itoa(len(evs)))
	}
	// the records themselves travel with the message in this process: its
	// handler reads them rather than decoding the payload made of them
	msg.SetContext(context.WithValue(ctx, recordsKey{}, evs))
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

// messageEvents are the events a message carries, in order, decoded for
// p: those it does not fold are left undecoded, without data.
func messageEvents(msg *message.Message, p Projector) ([]Event, error) {
	if recs, ok := msg.Context().Value(recordsKey{}).([]eventstore.RecordedEvent); ok && len(recs) > 0 {
		return recordedEvents(recs, p)
	}
	if msg.Metadata.Get(MetaBatch) == "" {
		pos, err := strconv.ParseUint(msg.Metadata.Get(MetaPosition), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("message %s without position: %w", msg.UUID, err)
		}
		stream, typ := msg.Metadata.Get(MetaStream), msg.Metadata.Get(MetaType)
		if !foldedBy(stream, typ, p) {
			return []Event{{Position: eventstore.Position(pos), Stream: stream, Type: typ}}, nil
		}
		ev, err := decodeMessage(msg, eventstore.Position(pos))
		return []Event{ev}, err
	}
	var recs []eventstore.RecordedEvent
	if err := json.Unmarshal(msg.Payload, &recs); err != nil || len(recs) == 0 {
		return nil, fmt.Errorf("message %s: a batch that does not decode: %v", msg.UUID, err)
	}
	return recordedEvents(recs, p)
}

// recordsKey keys a message's records in its context (toMessage).
type recordsKey struct{}

// recordedEvents decodes the records p folds; those that do not decode
// are named in the error and left without data, as those p does not fold.
func recordedEvents(recs []eventstore.RecordedEvent, p Projector) ([]Event, error) {
	evs := make([]Event, len(recs))
	var errs []error
	for i, re := range recs {
		if !foldedBy(re.Stream, re.Type, p) {
			evs[i] = Event{Position: re.Position, Stream: re.Stream, Type: re.Type}
			continue
		}
		var err error
		if evs[i], err = decodeRecorded(re); err != nil {
			errs = append(errs, fmt.Errorf("at %d: %w", re.Position, err))
		}
	}
	return evs, errors.Join(errs...)
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
