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

// On public routes a client is its address: a new token on every request
// does not buy a new bucket, while another address has its own.
func TestPerAddressIgnoresTokens(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := New(1, 2, func() time.Time { return now })
	h := l.PerAddress(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	call := func(addr string, i int) int {
		req := httptest.NewRequest("GET", "/v1/offers", nil)
		req.RemoteAddr = addr
		req.Header.Set("Authorization", "Bearer junk-"+strconv.Itoa(i))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	for i := range 2 {
		if c := call("192.0.2.1:1000", i); c != 204 {
			t.Fatalf("request %d within the burst: %d", i, c)
		}
	}
	if c := call("192.0.2.1:2000", 3); c != 429 {
		t.Fatalf("same address, another port and token, over the burst: %d", c)
	}
	if c := call("192.0.2.2:1000", 4); c != 204 {
		t.Fatalf("another address: %d", c)
	}
}
