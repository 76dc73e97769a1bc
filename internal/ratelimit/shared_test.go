package ratelimit

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"passerelle/internal/testsupport/redistest"
)

// Two API processes sharing one Redis share each client's allowance: the
// burst is spent once across both, not once in each.
func TestSharedAllowance(t *testing.T) {
	redistest.EachRedis(t, func(t *testing.T, r redistest.Redis) {
		opts, err := redis.ParseURL(r.URL)
		if err != nil {
			t.Fatal(err)
		}
		rdb := redis.NewClient(opts)
		defer rdb.Close()
		now := time.Now()
		clock := func() time.Time { return now }
		ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) })
		a := New(2, 4, clock).Shared(rdb).Middleware(ok)
		b := New(2, 4, clock).Shared(rdb).Middleware(ok)
		call := func(h http.Handler, token string) int {
			req := httptest.NewRequest("GET", "/v1/offers", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec.Code
		}
		passed := 0
		for i := range 10 {
			if call([]http.Handler{a, b}[i%2], "t1") == 204 {
				passed++
			}
		}
		if passed != 4 {
			t.Fatalf("%d of 10 requests passed across two processes with a burst of 4", passed)
		}
		if call(b, "t2") != 204 {
			t.Fatal("another client shares nothing with the first")
		}
		now = now.Add(500 * time.Millisecond) // one request back at 2/s
		if call(a, "t1") != 204 || call(b, "t1") != 429 {
			t.Fatal("refilled one request only")
		}
	})
}

// When Redis does not answer, each process limits on its own.
func TestSharedFallsBackToLocal(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 50 * time.Millisecond, MaxRetries: -1})
	defer rdb.Close()
	h := New(1, 2, nil).Shared(rdb).Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	codes := []int{}
	for range 3 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/offers", nil))
		codes = append(codes, rec.Code)
	}
	if codes[0] != 204 || codes[1] != 204 || codes[2] != 429 {
		t.Fatalf("codes %v: the local buckets should limit", codes)
	}
}
