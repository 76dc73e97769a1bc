package embedded

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"passerelle/eventstore"
)

func TestCountAfter(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := context.Background()
	for i := range 5 {
		if _, err := s.Append(ctx, "count-"+string(rune('a'+i%2)), eventstore.Any, eventstore.EventData{ID: uuid.New(), Type: "T", Data: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	head, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		from      eventstore.Position
		max, want int
	}{{eventstore.Start, 10, 5}, {eventstore.Start, 2, 2}, {head - 3, 10, 3}, {head, 10, 0}, {eventstore.Position(^uint64(0)), 10, 0}} {
		n, err := s.CountAfter(ctx, c.from, c.max)
		if err != nil || n != c.want {
			t.Errorf("CountAfter(%d, %d) = %d, %v; want %d", c.from, c.max, n, err, c.want)
		}
		evs, err := s.ReadAll(ctx, c.from, c.max)
		if err != nil || len(evs) != c.want {
			t.Errorf("ReadAll(%d, %d) read %d events, %v: the count must agree", c.from, c.max, len(evs), err)
		}
	}
}
