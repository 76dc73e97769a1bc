package bench

import (
	"maps"
	"strconv"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// What contents reads back, written to an empty database, makes the same
// keys with the same values, a set larger than one command included.
func TestContentsWriteTheKeysWhole(t *testing.T) {
	ctx := t.Context()
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer func() { _ = rdb.Close() }()
	pipe := rdb.Pipeline()
	pipe.Set(ctx, "doc:1", `{"id":"1"}`, 0)
	for i := range maxValues + 5 {
		pipe.SAdd(ctx, "idx:open", "o"+strconv.Itoa(i))
	}
	pipe.ZAdd(ctx, "ids", redis.Z{Score: 2, Member: "b"}, redis.Z{Score: 1.5, Member: "a"})
	pipe.GeoAdd(ctx, "geo", &redis.GeoLocation{Name: "o1", Longitude: 2.35, Latitude: 48.85})
	pipe.HSet(ctx, "counters", "all:offers_open", "3", "all:seats_total", "7")
	pipe.RPush(ctx, "list", "x", "y", "x")
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	want := m.Dump()
	cmds, err := contents(ctx, rdb)
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := pipelined(ctx, rdb, cmds); err != nil {
		t.Fatal(err)
	}
	if got := m.Dump(); got != want {
		t.Errorf("written back\n%s\nwant\n%s", got, want)
	}
	if len(cmds) != 7 { // the set in two commands
		t.Errorf("%d commands, want 7", len(cmds))
	}
	keys := map[string]bool{}
	for _, c := range cmds {
		keys[c[1].(string)] = true
	}
	if want := map[string]bool{"doc:1": true, "idx:open": true, "ids": true, "geo": true, "counters": true, "list": true}; !maps.Equal(keys, want) {
		t.Errorf("keys %v", keys)
	}
}
