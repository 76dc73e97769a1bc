// Package ratelimit limits requests per client with token buckets: a
// client is its bearer token, or its address when it sends none (or, on
// public routes, always its address).
package ratelimit

import (
	"context"
	"crypto/sha256"
	"net/http"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"passerelle/internal/api"
)

// Limiter holds one bucket per client.
type Limiter struct {
	rate  float64 // tokens per second
	burst float64
	now   func() time.Time

	// rdb, when set, holds the allowances every process shares (Shared).
	rdb redis.UniversalClient
	// proxies are the reverse proxies whose X-Forwarded-For is believed.
	proxies Proxies

	mu      sync.Mutex
	buckets map[[32]byte]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

// New allows rate requests per second per client, with bursts of burst.
func New(rate float64, burst int, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{rate: rate, burst: float64(max(burst, 1)), now: now, buckets: map[[32]byte]*bucket{}}
}

// take spends one token of client's bucket, or says how long to wait.
func (l *Limiter) take(client [32]byte) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Sub(l.swept) > time.Minute {
		// forget idle clients, whose buckets are full again anyway
		for k, b := range l.buckets {
			if now.Sub(b.at).Seconds()*l.rate >= l.burst {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b, ok := l.buckets[client]
	if !ok {
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[client] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// allow spends one request of client's allowance: the shared one when
// there is one and Redis answers, else this process's.
func (l *Limiter) allow(ctx context.Context, client [32]byte) (bool, time.Duration) {
	if l.rdb != nil {
		ctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		if ok, wait, err := l.takeShared(ctx, client); err == nil {
			return ok, wait
		}
	}
	return l.take(client)
}

// TrustProxies counts a request that comes through one of ps against the
// client address the proxies forward (Proxies.Client).
func (l *Limiter) TrustProxies(ps Proxies) *Limiter {
	l.proxies = ps
	return l
}

// Middleware answers 429 with Retry-After to a client over its rate.
func (l *Limiter) Middleware(next http.Handler) http.Handler {
	return l.limit(next, func(r *http.Request) string {
		if id := r.Header.Get("Authorization"); id != "" {
			return id
		}
		return l.proxies.Client(r)
	})
}

// PerAddress is Middleware with every request counted against its client
// address, token or not: for routes open to the public, where a token is
// not checked and so cannot name the client.
func (l *Limiter) PerAddress(next http.Handler) http.Handler { return l.limit(next, l.proxies.Client) }

func (l *Limiter) limit(next http.Handler, client func(*http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok, wait := l.allow(r.Context(), sha256.Sum256([]byte(client(r)))); !ok {
			e := api.Errorf(http.StatusTooManyRequests, "rate_limited", "too many requests: retry later")
			e.RetryAfter = max(wait, time.Second)
			api.WriteError(w, r, e)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Allow spends one request of the named client's allowance (shared when
// Shared), or says how long to wait: for limits on a client the handler
// names itself (an operator, once its token is verified).
func (l *Limiter) Allow(ctx context.Context, client string) (bool, time.Duration) {
	return l.allow(ctx, sha256.Sum256([]byte(client)))
}
