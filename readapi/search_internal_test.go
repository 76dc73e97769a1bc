package readapi

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// A search around a point reads a small index set whole when a walk would
// read more offers than it holds, and walks otherwise: a rare word, a
// common one, a set too large to read whole, and a page asking more.
func TestReadWhole(t *testing.T) {
	const open = 56_000
	for _, c := range []struct {
		smallest, open int64
		want           int
		whole          bool
	}{
		{8, open, 21, true},               // a walk finds one offer in 7,000
		{500, open, 21, true},             // 2,350 offers walked against 500 read
		{1500, open, 21, false},           // 784 walked against 1,500 read
		{1500, open, 101, true},           // a page of 100: 3,771 walked
		{smallSet + 1, open, 1000, false}, // never more than smallSet read
		{0, 0, 21, false},
	} {
		if got := readWhole(c.smallest, c.open, c.want); got != c.whole {
			t.Errorf("readWhole(%d, %d, %d) = %v, want %v", c.smallest, c.open, c.want, got, c.whole)
		}
	}
}

// A walk in id order that asks for more candidates than its smallest set
// holds ends with the sets' intersection after the last id it read, the
// last id itself included in neither the walk's next answer nor twice.
func TestWalkEndsWithIntersection(t *testing.T) {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	var ids []string
	for i := range 100 {
		ids = append(ids, fmt.Sprintf("o%03d", i))
		rdb.ZAdd(ctx, "ids", redis.Z{Member: ids[i]})
	}
	// o063 is the last id of the walk's first chunk, in both sets
	rdb.SAdd(ctx, "a", "o010", "o063", "o070", "o090", "o099")
	rdb.SAdd(ctx, "b", "o010", "o063", "o070", "o099", "o050")
	walk := &inIDOrder{rdb: rdb, key: "ids", whole: []string{"a", "b"}, smallest: 5}
	first, done, err := walk.next(ctx, 1)
	if err != nil || done || len(first) != 64 || first[63].id != "o063" {
		t.Fatalf("first chunk: %d candidates, last %v, done %v, err %v", len(first), first[len(first)-1], done, err)
	}
	rest, done, err := walk.next(ctx, 6)
	var got []string
	for _, c := range rest {
		got = append(got, c.id)
	}
	if err != nil || !done || !slices.Equal(got, []string{"o070", "o099"}) {
		t.Errorf("after the first chunk: %v, done %v, err %v; want [o070 o099], done", got, done, err)
	}
}
