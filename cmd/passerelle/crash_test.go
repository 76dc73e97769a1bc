package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"passerelle/commands"
)

// serveChildEnv, when set, turns the test binary into `passerelle` run
// with the JSON list of arguments it holds: the process the crash test
// kills.
const serveChildEnv = "PASSERELLE_TEST_CHILD_ARGS"

func TestMain(m *testing.M) {
	if args := os.Getenv(serveChildEnv); args != "" {
		var list []string
		if err := json.Unmarshal([]byte(args), &list); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, list, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// crashKills is how many times TestCrashAnyStep kills the service:
// PASSERELLE_CRASH_KILLS, or a short run by default.
func crashKills(t *testing.T) int {
	if s := os.Getenv("PASSERELLE_CRASH_KILLS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("PASSERELLE_CRASH_KILLS=%q: a number of kills", s)
		}
		return n
	}
	return 6
}

// child is one run of `passerelle serve` in its own process.
type child struct {
	cmd  *exec.Cmd
	base string
	logs *syncWriter
}

func startServe(t *testing.T, dir string) *child {
	t.Helper()
	return startChild(t, "serve", "--data-dir", dir, "--auth=false", "--rate-limit", "0", "--log-level", "warn")
}

// freeAddr is a loopback address no one listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// startChild runs `passerelle serve ARGS --addr …` in its own process and
// waits until it answers /healthz. A port found free may be taken before
// the child binds it, by another test's connection or by one of this
// loop's own, connecting to itself while nothing listens: the child is
// then started again on another port.
func startChild(t *testing.T, args ...string) *child {
	t.Helper()
	for attempt := 1; ; attempt++ {
		c, logs := tryChild(t, args)
		if c != nil {
			return c
		}
		if attempt == 3 {
			t.Fatalf("serve found its port taken %d times:\n%s", attempt, logs)
		}
	}
}

// tryChild is one attempt of startChild: nil and the child's output if
// its port was taken.
func tryChild(t *testing.T, args []string) (*child, string) {
	t.Helper()
	addr := freeAddr(t)
	list, _ := json.Marshal(append(args, "--addr", addr))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serveChildEnv+"="+string(list))
	logs := &syncWriter{}
	cmd.Stdout, cmd.Stderr = io.Discard, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, base: "http://" + addr, logs: logs}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(c.base + "/healthz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == 200 {
				return c, ""
			}
		}
		if out := logs.String(); strings.Contains(out, "address already in use") {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, out
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("serve did not answer /healthz within 20 s: %v\n%s", err, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncWriter collects a child's output while the test reads it.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (c *child) kill(t *testing.T) {
	t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	_ = c.cmd.Wait()
}

func (c *child) stop(t *testing.T) {
	t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve did not stop cleanly: %v\n%s", err, c.logs)
		}
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		t.Fatalf("serve did not stop within 20 s\n%s", c.logs)
	}
}

// do sends one request and returns its status and body (0 when the
// service is gone).
func (c *child) do(method, path string, body any) (int, map[string]any) {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, r)
	req.Header.Set("Content-Type", "application/json")
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil
	}
	defer func() { _ = resp.Body.Close() }()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (c *child) must(t *testing.T, status int, method, path string, body any) map[string]any {
	t.Helper()
	got, out := c.do(method, path, body)
	if got != status {
		t.Fatalf("%s %s: %d %v, want %d", method, path, got, out, status)
	}
	return out
}

// unsettled reads the reconciler's gauge from /metrics (-1: unknown).
func (c *child) unsettled() int {
	resp, err := http.Get(c.base + "/metrics")
	if err != nil {
		return -1
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "passerelle_placements_unsettled "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return -1
			}
			return int(f)
		}
	}
	return -1
}

// campaign is what the workers act on.
type campaign struct {
	offers, pupils []string
	weeks          []string
	mu             *sync.Mutex
	apps           []string // applications submitted so far
}

