package check

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// deployDir is deploy/, seen from this package.
const deployDir = ".."

// tool finds a command the checks need. Missing, it fails rather than skips:
// .ci/run installs each of them.
func tool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: install Debian's %s package (.ci/run does)", name, debianPackage)
	}
	return p
}

// run runs a command, bounded in time, and returns its combined output and error.
func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

var (
	serveFlagsOnce sync.Once
	serveFlags     map[string]bool
	serveFlagsErr  string
)

// passerelleEnv is the set of PASSERELLE_* variables `passerelle serve`
// reads, taken from its own -h output: a misspelt variable in a deployment
// file would otherwise be ignored without a word.
func passerelleEnv(t *testing.T) map[string]bool {
	t.Helper()
	serveFlagsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "passerelle-deploy-check-")
		if err != nil {
			serveFlagsErr = err.Error()
			return
		}
		defer func() { _ = os.RemoveAll(dir) }()
		bin := filepath.Join(dir, "passerelle")
		goCmd, err := exec.LookPath("go")
		if err != nil {
			serveFlagsErr = "go not on PATH: " + err.Error()
			return
		}
		build := exec.Command(goCmd, "build", "-o", bin, "./cmd/passerelle")
		build.Dir = filepath.Join(deployDir, "..") // the main module
		if out, err := build.CombinedOutput(); err != nil {
			serveFlagsErr = "building passerelle: " + err.Error() + "\n" + string(out)
			return
		}
		out, _ := exec.Command(bin, "serve", "-h").CombinedOutput() // -h exits non-zero
		serveFlags = map[string]bool{}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "  -") {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimPrefix(line, "  -"), " ")
			serveFlags["PASSERELLE_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))] = true
		}
		if !serveFlags["PASSERELLE_ROLE"] {
			serveFlagsErr = "no --role in `passerelle serve -h`:\n" + string(out)
		}
	})
	if serveFlagsErr != "" {
		t.Fatal(serveFlagsErr)
	}
	return serveFlags
}

// checkRedisConfig starts redis-server with a configuration (on a Unix socket
// only, in a temporary directory), which refuses an unknown or malformed
// directive, then reads back what the read models need.
func checkRedisConfig(t *testing.T, source string, args ...string) {
	t.Helper()
	server := tool(t, "redis-server", "redis-server")
	cli := tool(t, "redis-cli", "redis-tools")
	dir := t.TempDir()
	sock := filepath.Join(dir, "redis.sock")
	args = append(args, "--port", "0", "--unixsocket", sock, "--dir", dir, "--daemonize", "no", "--save", "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, server, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()
	for i := 0; ; i++ {
		select {
		case <-exited:
			t.Fatalf("%s: redis-server refused the configuration (%v):\n%s", source, waitErr, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if o, err := exec.Command(cli, "-s", sock, "ping").CombinedOutput(); err == nil && strings.TrimSpace(string(o)) == "PONG" {
			break
		}
		if i > 100 {
			_ = cmd.Process.Kill()
			<-exited // its output is complete
			t.Fatalf("%s: redis-server did not answer within 5 s:\n%s", source, out.String())
		}
	}
	for key, want := range map[string]string{"maxmemory-policy": "noeviction", "appendonly": "yes"} {
		o, err := exec.Command(cli, "-s", sock, "config", "get", key).CombinedOutput()
		lines := strings.Fields(string(o))
		if err != nil || len(lines) != 2 || lines[1] != want {
			t.Errorf("%s: Redis's %s is %q, want %q (%v)", source, key, strings.TrimSpace(string(o)), want, err)
		}
	}
}
