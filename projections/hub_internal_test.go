package projections

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"passerelle/eventstore"
	"passerelle/eventstore/embedded"
)

// Topics read through one hub: a topic that stops acking does not hold
// the others back, and when it goes on, far behind the hub, it reads
// every event once, in order, from the store and then from the hub again.
func TestHubSlowTopicHoldsNoOtherBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	store, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	sub := NewSubscriber(store, func(context.Context, string) (eventstore.Position, error) { return eventstore.Start, nil }, eventstore.Filter{}, nil)
	sub.MaxBatch, sub.Local, sub.Shared = 100, true, true
	t.Cleanup(func() { _ = sub.Close() })
	fast, err := sub.Subscribe(ctx, "fast")
	if err != nil {
		t.Fatal(err)
	}
	slow, err := sub.Subscribe(ctx, "slow")
	if err != nil {
		t.Fatal(err)
	}

	const appends, each = 2*hubSize/100 + 2, 100
	appendAll := func(from int) {
		for i := range appends {
			evs := make([]eventstore.EventData, each)
			for j := range evs {
				evs[j] = eventstore.EventData{ID: eventstore.EventID(fmt.Sprint("hub-", from+i), j), Type: "Tested", Data: []byte(`{}`), Metadata: []byte(`{}`)}
			}
			if _, err := store.Append(ctx, fmt.Sprint("test-", from+i), eventstore.NoStream, evs...); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendAll(0)
	total := appends * each

	// the slow topic takes its first message and holds it
	held := <-slow
	first := records(t, held)
	// the fast one reads everything meanwhile
	if got := readAll(t, ctx, fast, first[0].Position-1, total); len(got) != total {
		t.Fatalf("fast topic read %d events of %d", len(got), total)
	}
	sub.hub.mu.Lock()
	base := sub.hub.base
	sub.hub.mu.Unlock()
	if base <= first[len(first)-1].Position {
		t.Fatalf("the hub still holds the slow topic's next events (base %d): the test does not test falling behind", base)
	}
	// the slow one goes on: from the store, then from the hub again for
	// the events appended now
	held.Ack()
	appendAll(appends)
	rest := readAll(t, ctx, slow, first[len(first)-1].Position, 2*total-len(first))
	if len(rest) != 2*total-len(first) {
		t.Fatalf("slow topic read %d events after its first message, want %d", len(rest), 2*total-len(first))
	}
}

// records are the events a message carries.
func records(t *testing.T, msg *message.Message) []eventstore.RecordedEvent {
	t.Helper()
	recs, ok := msg.Context().Value(recordsKey{}).([]eventstore.RecordedEvent)
	if !ok || len(recs) == 0 {
		t.Fatalf("message %s carries no records", msg.UUID)
	}
	return recs
}

// readAll acks messages until n events came, checking that each follows
// the one before it (after position from) in the log, with none missing.
func readAll(t *testing.T, ctx context.Context, msgs <-chan *message.Message, from eventstore.Position, n int) []eventstore.RecordedEvent {
	t.Helper()
	var got []eventstore.RecordedEvent
	last := from
	for len(got) < n {
		select {
		case msg, ok := <-msgs:
			if !ok {
				return got
			}
			for _, ev := range records(t, msg) {
				if ev.Position != last+1 {
					t.Fatalf("event at %d after %d", ev.Position, last)
				}
				last = ev.Position
				got = append(got, ev)
			}
			msg.Ack()
		case <-ctx.Done():
			t.Fatalf("%d events of %d read: %v", len(got), n, ctx.Err())
		}
	}
	return got
}
