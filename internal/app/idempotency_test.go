package app_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"passerelle/domain"
	"passerelle/eventstore"
	"passerelle/eventstore/esdb"
	"passerelle/eventstore/esdbserver/esdbtest"
	"passerelle/internal/app"
	"passerelle/internal/testsupport/httpclient"
	"passerelle/internal/testsupport/redistest"
)

// Concurrent requests with one Idempotency-Key and different bodies: one
// is answered 201, every other 409, and only the winner's offer is
// stored. With the same body they all get the first response. On the
// embedded store (record written with the events) and on EventStoreDB
// (record written after them).
func TestIdempotencyKeyRace(t *testing.T) {
	t.Run("embedded", func(t *testing.T) {
		a, c := boot(t, t.TempDir(), redistest.Mini(t).URL)
		idempotencyRace(t, a, c)
	})
	t.Run("eventstoredb", func(t *testing.T) {
		srv := esdbtest.Start(t)
		openESDB := func(url string) (eventstore.Store, error) { return esdb.Open(url) }
		a, c := bootWith(t, app.Config{DataDir: t.TempDir(), EventStoreURL: srv.URL(), OpenStore: openESDB, RedisURL: redistest.Mini(t).URL})
		idempotencyRace(t, a, c)
	})
}

func idempotencyRace(t *testing.T, a *app.App, c httpclient.Client) {
	const requests, trials = 8, 5
	emp := str(c.Must(201, "POST", "/v1/employers", validEmployer()), "id")
	for trial := range trials {
		key := fmt.Sprintf("race-%d", trial)
		replies := make([]httpclient.Reply, requests)
		var wg sync.WaitGroup
		for i := range requests {
			wg.Go(func() {
				body := validOffer(emp)
				body["title"] = fmt.Sprintf("Offre %d", i)
				replies[i] = c.Do("POST", "/v1/offers", body, "Idempotency-Key", key)
			})
		}
		wg.Wait()
		winner := -1
		for i, r := range replies {
			switch r.Status {
			case 201:
				if winner >= 0 {
					t.Fatalf("trial %d: requests %d and %d both got 201: %s and %s", trial, winner, i, replies[winner].Raw, r.Raw)
				}
				winner = i
			case 409:
			default:
				t.Fatalf("trial %d: request %d got %d %s", trial, i, r.Status, r.Raw)
			}
		}
		if winner < 0 {
			t.Fatalf("trial %d: no request got 201", trial)
		}
		id := str(replies[winner].Body, "id")
		evs, err := a.Store.ReadStream(t.Context(), domain.OfferStream(id), eventstore.Forwards, 0, 0)
		if err != nil || len(evs) != 1 {
			t.Fatalf("trial %d: offer stream holds %d events (%v), want 1", trial, len(evs), err)
		}
		ev, err := domain.Decode(evs[0].Type, evs[0].Data)
		if err != nil || ev.(*domain.OfferPosted).Title != fmt.Sprintf("Offre %d", winner) {
			t.Fatalf("trial %d: stored %+v (%v), want the winner's (%d) offer", trial, ev, err, winner)
		}

		// the same body from every request: one response for all
		key = fmt.Sprintf("same-%d", trial)
		var mu sync.Mutex
		seen := map[string]int{}
		for range requests {
			wg.Go(func() {
				r := c.Do("POST", "/v1/offers", validOffer(emp), "Idempotency-Key", key)
				mu.Lock()
				seen[fmt.Sprint(r.Status, " ", string(r.Raw))]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if len(seen) != 1 {
			t.Fatalf("trial %d: the same request got different answers: %v", trial, seen)
		}
	}
}

// Concurrent registrations of one SIRET over HTTP, on both engines: with
// the same body every request gets the one id; with different bodies one
// is answered 201 and every other 409 naming its id; the log holds one
// registration.
func TestEmployerRegistrationRace(t *testing.T) {
	t.Run("embedded", func(t *testing.T) {
		a, c := boot(t, t.TempDir(), redistest.Mini(t).URL)
		registrationRace(t, a, c)
	})
	t.Run("eventstoredb", func(t *testing.T) {
		srv := esdbtest.Start(t)
		openESDB := func(url string) (eventstore.Store, error) { return esdb.Open(url) }
		a, c := bootWith(t, app.Config{DataDir: t.TempDir(), EventStoreURL: srv.URL(), OpenStore: openESDB, RedisURL: redistest.Mini(t).URL})
		registrationRace(t, a, c)
	})
}

func registrationRace(t *testing.T, a *app.App, c httpclient.Client) {
	const requests = 8
	for trial, same := range []bool{true, false} {
		sirets := []string{siret, "44201123456701"}
		replies := make([]httpclient.Reply, requests)
		var wg sync.WaitGroup
		for i := range requests {
			wg.Go(func() {
				body := validEmployer()
				body["siret"] = sirets[trial]
				if !same {
					body["name"] = fmt.Sprintf("Enseigne %d", i)
				}
				replies[i] = c.With(t).Do("POST", "/v1/employers", body)
			})
		}
		wg.Wait()
		var ids []string
		for _, r := range replies {
			if r.Status == 201 {
				ids = append(ids, str(r.Body, "id"))
			}
		}
		if len(ids) == 0 || (same && len(ids) != requests) || (!same && len(ids) != 1) {
			t.Fatalf("same body %v: %d of %d registrations of one SIRET answered 201", same, len(ids), requests)
		}
		for _, r := range replies {
			switch {
			case r.Status == 201 && str(r.Body, "id") != ids[0]:
				t.Errorf("same body %v: two ids for one SIRET: %s and %s", same, ids[0], str(r.Body, "id"))
			case r.Status != 201 && (r.Status != 409 || !strings.Contains(r.Raw, ids[0])):
				t.Errorf("same body %v: %d %s, want 409 naming %s", same, r.Status, r.Raw, ids[0])
			}
		}
		evs, err := a.Store.ReadStream(context.Background(), domain.EmployerStream(ids[0]), eventstore.Forwards, 0, 0)
		if err != nil || len(evs) != 1 {
			t.Fatalf("the employer's stream holds %d events (%v), want 1", len(evs), err)
		}
	}
}
