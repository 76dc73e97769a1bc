// Package redistest gives tests the Redis servers they run against: the
// in-process miniredis always, and the real redis-server named by
// PASSERELLE_TEST_REDIS_URL when it is set (CI sets it).
package redistest

import (
	"context"
	"errors"
	"fmt"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
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
	return realDB(t, -1)
}

// RealDB is Real on database db of the same server, with a lock of its
// own: a long test there does not hold up the others.
func RealDB(t *testing.T, db int) Redis {
	t.Helper()
	return realDB(t, db)
}

func realDB(t *testing.T, db int) Redis {
	t.Helper()
	url := os.Getenv(RedisEnv)
	if url == "" {
		t.Skipf("%s is not set: the real redis-server run is skipped (CI sets it)", RedisEnv)
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("%s: %v", RedisEnv, err)
	}
	if db >= 0 {
		opts.DB = db
	}
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), fmt.Sprintf("passerelle-test-redis-%s-%d.lock", strings.ReplaceAll(opts.Addr, ":", "_"), opts.DB)), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
		if err := lock.Close(); err != nil {
			t.Errorf("test redis lock: %v", err)
		}
	})
	c := redis.NewClient(opts)
	if err := errors.Join(c.FlushDB(context.Background()).Err(), c.Close()); err != nil {
		t.Fatalf("real redis at %s: %v", url, err)
	}
	if db < 0 {
		return Redis{Name: "redis-server", URL: url}
	}
	u, _ := neturl.Parse(url) // parsed above
	u.Path = fmt.Sprintf("/%d", db)
	return Redis{Name: "redis-server", URL: u.String()}
}

// Client connects to r for the test's lifetime.
func (r Redis) Client(t *testing.T) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(r.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("redis client: %v", err)
		}
	})
	return c
}
