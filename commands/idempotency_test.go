package commands

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"passerelle/domain/refdata"
	"passerelle/eventstore"
	"passerelle/eventstore/embedded"
)

// countingStore counts the durable writes made through it.
type countingStore struct {
	*embedded.Store
	appends, multis atomic.Int64
}

func (s *countingStore) Append(ctx context.Context, stream string, exp eventstore.ExpectedRevision, evs ...eventstore.EventData) (eventstore.AppendResult, error) {
	s.appends.Add(1)
	return s.Store.Append(ctx, stream, exp, evs...)
}

func (s *countingStore) AppendMulti(ctx context.Context, parts ...eventstore.StreamAppend) ([]eventstore.AppendResult, error) {
	s.multis.Add(1)
	return s.Store.AppendMulti(ctx, parts...)
}

// A command with an Idempotency-Key makes one durable write on a store
// that takes the record with the events, and its replay makes none.
func TestOneWritePerCommand(t *testing.T) {
	es, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	store := &countingStore{Store: es}
	api := NewAPI(NewService(store, refdata.MustLoad()), store, nil)
	var handler http.Handler
	for _, rt := range api.Routes() {
		if rt.Pattern == "/v1/employers" {
			handler = rt.Handler
		}
	}
	post := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/v1/employers", strings.NewReader(`{"name":"Garage Dupont",
			"siret":"73282932000074","kind":"company","commune_code":"94028","address":"3 rue"}`))
		req.Header.Set("Idempotency-Key", "one-write")
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, req)
		return w
	}
	first := post()
	if first.Code != http.StatusCreated {
		t.Fatalf("%d %s", first.Code, first.Body)
	}
	if a, m := store.appends.Load(), store.multis.Load(); a != 0 || m != 1 {
		t.Fatalf("%d appends and %d multi-appends for one command, want 0 and 1", a, m)
	}
	again := post()
	if again.Code != http.StatusCreated || again.Body.String() != first.Body.String() {
		t.Fatalf("replay: %d %s, want %s", again.Code, again.Body, first.Body)
	}
	if a, m := store.appends.Load(), store.multis.Load(); a != 0 || m != 1 {
		t.Fatalf("the replay wrote: %d appends and %d multi-appends in all", a, m)
	}
}
