package embedded

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"passerelle/eventstore"
)

// crashChildEnv, when set to a directory, turns the test binary into the
// writer process of TestCrash; crashUnsyncedEnv opens its store
// WithUnsyncedAppends.
const (
	crashChildEnv    = "PASSERELLE_EMBEDDED_CRASH_DIR"
	crashUnsyncedEnv = "PASSERELLE_EMBEDDED_CRASH_UNSYNCED"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const crashWriters = 4

// crashChild appends forever from several goroutines and prints one line
// per event only after Append returned:
//
//	ack <event id> <stream> <revision> <position, or 0 if not the last of its append>
func crashChild(dir string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(2)
	}
	// Small checkpoints, so that the kill often lands in one under way.
	opts := []Option{smallCheckpoints(8<<10, 8)}
	if os.Getenv(crashUnsyncedEnv) != "" {
		opts = append(opts, WithUnsyncedAppends())
	}
	s, err := Open(dir, opts...)
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	var out sync.Mutex
	for w := range crashWriters {
		go func() {
			// Own streams use exact revisions, carried over from earlier
			// runs; the shared one takes Any from every writer.
			own := make([]string, 3)
			next := make([]eventstore.ExpectedRevision, len(own))
			for k := range own {
				own[k] = fmt.Sprintf("crash%d-%d", w, k)
				next[k] = eventstore.NoStream
				last, err := s.ReadStream(ctx, own[k], eventstore.Backwards, eventstore.End, 1)
				switch {
				case err == nil:
					next[k] = eventstore.Exact(last[0].Revision)
				case !errors.Is(err, eventstore.ErrStreamNotFound):
					fail(err)
				}
			}
			for i := 0; ; i++ {
				stream, exp, k := "crashshared-0", eventstore.Any, i%len(own)
				if i%5 != 4 {
					stream, exp = own[k], next[k]
				}
				evs := events("Crashed", 1+i%3)
				res, err := s.Append(ctx, stream, exp, evs...)
				if err != nil {
					fail(err)
				}
				if stream == own[k] {
					next[k] = eventstore.Exact(res.LastRevision)
				}
				var b strings.Builder
				first := res.LastRevision + 1 - uint64(len(evs))
				for j, e := range evs {
					pos := eventstore.Position(0)
					if j == len(evs)-1 {
						pos = res.Position
					}
					fmt.Fprintf(&b, "ack %s %s %d %d\n", e.ID, stream, first+uint64(j), pos)
				}
				out.Lock()
				_, err = io.WriteString(os.Stdout, b.String()) // one write: never half a line
				out.Unlock()
				if err != nil {
					fail(err)
				}
			}
		}()
	}
	select {}
}

type ack struct {
	id     uuid.UUID
	stream string
	rev    uint64
	pos    eventstore.Position
}

func parseAck(line string) (ack, error) {
	f := strings.Fields(line)
	if len(f) != 5 || f[0] != "ack" {
		return ack{}, fmt.Errorf("bad line %q", line)
	}
	id, err := uuid.Parse(f[1])
	if err != nil {
		return ack{}, err
	}
	rev, err := strconv.ParseUint(f[3], 10, 64)
	if err != nil {
		return ack{}, err
	}
	pos, err := eventstore.ParsePosition(f[4])
	if err != nil {
		return ack{}, err
	}
	return ack{id, f[2], rev, pos}, nil
}

// runCrashChild starts a writer on dir, waits for n acknowledged events,
// kills it with SIGKILL and returns every acknowledgement it printed.
func runCrashChild(t *testing.T, dir string, n int, env ...string) []ack {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(os.Environ(), crashChildEnv+"="+dir), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()

	var acks []ack
	take := func(line string) {
		a, err := parseAck(line)
		if err != nil {
			t.Errorf("child output: %v", err)
			return
		}
		acks = append(acks, a)
	}
	timeout := time.After(30 * time.Second)
wait:
	for len(acks) < n {
		select {
		case line, ok := <-lines:
			if !ok {
				break wait
			}
			take(line)
		case <-timeout:
			break wait
		}
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	for line := range lines { // acknowledged before the kill, still in the pipe
		take(line)
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, not by our SIGKILL; stderr:\n%s", err, stderr.String())
	}
	if len(acks) < n {
		t.Fatalf("only %d acknowledgements before the timeout; stderr:\n%s", len(acks), stderr.String())
	}
	return acks
}

// TestCrash kills a writing process at an arbitrary point, several times
// over the same directory, and checks that every acknowledged event
// survived with its stream, revision and position and that the store is
// consistent.
func TestCrash(t *testing.T) { testCrash(t) }

// TestCrashUnsynced is TestCrash WithUnsyncedAppends: what the process
// wrote is in the system's cache, so killing it loses nothing either.
func TestCrashUnsynced(t *testing.T) { testCrash(t, crashUnsyncedEnv+"=1") }

func testCrash(t *testing.T, env ...string) {
	const rounds, acksPerRound = 3, 300
	dir := t.TempDir()
	var acked []ack
	for round := range rounds {
		acked = append(acked, runCrashChild(t, dir, acksPerRound, env...)...)

		s := openT(t, dir)
		if err := s.Check(); err != nil {
			s.Close()
			t.Fatalf("round %d: check: %v", round, err)
		}
		verifyAcks(t, s, acked)
		all, err := s.ReadAll(t.Context(), eventstore.Start, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(all); i++ {
			if all[i].Position <= all[i-1].Position {
				t.Fatalf("positions %d then %d", all[i-1].Position, all[i].Position)
			}
		}
		t.Logf("round %d: %d events acknowledged so far, %d in the log", round, len(acked), len(all))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func verifyAcks(t *testing.T, s *Store, acked []ack) {
	t.Helper()
	ctx := t.Context()
	streams := map[string][]eventstore.RecordedEvent{}
	for _, a := range acked {
		evs, ok := streams[a.stream]
		if !ok {
			var err error
			if evs, err = s.ReadStream(ctx, a.stream, eventstore.Forwards, 0, 0); err != nil {
				t.Fatalf("acknowledged stream %s: %v", a.stream, err)
			}
			for i, e := range evs {
				if e.Revision != uint64(i) {
					t.Fatalf("%s: revision %d at index %d", a.stream, e.Revision, i)
				}
			}
			streams[a.stream] = evs
		}
		if a.rev >= uint64(len(evs)) {
			t.Fatalf("acknowledged %s@%d lost: stream ends at %d", a.stream, a.rev, len(evs)-1)
		}
		e := evs[a.rev]
		if e.ID != a.id || (a.pos != 0 && e.Position != a.pos) {
			t.Fatalf("acknowledged %+v, store has %s at position %d", a, e.ID, e.Position)
		}
	}
}
