package app_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"passerelle/internal/app"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// scrape reads /metrics as text.
func scrape(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sample is the value of the series whose line starts with prefix.
func sample(text, prefix string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), prefix+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// The domain's figures are in /metrics: commands by outcome and rule,
// events appended, lag, readiness, open offers; promtool accepts them; and
// each request leaves one log line with no id of the path in it.
func TestDomainMetrics(t *testing.T) {
	logs := &lockedBuffer{}
	a, c := bootWith(t, app.Config{DataDir: t.TempDir(), Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	l := setup(t, c)
	id := l.apply(l.pupil, weekAhead(10))
	if r := c.Do("POST", "/v1/applications/"+id+"/confirm", nil); r.Status != 409 {
		t.Fatalf("confirming a submitted application: %d", r.Status)
	}
	if err := a.WaitCaughtUp(t.Context()); err != nil {
		t.Fatal(err)
	}
	text := scrape(t, c.Base())
	stats := c.Must(200, "GET", "/v1/stats/offers", nil)
	for prefix, want := range map[string]float64{
		`passerelle_commands_total{code="",command="/v1/offers",outcome="accepted"}`:                               1,
		`passerelle_commands_total{code="wrong_status",command="/v1/applications/{id}/confirm",outcome="refused"}`: 1,
		`passerelle_offers_open`:     num(stats, "offers_open"),
		`passerelle_seats_available`: num(stats, "seats_available"),
		`passerelle_ready`:           1,
		`passerelle_projection_lag_events{projection="placements"}`: 0,
	} {
		if got, ok := sample(text, prefix); !ok || got != want {
			t.Errorf("%s = %v (found %v), want %v\n%s", prefix, got, ok, want, grepLines(text, "passerelle_commands_total"))
		}
	}
	if n, _ := sample(text, "passerelle_events_appended_total"); n < 6 {
		t.Errorf("events appended %v", n)
	}
	if busy, ok := sample(text, "passerelle_eventstore_committer_busy_seconds_total"); !ok || busy <= 0 {
		t.Errorf("committer busy %v (found %v) after commands were appended", busy, ok)
	}
	// every append waited for a sync of the log, each counted once
	syncs, ok := sample(text, "passerelle_eventstore_log_sync_seconds_count")
	if inf, _ := sample(text, `passerelle_eventstore_log_sync_seconds_bucket{le="+Inf"}`); !ok || syncs < 1 || inf != syncs {
		t.Errorf("log syncs: %v (found %v), %v within +Inf\n%s", syncs, ok, inf, grepLines(text, "passerelle_eventstore_log_sync"))
	}
	if total, _ := sample(text, "passerelle_eventstore_log_sync_seconds_sum"); !(total > 0) {
		t.Errorf("log syncs took %v s in all", total)
	}
	if _, ok := sample(text, `passerelle_command_duration_seconds_count{command="/v1/offers"}`); !ok {
		t.Error("no command latency")
	}

	a.FlushAccessLog()
	found := false
	for _, line := range strings.Split(logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != "request" {
			continue
		}
		if strings.Contains(line, id) || strings.Contains(line, l.pupil) {
			t.Fatalf("a request log line names an id: %s", line)
		}
		if rec["route"] == "/v1/applications/{id}/confirm" && rec["status"] == float64(409) && rec["actor_role"] != nil {
			found = true
		}
	}
	if !found {
		t.Fatalf("no request log line for the refused confirm:\n%s", logs.String())
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool is not installed (.ci/run installs it)")
		}
		t.Skip("promtool is not installed: the metrics' format is checked in CI")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

func grepLines(text, s string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
