package projections

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"passerelle/eventstore"
)

// chanSub is a subscription fed by the test.
type chanSub chan eventstore.RecordedEvent

func (c chanSub) Recv(ctx context.Context) (eventstore.RecordedEvent, error) {
	select {
	case ev := <-c:
		return ev, nil
	case <-ctx.Done():
		return eventstore.RecordedEvent{}, ctx.Err()
	}
}

func (c chanSub) Close() error { return nil }

// Under a steady load a message waits up to Linger for the next events;
// an event after a quiet spell goes alone at once, and a full message
// goes without waiting.
func TestDeliverLingersUnderLoad(t *testing.T) {
	const linger = time.Second
	s := &Subscriber{MaxBatch: 3, Local: true, Linger: linger}
	sub, out := make(chanSub), make(chan *message.Message)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _, _ = s.deliver(ctx, sub, out) }()
	push := func(pos int) { sub <- eventstore.RecordedEvent{Position: eventstore.Position(pos), Data: []byte("{}")} }
	next := func(want string, atLeast, within time.Duration) {
		t.Helper()
		began := time.Now()
		select {
		case msg := <-out:
			got := msg.Metadata.Get(MetaPosition)
			if n := msg.Metadata.Get(MetaBatch); n != "" {
				got = n + " up to " + got
			}
			if got != want {
				t.Fatalf("message of %s, want %s", got, want)
			}
			msg.Ack()
		case <-time.After(within + 5*time.Second):
			t.Fatalf("no message %s", want)
		}
		if took := time.Since(began); took < atLeast || took > within {
			t.Fatalf("message %s took %v, want %v to %v", want, took, atLeast, within)
		}
	}
	push(1) // the first: nothing went before it
	next("1", 0, linger/2)
	push(2) // right after a message: waits for the next ones
	time.Sleep(10 * time.Millisecond)
	push(3)
	next("2 up to 3", linger/2, 2*linger)
	time.Sleep(linger + linger/5) // a quiet spell
	push(4)
	next("4", 0, linger/2)
	push(5) // waits, but the message is full at the third
	push(6)
	push(7)
	next("3 up to 7", 0, linger/2)
}
