package ratelimit

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestParseProxies(t *testing.T) {
	ps, err := ParseProxies(" 172.30.240.0/24, 10.0.0.7 ,fd00::/8,,")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(ps); got != 3 || ps[1].String() != "10.0.0.7/32" {
		t.Fatalf("parsed %v", ps)
	}
	if ps, err := ParseProxies(""); err != nil || len(ps) != 0 {
		t.Fatalf("empty: %v %v", ps, err)
	}
	for _, bad := range []string{"caddy", "10.0.0.0/33", "10.0.0.0/8;rm", "300.1.1.1"} {
		if _, err := ParseProxies(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The client is the rightmost address of X-Forwarded-For that is not a
// trusted proxy's, and only when the connection comes from one.
func TestClientAddress(t *testing.T) {
	ps, err := ParseProxies("172.30.240.0/24,10.1.0.0/16")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"direct client, no header", "203.0.113.9:5000", nil, "203.0.113.9"},
		{"direct client lying", "203.0.113.9:5000", []string{"198.51.100.1"}, "203.0.113.9"},
		{"through the proxy", "172.30.240.5:4000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"client-written entries left of it ignored", "172.30.240.5:4000", []string{"1.2.3.4, 198.51.100.1"}, "198.51.100.1"},
		{"two trusted hops", "172.30.240.5:4000", []string{"6.6.6.6, 198.51.100.1, 10.1.2.3"}, "198.51.100.1"},
		{"header given twice", "172.30.240.5:4000", []string{"6.6.6.6", "198.51.100.1"}, "198.51.100.1"},
		{"IPv6 client", "172.30.240.5:4000", []string{"2001:db8::1"}, "2001:db8::1"},
		{"IPv4-mapped proxy", "[::ffff:172.30.240.5]:4000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"proxy without the header", "172.30.240.5:4000", nil, "172.30.240.5"},
		{"garbage stops at the nearest proxy", "172.30.240.5:4000", []string{"junk, 10.1.2.3"}, "10.1.2.3"},
		{"garbage as the only entry", "172.30.240.5:4000", []string{"anything-i-like"}, "172.30.240.5"},
		{"every hop trusted", "172.30.240.5:4000", []string{"10.1.9.9, 172.30.240.8"}, "10.1.9.9"},
		{"untrusted lookalike", "172.30.241.5:4000", []string{"198.51.100.1"}, "172.30.241.5"},
	} {
		r := httptest.NewRequest("GET", "/v1/offers", nil)
		r.RemoteAddr = tt.peer
		for _, v := range tt.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := ps.Client(r); got != tt.want {
			t.Errorf("%s: client %q, want %q", tt.name, got, tt.want)
		}
	}
	// no trusted proxy: the header is never read
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr, r.Header["X-Forwarded-For"] = "172.30.240.5:4000", []string{"198.51.100.1"}
	if got := Proxies(nil).Client(r); got != "172.30.240.5" {
		t.Errorf("without trusted proxies: %q", got)
	}
}

// Behind a trusted proxy each client has its own allowance; a client
// that forges X-Forwarded-For gains nothing.
func TestPerAddressBehindProxy(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ps, _ := ParseProxies("172.30.240.0/24")
	l := New(1, 2, func() time.Time { return now }).TrustProxies(ps)
	h := l.PerAddress(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	call := func(xff string) int {
		r := httptest.NewRequest("GET", "/v1/offers", nil)
		r.RemoteAddr = "172.30.240.5:4000"
		r.Header.Set("X-Forwarded-For", xff)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec.Code
	}
	for i := range 2 {
		if c := call("198.51.100.1"); c != 204 {
			t.Fatalf("client A, request %d: %d", i, c)
		}
	}
	if c := call("198.51.100.1"); c != 429 {
		t.Fatalf("client A over its burst: %d", c)
	}
	if c := call("198.51.100.2"); c != 204 {
		t.Fatalf("client B shares A's allowance through the proxy: %d", c)
	}
	// A writes a made-up address first; the proxy appends A's real one
	if c := call("9.9.9.9, 198.51.100.1"); c != 429 {
		t.Fatalf("a forged X-Forwarded-For bought a new allowance: %d", c)
	}
}
