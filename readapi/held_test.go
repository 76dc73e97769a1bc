package readapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/redis/go-redis/v9"

	"passerelle/eventstore"
	"passerelle/internal/route"
	"passerelle/internal/testsupport/redistest"
	"passerelle/projections"
	"passerelle/readapi"
)

// loseOnRead is a hook that, once armed, moves the checkpoint of a
// generation back (as Redis restarted from an older snapshot would) just
// before the next command that reads an offer's document: the read that
// follows finds a model no longer current.
type loseOnRead struct {
	other      *redis.Client
	checkpoint string
	armed      atomic.Bool
}

func (h *loseOnRead) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *loseOnRead) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.lose(ctx, []redis.Cmder{cmd})
		return next(ctx, cmd)
	}
}

func (h *loseOnRead) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.lose(ctx, cmds)
		return next(ctx, cmds)
	}
}

func (h *loseOnRead) lose(ctx context.Context, cmds []redis.Cmder) {
	for _, c := range cmds {
		args := c.Args()
		if len(args) > 1 && (c.Name() == "get" || c.Name() == "mget") && strings.Contains(args[1].(string), ":offer:") && h.armed.Swap(false) {
			_ = h.other.Set(ctx, h.checkpoint, "00000000000000000001", 0).Err()
		}
	}
}

// TestReadOfAModelLostMeanwhile: a search and an offer read from a model
// that Redis lost between the query resolving it and reading it (its
// checkpoint behind the position the process has served) answer 503, a
// missing offer too, rather than what they found; once the model is
// current again, they answer as before.
func TestReadOfAModelLostMeanwhile(t *testing.T) {
	s := offersLog(t, 3, 200, 5)
	ctx := context.Background()
	redistest.EachRedis(t, func(t *testing.T, r redistest.Redis) {
		other := r.Client(t)
		prefix, floor := serveRebuilt(t, s, other, projections.Offers{})
		saved, _ := other.Get(ctx, projections.CheckpointKey(prefix)).Result()
		id, _ := other.SRandMember(ctx, prefix+projections.OfferIndexOpen()).Result()
		var doc projections.OfferDoc
		if err := readDoc(ctx, other, prefix+projections.OfferDocKey(id), &doc); err != nil {
			t.Fatal(err)
		}
		opts, _ := redis.ParseURL(r.URL)
		rdb := redis.NewClient(opts)
		defer rdb.Close()
		hook := &loseOnRead{other: other, checkpoint: projections.CheckpointKey(prefix)}
		rdb.AddHook(hook)
		a := readapi.New(rdb)
		a.Floor = func(string) eventstore.Position { return floor }
		router := chi.NewRouter()
		route.Mount(router, a.Routes())
		for _, path := range []string{
			"/v1/offers/" + id,
			"/v1/offers/00000000-0000-4000-8000-000000000000",
			"/v1/offers?near=" + ftoa(doc.Lat) + "," + ftoa(doc.Lon) + "&radius_km=50",
			"/v1/offers?near=" + ftoa(doc.Lat) + "," + ftoa(doc.Lon) + "&radius_km=50&grade=" + string(doc.Grades[0]),
			"/v1/offers?sector=" + doc.Sector,
		} {
			for _, lost := range []bool{false, true, false} {
				hook.armed.Store(lost)
				rec := httptest.NewRecorder()
				router.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
				want := http.StatusOK
				switch {
				case lost:
					want = http.StatusServiceUnavailable
				case strings.HasSuffix(path, "000000000000"):
					want = http.StatusNotFound
				}
				if rec.Code != want {
					t.Errorf("%s, lost %v: %d %s, want %d", path, lost, rec.Code, rec.Body, want)
				}
				if hook.armed.Load() {
					t.Fatalf("%s read no offer document", path)
				}
				if err := other.Set(ctx, projections.CheckpointKey(prefix), saved, 0).Err(); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

func readDoc(ctx context.Context, rdb *redis.Client, key string, v any) error {
	b, err := rdb.Get(ctx, key).Bytes()
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', 5, 64) }
