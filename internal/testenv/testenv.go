// Package testenv gives tests the Redis servers they run against: the
// in-process miniredis always, and the real redis-server named by
// PASSERELLE_TEST_REDIS_URL when it is set (CI sets it).
package testenv

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// RedisEnv is the variable naming a real Redis for tests.
const RedisEnv = "PASSERELLE_TEST_REDIS_URL"

// Redis is one Redis target of a test.
type Redis struct {
	Name string
	URL  string
}

// EachRedis runs f as a subtest against miniredis, then against the real
// redis-server.
func EachRedis(t *testing.T, f func(t *testing.T, r Redis)) {
	t.Run("miniredis", func(t *testing.T) { f(t, Mini(t)) })
	t.Run("redis-server", func(t *testing.T) { f(t, Real(t)) })
}

// Mini starts a fresh miniredis for the test.
func Mini(t *testing.T) Redis {
	t.Helper()
	m := miniredis.RunT(t)
	return Redis{Name: "miniredis", URL: "redis://" + m.Addr()}
}

// Real returns the real redis-server, flushed, locked for this test; it
// skips the test, saying why, when none is configured.
func Real(t *testing.T) Redis {
	t.Helper()
	url := os.Getenv(RedisEnv)
	if url == "" {
		t.Skipf("%s is not set: the real redis-server run is skipped (CI sets it)", RedisEnv)
	}
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "passerelle-test-redis.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
		lock.Close()
	})
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("%s: %v", RedisEnv, err)
	}
	c := redis.NewClient(opts)
	defer c.Close()
	if err := c.FlushDB(context.Background()).Err(); err != nil {
		t.Fatalf("real redis at %s: %v", url, err)
	}
	return Redis{Name: "redis-server", URL: url}
}

// Client connects to r for the test's lifetime.
func (r Redis) Client(t *testing.T) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(r.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}
