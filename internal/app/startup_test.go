package app_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"passerelle/eventstore/embedded"
	"passerelle/internal/app"
	"passerelle/internal/testsupport/eventgen"
)

// While the embedded default fills its in-process read models at start,
// no read route answers 200 with partial data: every 200 served before
// /readyz says ready equals the answer once ready (the log does not move
// meanwhile); the others are 503 not_ready.
func TestNoPartialDataBeforeReady(t *testing.T) {
	dir := t.TempDir()
	store, err := embedded.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	w := eventgen.New(eventgen.Options{Seed: 5})
	if err := w.Run(context.Background(), store, 2_000, 8); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d events generated in %s", w.Events(), time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	a, err := app.Open(app.Config{DataDir: dir, SealEvery: -1, ExpiryEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() { srv.Close(); a.Close() })

	routes := []string{"/v1/stats/offers", "/v1/offers?per_page=5", "/v1/offers?grade=3e&per_page=5", "/v1/stats/placements"}
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	type answer struct{ path, body string }
	var (
		mu       sync.Mutex
		early    []answer
		statuses = map[int]int{}
		stop     = make(chan struct{})
		done     = make(chan struct{})
	)
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			path := routes[i%len(routes)]
			st, body := get(path)
			mu.Lock()
			statuses[st]++
			if st == http.StatusOK {
				early = append(early, answer{path, body})
			}
			mu.Unlock()
		}
	}()
	started := make(chan error, 1)
	go func() { started <- a.Start(context.Background()) }()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if st, _ := get("/readyz"); st == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not ready after 2 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("ready %s after opening", time.Since(t0).Round(time.Millisecond))
	close(stop)
	<-done
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	final := map[string]string{}
	for _, path := range routes {
		st, body := get(path)
		if st != http.StatusOK {
			t.Fatalf("GET %s once ready: %d %s", path, st, body)
		}
		final[path] = body
	}
	for _, e := range early {
		if e.body != final[e.path] {
			t.Fatalf("GET %s answered 200 before ready with\n%.300s\nonce ready:\n%.300s", e.path, e.body, final[e.path])
		}
	}
	t.Logf("%d events; answers while starting: %v", w.Events(), statuses)
	if statuses[http.StatusServiceUnavailable] == 0 {
		t.Log("no read landed before the read models were ready: the check above proved nothing this time")
	}
}

// WaitReady returns once /readyz answers 200, not before: over a log the
// in-process read models take a while to rebuild, the first GET /readyz
// after it is 200.
func TestWaitReady(t *testing.T) {
	dir := t.TempDir()
	store, err := embedded.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	w := eventgen.New(eventgen.Options{Seed: 7})
	if err := w.Run(context.Background(), store, 2_000, 8); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	a, err := app.Open(app.Config{DataDir: dir, SealEvery: -1, ExpiryEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	started := make(chan error, 1)
	go func() { started <- a.Start(ctx) }()
	waited := a.WaitReady(ctx)
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	if waited != nil {
		t.Fatal(waited)
	}
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /readyz after WaitReady: %d %s", rec.Code, rec.Body)
	}
}
