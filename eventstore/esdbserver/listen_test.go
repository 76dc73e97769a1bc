package esdbserver_test

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	esclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"passerelle/eventstore"
	"passerelle/eventstore/embedded"
	"passerelle/eventstore/esdbserver"
)

// TestListenAndServe serves a data directory, stops through the context
// while a subscription is open, and leaves the events on disk.
func TestListenAndServe(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	served := make(chan error, 1)
	go func() {
		served <- esdbserver.ListenAndServe(ctx, addr, dir, esdbserver.WithLogger(slog.New(slog.DiscardHandler)))
	}()

	c := connect(t, "esdb://"+addr+"?tls=false&maxDiscoverAttempts=50")
	stream := newStream("served")
	w := mustAppend(t, c, stream, esclient.NoStream{}, jsonEvents("Served", 3)...)
	sub := subscribeAll(t, c, esclient.SubscribeToAllOptions{From: esclient.End{}})
	if ev := next(t, sub, waitTimeout); ev.CaughtUp == nil {
		t.Fatalf("first message %+v, want CaughtUp", ev)
	}

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("ListenAndServe: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("ListenAndServe still running with a subscription open")
	}
	dropped := make(chan *esclient.SubscriptionEvent, 1)
	go func() { dropped <- sub.Recv() }()
	select {
	case ev := <-dropped:
		if ev.SubscriptionDropped == nil {
			t.Fatalf("subscription got %+v after the server stopped", ev)
		}
	case <-time.After(waitTimeout):
		t.Fatal("subscription still open after the server stopped")
	}

	store, err := embedded.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	evs, err := store.ReadStream(t.Context(), stream, eventstore.Forwards, 0, 0)
	if err != nil || len(evs) != 3 || uint64(evs[2].Position) != w.CommitPosition {
		t.Fatalf("store holds %d events of the stream (%v)", len(evs), err)
	}
}
