package esdb_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"passerelle/eventstore"
	"passerelle/eventstore/esdb"
	"passerelle/eventstore/esdbserver/esdbtest"
)

// appendRetrying appends until the server takes it. A retry carries the
// same event IDs and expected revision, so an append that landed before
// the failure was reported is not written twice.
func appendRetrying(ctx context.Context, t *testing.T, s eventstore.Store, stream string, exp eventstore.ExpectedRevision, evs []eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		res, err := s.Append(actx, stream, exp, evs...)
		cancel()
		if err == nil {
			return res
		}
		if ctx.Err() != nil || errors.Is(err, eventstore.ErrWrongExpectedVersion) {
			t.Fatalf("append to %s: %v", stream, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSubscribeAllAcrossServerRestart stops the protocol server while the
// adapter's subscription is consuming, keeps it down long enough for the
// client to give up on its connection, restarts it on the same address
// and data, and checks that the consumer gets every event exactly once,
// in order.
func TestSubscribeAllAcrossServerRestart(t *testing.T) {
	// Half the events are written before the stop, half after. They are
	// large enough that the first half does not fit in the client's
	// buffers: the server is stopped in the middle of sending them.
	const streams, perStream, padding = 4, 100, 4 << 10
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	srv := esdbtest.Start(t)
	writer := open(t, srv.URL())
	reader := open(t, srv.URL(), esdb.WithResubscribeBackoff(20*time.Millisecond, 200*time.Millisecond))

	cat := "restart" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	names := make([]string, streams)
	next := make([]int64, streams) // last revision written, -1: none
	for i := range names {
		names[i], next[i] = fmt.Sprintf("%s-%d", cat, i), -1
	}
	pad := strings.Repeat("x", padding)
	var want []uuid.UUID
	write := func(round int) {
		for i := range names {
			e := eventstore.EventData{ID: uuid.New(), Type: "Restarted", Data: fmt.Appendf(nil, `{"round":%d,"pad":%q}`, round, pad)}
			exp := eventstore.NoStream
			if next[i] >= 0 {
				exp = eventstore.Exact(uint64(next[i]))
			}
			res := appendRetrying(ctx, t, writer, names[i], exp, []eventstore.EventData{e})
			next[i] = int64(res.LastRevision)
			want = append(want, e.ID)
		}
	}
	for round := range perStream / 2 {
		write(round)
	}

	sub, err := reader.SubscribeAll(ctx, eventstore.Start, eventstore.Filter{Categories: []string{cat}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	var (
		mu  sync.Mutex
		got []eventstore.RecordedEvent
	)
	received := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}
	consumed := make(chan error, 1)
	go func() {
		for received() < streams*perStream {
			e, err := sub.Recv(ctx)
			if err != nil {
				consumed <- err
				return
			}
			mu.Lock()
			got = append(got, e)
			mu.Unlock()
			time.Sleep(time.Millisecond) // a consumer slower than the log
		}
		consumed <- nil
	}()

	for received() < 20 {
		time.Sleep(time.Millisecond)
	}
	srv.Stop()
	stoppedAt := received()
	// Down longer than the client's node discovery (10 attempts 100 ms
	// apart), after which the client shuts itself down for good.
	time.Sleep(1500 * time.Millisecond)
	srv.Restart(t)
	for round := perStream / 2; round < perStream; round++ {
		write(round)
	}

	select {
	case err := <-consumed:
		if err != nil {
			t.Fatalf("consumer: %v after %d events", err, received())
		}
	case <-ctx.Done():
		t.Fatalf("consumer got %d of %d events", received(), len(want))
	}
	if stoppedAt >= streams*perStream/2 {
		t.Fatalf("the server stopped after the consumer had everything (%d events): not mid-stream", stoppedAt)
	}

	mu.Lock()
	defer mu.Unlock()
	revs := map[string]uint64{}
	for i, e := range got {
		if e.ID != want[i] {
			t.Fatalf("event %d is %s (%s@%d), want %s", i, e.ID, e.Stream, e.Revision, want[i])
		}
		if i > 0 && e.Position <= got[i-1].Position {
			t.Fatalf("event %d at %d after %d", i, e.Position, got[i-1].Position)
		}
		if e.Revision != revs[e.Stream] {
			t.Fatalf("%s: revision %d, want %d", e.Stream, e.Revision, revs[e.Stream])
		}
		revs[e.Stream]++
	}

	// Nothing more arrives.
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	if e, err := sub.Recv(short); err == nil {
		t.Fatalf("unexpected event %s@%d", e.Stream, e.Revision)
	}
}
