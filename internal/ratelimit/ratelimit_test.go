package ratelimit

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

func TestLimitPerClient(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := New(2, 3, func() time.Time { return now })
	h := l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	call := func(token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/v1/offers", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for i := 0; i < 3; i++ {
		if c := call("a").Code; c != 204 {
			t.Fatalf("request %d within the burst: %d", i, c)
		}
	}
	rec := call("a")
	if rec.Code != 429 {
		t.Fatalf("over the burst: %d", rec.Code)
	}
	if s, _ := strconv.Atoi(rec.Header().Get("Retry-After")); s < 1 {
		t.Fatalf("Retry-After %q", rec.Header().Get("Retry-After"))
	}
	if c := call("b").Code; c != 204 {
		t.Fatalf("another token has its own bucket: %d", c)
	}
	now = now.Add(500 * time.Millisecond) // one token back at 2/s
	if c := call("a").Code; c != 204 {
		t.Fatalf("after refilling: %d", c)
	}
	if c := call("a").Code; c != 429 {
		t.Fatalf("refilled one token only: %d", c)
	}
}
