package projections

import (
	"context"
	"errors"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"passerelle/eventstore"
)

// InProcessApply answers and writes as the apply script does, from every
// state the script tells apart: another generation served, the batch
// already applied, writes lost, overtaken by another writer, and the
// batch to write.
func TestInProcessApplyMatchesScript(t *testing.T) {
	ctx := context.Background()
	const cp, active = "p:gen1:checkpoint", "p:active"
	states := []struct {
		name       string
		served, at string // "" : no key
		pos, prev  uint64
		want       int
	}{
		{"another generation", "gen2", padPosition(5), 9, 5, staleWriter},
		{"no generation served", "", padPosition(5), 9, 5, staleWriter},
		{"already applied", "gen1", padPosition(9), 9, 5, 0},
		{"lost writes", "gen1", padPosition(3), 9, 5, lostWrites},
		{"overtaken", "gen1", padPosition(7), 9, 5, overtaken},
		{"to write", "gen1", padPosition(5), 9, 5, 1},
		{"to write, first batch", "gen1", "", 9, 0, 1},
	}
	for _, st := range states {
		t.Run(st.name, func(t *testing.T) {
			args := []any{padPosition(eventstore.Position(st.pos)), "gen1", padPosition(eventstore.Position(st.prev)),
				3, "SADD", "p:gen1:set", "a", 4, "HSET", "p:gen1:h", "f", 1.5}
			var dumps [2]string
			var got [2]int
			for i, inProcess := range []bool{false, true} {
				m := miniredis.RunT(t)
				rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
				if st.served != "" {
					_ = m.Set(active, st.served)
				}
				if st.at != "" {
					_ = m.Set(cp, st.at)
				}
				var err error
				if inProcess {
					got[i], err = InProcessApply(m)(ctx, []string{cp, active}, args)
				} else {
					got[i], err = applyScript.Run(ctx, rdb, []string{cp, active}, args...).Int()
				}
				if err != nil {
					t.Fatal(err)
				}
				dumps[i] = m.Dump()
				_ = rdb.Close()
			}
			if got[0] != st.want || got[1] != st.want {
				t.Errorf("script %d, in process %d, want %d", got[0], got[1], st.want)
			}
			if dumps[0] != dumps[1] {
				t.Errorf("after the script:\n%s\nin process:\n%s", dumps[0], dumps[1])
			}
		})
	}
}

// InProcess writes what the same commands write over a connection, the
// ones it applies with miniredis's own methods as well as the others,
// and refuses what they refuse.
func TestInProcessWritesAsTheCommands(t *testing.T) {
	ctx := context.Background()
	writes := [][]any{
		{"SET", "doc:1", "a"}, {"SET", "doc:2", []byte(`{"b":1}`)}, {"SET", "doc:3", "c"}, {"DEL", "doc:3"}, {"DEL", "doc:none"},
		{"SADD", "set:1", "a", "b", "c"}, {"SREM", "set:1", "a"}, {"SREM", "set:none", "a"},
		{"SADD", "set:2", "x"}, {"SREM", "set:2", "x"}, // emptied: the key goes
		{"SADD", "set:3", "x"}, {"SET", "set:3", "replaced"}, // SET replaces a key of any type
		{"ZADD", "ids", 0.0, "b", 0.0, "a", 1.5, "c"}, {"ZREM", "ids", "a"}, {"ZREM", "ids:none", "a"},
		{"GEOADD", "geo", 2.3522, 48.8566, "paris", -1.5536, 47.2184, "nantes", 2.3522, 48.8566, "paris"},
		{"ZREM", "geo", "nantes"},
		{"HSET", "h", "f1", "v", "f2", int64(7)}, {"HDEL", "h", "f1"}, {"HINCRBY", "h", "f2", int64(3)},
		{"HSET", "h:2", "f", "v"}, {"HDEL", "h:2", "f"}, // emptied: the key goes
	}
	over, direct := miniredis.RunT(t), miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: over.Addr()})
	defer func() { _ = rdb.Close() }()
	for _, w := range writes {
		if err := rdb.Do(ctx, w...).Err(); err != nil && !errors.Is(err, redis.Nil) {
			t.Fatalf("%v over a connection: %v", w, err)
		}
	}
	write := InProcess(direct)
	if err := write(ctx, writes); err != nil {
		t.Fatal(err)
	}
	if a, b := over.Dump(), direct.Dump(); a != b {
		t.Errorf("over a connection:\n%s\nin process:\n%s", a, b)
	}
	if s, _ := direct.ZScore("geo", "paris"); s == 0 {
		t.Error("GEOADD wrote no score for its point")
	}
	refused := [][]any{
		{"SADD", "doc:1", "a"}, {"ZADD", "set:1", 1.0, "a"}, {"GEOADD", "set:1", 2.0, 48.0, "a"}, {"HSET", "set:1", "f", "v"},
		{"GEOADD", "geo", 2.0, 89.0, "pole"}, {"ZADD", "ids", "not a number", "a"},
	}
	for _, w := range refused {
		wantErr := rdb.Do(ctx, w...).Err()
		err := write(ctx, [][]any{w})
		if wantErr == nil || err == nil {
			t.Errorf("%v: over a connection %v, in process %v: want both refused", w, wantErr, err)
		}
	}
	if a, b := over.Dump(), direct.Dump(); a != b {
		t.Errorf("after the refused writes, over a connection:\n%s\nin process:\n%s", a, b)
	}
}