func setupCampaign(t *testing.T, c *child) campaign {
	k := campaign{mu: &sync.Mutex{}}
	for i := range 2 {
		k.weeks = append(k.weeks, weekAhead(10+i))
	}
	uai := "0941234A"
	c.must(t, 201, "POST", "/v1/schools", map[string]any{"uai": uai, "name": "Collège Danton", "kind": "college",
		"commune_code": "94081", "education_priority": "rep_plus", "qpv": false})
	for i := range 4 {
		emp := c.must(t, 201, "POST", "/v1/employers", map[string]any{"name": fmt.Sprint("Employeur ", i),
			"siret": siret(i), "kind": "company", "commune_code": "94081", "address": "2 av. Youri Gagarine"})["id"].(string)
		for range 2 {
			k.offers = append(k.offers, c.must(t, 201, "POST", "/v1/offers", map[string]any{
				"employer_id": emp, "title": "Atelier", "description": "Découverte", "sector": "s2", "grades": []string{"3e"},
				"weeks": k.weeks, "seats": 3, "commune_code": "94081", "address": "2 av. Youri Gagarine", "lat": 48.787, "lon": 2.392,
			})["id"].(string))
		}
	}
	for i := range 120 {
		k.pupils = append(k.pupils, c.must(t, 201, "POST", "/v1/pupils", map[string]any{
			"school_uai": uai, "grade": "3e", "class_name": "3eC", "first_name": fmt.Sprint("Élève", i), "last_name": "Test",
			"birth_date": "2011-09-01", "guardians": []map[string]string{{"name": "Parent", "email": "p@example.fr", "phone": "0611111111"}},
		})["id"].(string))
	}
	return k
}

// siret is a valid SIRET number (its Luhn key), a different one for each i.
func siret(i int) string {
	base := fmt.Sprintf("%013d", 7328293200000+i)
	for d := range 10 {
		s := base + strconv.Itoa(d)
		sum := 0
		for j, r := range s {
			n := int(r - '0')
			if j%2 == 0 {
				if n *= 2; n > 9 {
					n -= 9
				}
			}
			sum += n
		}
		if sum%10 == 0 {
			return s
		}
	}
	return ""
}

// burst sends random multi-step commands from several workers until stop
// is closed, without any retry (every request has a new command id).
func (k campaign) burst(c *child, seed uint64, stop <-chan struct{}) int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	sent := 0
	for w := range 6 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for i := 0; i < 5000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				offer, pupil := k.offers[rng.IntN(len(k.offers))], k.pupils[rng.IntN(len(k.pupils))]
				app := commands.ApplicationID(offer, pupil)
				k.mu.Lock()
				if n := len(k.apps); n > 0 && rng.IntN(10) < 7 {
					app = k.apps[rng.IntN(n)]
				}
				k.mu.Unlock()
				switch r := rng.IntN(100); {
				case r < 30:
					if st, _ := c.do("POST", "/v1/offers/"+offer+"/applications", map[string]any{"pupil_id": pupil,
						"weeks": []string{k.weeks[rng.IntN(len(k.weeks))]}, "motivation": "Motivé."}); st == 201 {
						k.mu.Lock()
						k.apps = append(k.apps, commands.ApplicationID(offer, pupil))
						k.mu.Unlock()
					}
				case r < 55:
					c.do("POST", "/v1/applications/"+app+"/accept", nil)
				case r < 75:
					c.do("POST", "/v1/applications/"+app+"/confirm", nil)
				case r < 82:
					c.do("POST", "/v1/applications/"+app+"/withdraw", map[string]any{"reason": "autre stage"})
				case r < 87:
					c.do("POST", "/v1/applications/"+app+"/reject", map[string]any{"reason": "complet"})
				case r < 92:
					c.do("POST", "/v1/applications/"+app+"/cancel", map[string]any{"reason": "fermeture"})
				case r < 97:
					c.do("POST", "/v1/conventions/"+commands.ConventionID(app)+"/cancel", map[string]any{"reason": "fermeture"})
				case r < 98:
					c.do("POST", "/v1/offers/"+offer+"/withdraw", map[string]any{"reason": "pause"})
				default:
					c.do("POST", "/v1/offers/"+offer+"/reopen", nil)
				}
				mu.Lock()
				sent++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return sent
}

