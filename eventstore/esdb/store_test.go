package esdb_test

import (
	"log/slog"
	"os"
	"testing"

	"passerelle/eventstore"
	"passerelle/eventstore/conformance"
	"passerelle/eventstore/esdb"
	"passerelle/eventstore/esdbserver/esdbtest"
)

// realServerEnv names a real EventStoreDB for the conformance run, e.g.
// esdb://localhost:2113?tls=false.
const realServerEnv = "PASSERELLE_TEST_ESDB_URL"

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func open(t *testing.T, url string, opts ...esdb.Option) *esdb.Store {
	t.Helper()
	s, err := esdb.Open(url, append([]esdb.Option{esdb.WithLogger(quiet())}, opts...)...)
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestConformance runs the suite against the adapter talking to the
// protocol server over the embedded engine.
func TestConformance(t *testing.T) {
	srv := esdbtest.Start(t)
	conformance.Run(t, func(t *testing.T) eventstore.Store { return open(t, srv.URL()) })
}

// TestConformanceAcrossRestart: the protocol server stopped and started
// again on the same data; the adapter reconnects on its own.
func TestConformanceAcrossRestart(t *testing.T) {
	srv := esdbtest.Start(t)
	conformance.RunAcrossRestart(t, func(t *testing.T) (eventstore.Store, conformance.Restart) {
		s := open(t, srv.URL())
		return s, func(t *testing.T) eventstore.Store {
			srv.Restart(t)
			return s
		}
	})
}

// TestConformanceRealServer runs the suite against a real EventStoreDB.
func TestConformanceRealServer(t *testing.T) {
	url := os.Getenv(realServerEnv)
	if url == "" {
		t.Skipf("%s is not set: the run against a real EventStoreDB is skipped", realServerEnv)
	}
	conformance.Run(t, func(t *testing.T) eventstore.Store { return open(t, url) })
}
