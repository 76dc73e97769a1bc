package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a buffer the log's writer and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Split(strings.TrimSpace(s.b.String()), "\n")
}

// Every request's line is written, with its fields and the time the request
// ended, whether it is queued, finds the queue full or comes after close.
func TestAccessLogKeepsEveryLine(t *testing.T) {
	out := &syncBuffer{}
	l := newAccessLog(slog.New(slog.NewJSONHandler(out, nil)))
	const writers, each = 8, 2 * accessLogQueue / 8 // more than the queue holds
	at := time.Date(2026, 12, 1, 5, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				l.add(accessLine{at: at, method: "POST", route: "/v1/offers", status: 201, took: time.Millisecond,
					role: "employer", reqID: fmt.Sprintf("r%d-%d", w, i)})
			}
		})
	}
	wg.Wait()
	l.flush()
	l.close()
	l.add(accessLine{at: at, method: "GET", route: "/healthz", status: 200, role: "anonymous", reqID: "after-close"})

	seen := map[string]bool{}
	for _, line := range out.lines() {
		var rec struct {
			Time     time.Time
			Msg      string
			Method   string
			Route    string
			Role     string `json:"actor_role"`
			ID       string `json:"request_id"`
			Status   int
			Duration int64
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if rec.Msg != "request" || !rec.Time.Equal(at) || rec.Status == 0 || rec.Route == "" || rec.Role == "" {
			t.Fatalf("line %s", line)
		}
		if seen[rec.ID] {
			t.Fatalf("%s written twice", rec.ID)
		}
		seen[rec.ID] = true
	}
	if len(seen) != writers*each+1 || !seen["after-close"] {
		t.Fatalf("%d lines written, want %d (after close: %v)", len(seen), writers*each+1, seen["after-close"])
	}
}
