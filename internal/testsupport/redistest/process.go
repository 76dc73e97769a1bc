package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a redis-server process of the test's own, with its own data
// directory, that the test can kill and start again: Redis failing as it
// does in production. Its snapshot (dump.rdb) is written only when the
// test asks (Save), so a restart comes back with exactly that past.
type Server struct {
	URL  string
	t    *testing.T
	bin  string
	dir  string
	port int
	args []string
	cmd  *exec.Cmd
}

// Process starts a redis-server of the test's own. Without the binary it
// fails when the real redis-server is expected (PASSERELLE_TEST_REDIS_URL
// set, as in CI) and skips, saying why, otherwise. Options given override
// the defaults ("--appendonly", "yes", …).
func Process(t *testing.T, options ...string) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv(RedisEnv) != "" {
			t.Fatalf("%s is set but redis-server is not on PATH: %v", RedisEnv, err)
		}
		t.Skip("redis-server is not installed: the real-process run is skipped (CI installs it)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	s := &Server{t: t, bin: bin, dir: t.TempDir(), port: port, args: options, URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port)}
	s.Start()
	t.Cleanup(s.Kill)
	return s
}

// Start runs the server, loading the last snapshot saved if any, and waits
// until it answers.
func (s *Server) Start() {
	s.t.Helper()
	args := []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(s.port), "--dir", s.dir,
		"--save", "", "--appendonly", "no", "--dbfilename", "dump.rdb"}
	s.cmd = exec.Command(s.bin, append(args, s.args...)...)
	s.cmd.Stdout, s.cmd.Stderr = nil, nil
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", s.port)})
	defer func() { _ = c.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.Ping(context.Background()).Err()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on port %d did not answer: %v", s.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill ends the server at once (SIGKILL): nothing is saved.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Save writes the snapshot the next Start loads.
func (s *Server) Save() {
	s.t.Helper()
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", s.port)})
	defer func() { _ = c.Close() }()
	if err := c.Save(context.Background()).Err(); err != nil {
		s.t.Fatal(err)
	}
}

// Dir is the server's data directory: its snapshot and append-only files.
func (s *Server) Dir() string { return s.dir }

// Forget deletes the snapshot: the next Start comes back empty.
func (s *Server) Forget() {
	s.t.Helper()
	if err := os.Remove(filepath.Join(s.dir, "dump.rdb")); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.t.Fatal(err)
	}
}