// checkLog runs `passerelle check` on the stopped service's data.
func checkLog(t *testing.T, dir string) checkReport {
	t.Helper()
	var out bytes.Buffer
	err := check(context.Background(), []string{"--data-dir", dir}, &out, io.Discard)
	var rep checkReport
	if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil {
		t.Fatalf("check: %v %v: %s", err, jerr, out.String())
	}
	return rep
}

// TestCrashAnyStep kills `passerelle serve` with SIGKILL at random
// moments of bursts of multi-step commands, restarts it, and checks that
// the reconciler alone, without any client retry, settles every placement
// within 5 s: then the log, read on its own by `passerelle check`, holds
// no broken invariant. PASSERELLE_CRASH_KILLS sets the number of kills
// (6 by default).
func TestCrashAnyStep(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a service: not in -short")
	}
	dir := t.TempDir()
	c := startServe(t, dir)
	k := setupCampaign(t, c)
	kills := crashKills(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %d kills", seed, kills)
	rng := rand.New(rand.NewPCG(seed, 1))
	var brokenBefore, commandsSent int
	var worst, startup time.Duration
	for i := range kills {
		stop := make(chan struct{})
		done := make(chan int, 1)
		go func() { done <- k.burst(c, seed+uint64(i), stop) }()
		time.Sleep(time.Duration(200+rng.IntN(1000)) * time.Millisecond)
		c.kill(t)
		close(stop)
		commandsSent += <-done

		before := checkLog(t, dir)
		brokenBefore += len(before.Broken)

		begun := time.Now()
		c = startServe(t, dir)
		// the 5 s run from the moment the restarted service answers: on a
		// loaded machine its start alone may take longer
		restarted := time.Now()
		startup = max(startup, restarted.Sub(begun))
		for {
			if n := c.unsettled(); n == 0 {
				break
			}
			if time.Since(restarted) > 5*time.Second {
				t.Fatalf("kill %d: %d placements still unsettled 5 s after the restart\n%s", i, c.unsettled(), c.logs)
			}
			time.Sleep(50 * time.Millisecond)
		}
		took := time.Since(restarted)
		worst = max(worst, took)
		c.stop(t)
		after := checkLog(t, dir)
		if len(after.Broken) > 0 || len(after.Unsettled) > 0 {
			t.Fatalf("kill %d: %d broken, %d unsettled after the reconciler: %v", i, len(after.Broken), len(after.Unsettled), after.Broken)
		}
		t.Logf("kill %d: %d broken invariants before, settled %v after the restart; %d applications, %d events",
			i, len(before.Broken), took.Round(time.Millisecond), after.Applications, after.Events)
		c = startServe(t, dir)
	}
	c.stop(t)
	t.Logf("%d kills, %d commands sent: %d broken invariants found right after the kills, 0 after each restart; slowest settle %v after the service answered (slowest start %v)",
		kills, commandsSent, brokenBefore, worst.Round(time.Millisecond), startup.Round(time.Millisecond))
}

// A seed killed while it plays its plan leaves a partial campaign: a
// seed into the same instance refuses, saying so, and serve warns that it
// serves one.
func TestSeedCutShortIsSaid(t *testing.T) {
	dir := t.TempDir()
	args := []string{"seed", "--departement", "94", "--scale", "0.3", "--data-dir", dir}
	list, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serveChildEnv+"="+string(list))
	logs := &syncWriter{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for !seedCutShort(dir) {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("the seed did not start its commands within 2 minutes:\n%s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // its first commands
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if strings.Contains(logs.String(), "seeded ") {
		t.Fatalf("the seed ended before it was killed: the test proves nothing\n%s", logs)
	}
	code, out, errOut := cli(args...)
	if code == 0 || !strings.Contains(errOut, "was cut short") || !strings.Contains(errOut, "new --data-dir") {
		t.Fatalf("seed into an instance a seed left partial: %d %s %s", code, out, errOut)
	}
	c := startServe(t, dir)
	defer c.stop(t)
	if !strings.Contains(c.logs.String(), "a seed into this instance was cut short") {
		t.Fatalf("serve over a partial seed does not say so:\n%s", c.logs)
	}
}
