package esdb_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"passerelle/eventstore"
	"passerelle/eventstore/esdb"
	"passerelle/eventstore/esdbserver"
	"passerelle/eventstore/esdbserver/esdbtest"
)

// TestWrongCheckpoints runs a filtered subscription against a server that
// sends the wrong checkpoints real servers have sent: MaxUint64 (before
// KurrentDB PR #4892) and the position of the event about to be sent
// (KurrentDB issue #4970), and increasing checkpoints beyond the head of
// the log, with and without dropping the subscription
// right after such a checkpoint. Every event must come exactly once, in
// order.
func TestWrongCheckpoints(t *testing.T) {
	cases := map[string]esdbserver.CheckpointFaults{
		"max":                  {MaxUint64: true},
		"next event":           {AtNextEvent: true},
		"max, dropped":         {MaxUint64: true, DropBefore: 3},
		"next event, dropped":  {AtNextEvent: true, DropBefore: 3},
		"both, dropped":        {MaxUint64: true, AtNextEvent: true, DropBefore: 2},
		"beyond head, dropped": {BeyondHead: true, DropBefore: 3},
	}
	for name, faults := range cases {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			srv := esdbtest.Start(t, esdbserver.WithLogger(quiet()), esdbserver.WithCheckpointFaults(faults))
			s := open(t, srv.URL(), esdb.WithResubscribeBackoff(10*time.Millisecond, 50*time.Millisecond))
			cat := "ckpt" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
			var want []uuid.UUID
			write := func(n int) {
				for i := range n {
					e := event("Checked")
					// Events of another category between ours: filtered
					// out by the server, they move its checkpoints.
					if _, err := s.Append(ctx, fmt.Sprintf("other-%s-%d", cat, len(want)), eventstore.Any, event("Other")); err != nil {
						t.Fatal(err)
					}
					if _, err := s.Append(ctx, fmt.Sprintf("%s-%d", cat, i%3), eventstore.Any, e); err != nil {
						t.Fatal(err)
					}
					want = append(want, e.ID)
				}
			}
			write(6) // caught up from the past
			sub, err := s.SubscribeAll(ctx, eventstore.Start, eventstore.Filter{Categories: []string{cat}})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			recv := func(from int) {
				for i := from; i < len(want); i++ {
					e, err := sub.Recv(ctx)
					if err != nil {
						t.Fatalf("event %d of %d: %v", i, len(want), err)
					}
					if e.ID != want[i] {
						t.Fatalf("event %d is %s (%s at %d), want %s", i, e.ID, e.Stream, e.Position, want[i])
					}
				}
			}
			recv(0)
			n := len(want)
			write(6) // live
			recv(n)
			// Nothing more came: the next event is the next one written.
			n = len(want)
			write(1)
			recv(n)
		})
	}
}
