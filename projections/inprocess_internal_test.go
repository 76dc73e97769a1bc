package projections

import (
	"context"
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
